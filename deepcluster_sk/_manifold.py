"""The manifold step of N2D: UMAP of an embedding, then a Gaussian mixture.

umap-learn is an optional dependency (the ``umap`` extra); everything that
calls it goes through :func:`import_umap`, whose ``ImportError`` names the
extra. Errors of umap-learn and of the mixture on degenerate data are turned
into ``ValueError`` messages that say what to change.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from ._torch._neighbours import nearest_neighbours
from ._torch._threads import torch_threads_kept

#: What ``pip`` installs for the manifold step.
UMAP_EXTRA = "pip install 'deepcluster-sk[umap]' (or: pip install umap-learn)"

#: The fewest samples UMAP can embed: it needs at least two neighbours.
MIN_MANIFOLD_SAMPLES = 3

#: Mixture regularisations tried in turn, relative to the mean variance of
#: the coordinates; UMAP with ``min_dist=0`` can pack a cluster so tight that
#: the smallest one leaves a covariance singular.
_RELATIVE_REG_COVAR = (1e-6, 1e-3, 1e-1)

#: Below this many samples the neighbours UMAP needs are searched exactly
#: here, in a matrix product (1.4 s for 10 000 points on 2 cores), and given
#: to umap-learn. Below 4 096 samples umap-learn itself would compute all
#: pairs through a Python callable (6.7 s of a 10 s UMAP on digits); above,
#: its approximate search (pynndescent) compiles for about 34 s in every new
#: process, which numba's cache does not save. From this size on the exact
#: search's quadratic cost (28 s for 70 000 points) outgrows pynndescent's,
#: 5.6 s once compiled (``benchmarks/results/tuning/umap_neighbours.md``).
EXACT_NEIGHBOURS_BELOW = 20_000


def import_umap():
    """Import umap-learn, or raise an ``ImportError`` that names the extra.

    Returns
    -------
    umap : module
    """
    try:
        with warnings.catch_warnings():
            # Said at every import where TensorFlow is missing; the
            # package never uses ParametricUMAP.
            warnings.filterwarnings("ignore", "Tensorflow not installed")
            import umap
    except ImportError as exc:
        raise ImportError(
            "The manifold step (N2DClusterer, and DECClusterer with "
            f"init='manifold') needs umap-learn: {UMAP_EXTRA}."
        ) from exc
    return umap


def umap_available():
    """Whether umap-learn can be imported."""
    try:
        import_umap()
    except ImportError:
        return False
    return True


def exact_knn(embedding, n_neighbors):
    """Exact nearest neighbours of every row, as umap-learn's ``precomputed_knn``.

    Parameters
    ----------
    embedding : ndarray of shape (n_samples, n_features)
        Searched in its own dtype; each row is its own first neighbour.
    n_neighbors : int

    Returns
    -------
    index : ndarray of shape (n_samples, n_neighbors), int64
    distances : ndarray of shape (n_samples, n_neighbors), float32
    """
    points = torch.from_numpy(np.ascontiguousarray(embedding))
    distances, index = nearest_neighbours(points, points, n_neighbors)
    return index.numpy(), distances.float().numpy()


def umap_coordinates(embedding, *, n_neighbors, n_components, min_dist, random_state,
                     n_epochs=None):
    """Embed ``embedding`` with UMAP; return the coordinates as float32.

    Parameters
    ----------
    embedding : ndarray of shape (n_samples, n_features)
    n_neighbors, n_components : int
        ``n_neighbors`` is capped at ``n_samples - 1``. Below
        :data:`EXACT_NEIGHBOURS_BELOW` samples the neighbours are searched
        exactly here; from it on, by umap-learn's approximate search.
    min_dist : float
    random_state : int or None
        None lets umap-learn run its layout on every core; a seed makes it
        reproducible and single-threaded, as umap-learn does.
    n_epochs : int or None, default=None
        Epochs of UMAP's layout; None is umap-learn's own choice.

    Returns
    -------
    coordinates : ndarray of shape (n_samples, n_components), float32
    """
    umap = import_umap()
    n_samples = embedding.shape[0]
    if n_samples < MIN_MANIFOLD_SAMPLES:
        raise ValueError(
            f"The manifold step needs at least {MIN_MANIFOLD_SAMPLES} samples, got "
            f"n_samples={n_samples}; use manifold=False."
        )
    n_neighbors = min(n_neighbors, n_samples - 1)
    precomputed_knn = (None, None, None)
    if n_samples < EXACT_NEIGHBOURS_BELOW:
        precomputed_knn = exact_knn(embedding, n_neighbors)
    reducer = umap.UMAP(
        n_neighbors=n_neighbors,
        n_components=n_components,
        min_dist=min_dist,
        # The spectral initialisation needs more points than n_components + 1
        # eigenvectors.
        init="spectral" if n_samples > n_components + 2 else "random",
        random_state=random_state,
        n_epochs=n_epochs,
        precomputed_knn=precomputed_knn,
    )
    with warnings.catch_warnings(), torch_threads_kept():
        # A seed makes umap-learn single-threaded and say so at every fit.
        warnings.filterwarnings("ignore", "n_jobs value", UserWarning)
        # Precomputed neighbours come without umap-learn's search index,
        # which only its own transform needs; N2D places new points itself.
        warnings.filterwarnings("ignore", "precomputed_knn", UserWarning)
        try:
            coordinates = reducer.fit_transform(embedding)
        except Exception as exc:  # numba and scipy errors of degenerate input
            raise ValueError(
                f"UMAP could not embed the {n_samples} training embeddings "
                f"(n_neighbors={n_neighbors}, n_components={n_components}): "
                f"{type(exc).__name__}: {exc}. Use more samples, fewer "
                "n_neighbors or manifold=False."
            ) from exc
    coordinates = np.asarray(coordinates, dtype=np.float32)
    if not np.isfinite(coordinates).all():
        raise ValueError(
            "UMAP returned non-finite coordinates for the training embeddings; "
            "use manifold=False."
        )
    return coordinates


@dataclass
class MixtureClustering:
    """A Gaussian mixture fitted on coordinates, with its hard labels.

    Attributes
    ----------
    mixture : sklearn.mixture.GaussianMixture
    labels : ndarray of shape (n_samples,)
    """

    mixture: GaussianMixture
    labels: np.ndarray


def fit_mixture(coordinates, n_clusters, *, covariance_type, n_init, random_state):
    """Fit a Gaussian mixture, regularised more where a covariance is singular.

    Parameters
    ----------
    coordinates : ndarray of shape (n_samples, n_dims)
    n_clusters, n_init : int
    covariance_type : {"full", "tied", "diag", "spherical"}
    random_state : int

    Returns
    -------
    MixtureClustering
    """
    X = np.asarray(coordinates, dtype=np.float64)
    scale = max(float(X.var(axis=0).mean()), np.finfo(np.float64).tiny)
    last_error = None
    for relative in _RELATIVE_REG_COVAR:
        mixture = GaussianMixture(
            n_components=n_clusters,
            covariance_type=covariance_type,
            n_init=n_init,
            reg_covar=relative * scale,
            random_state=random_state,
        )
        with warnings.catch_warnings():
            # k-means inside the mixture's initialisation warns about
            # duplicate points; the estimators warn about their own labels.
            warnings.filterwarnings(
                "ignore", "Number of distinct clusters", ConvergenceWarning
            )
            try:
                labels = mixture.fit_predict(X)
            except ValueError as exc:  # "ill-defined empirical covariance"
                last_error = exc
                continue
        return MixtureClustering(mixture, labels.astype(np.int64))
    raise ValueError(
        f"The Gaussian mixture of {n_clusters} components could not be fitted: "
        f"{last_error} Try fewer clusters or covariance_type='diag'."
    ) from last_error


def cluster_means(embedding, labels, responsibilities):
    """Mean embedding of each cluster; a soft mean for an empty one.

    Parameters
    ----------
    embedding : ndarray of shape (n_samples, n_components)
    labels : ndarray of shape (n_samples,)
    responsibilities : ndarray of shape (n_samples, n_clusters)
        The mixture's posterior probabilities, which weigh the mean of a
        cluster that no sample is assigned to.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_components), float32
    """
    n_clusters = responsibilities.shape[1]
    Z = np.asarray(embedding, dtype=np.float64)
    one_hot = np.zeros((Z.shape[0], n_clusters))
    one_hot[np.arange(Z.shape[0]), labels] = 1.0
    empty = one_hot.sum(axis=0) == 0
    weights = np.where(empty, responsibilities, one_hot)
    totals = np.maximum(weights.sum(axis=0), np.finfo(np.float64).tiny)
    return ((weights.T @ Z) / totals[:, None]).astype(np.float32)
