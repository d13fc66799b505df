"""The manifold step that N2D clusters with and DEC may start from.

The parameters that N2D and DEC share are declared here once; each
estimator binds them as class attributes. :func:`manifold_clustering` runs
the step on a training embedding: UMAP (unless the settings turn it off),
then a Gaussian mixture.
"""

from numbers import Integral

from sklearn.utils._param_validation import Interval, StrOptions

from .._distributed import SINGLE
from .._manifold import fit_mixture, umap_coordinates
from ._base import draw_seed
from ._parameters import Param

#: UMAP's neighbours per point; ``"auto"`` is 30.
N_NEIGHBORS = Param(
    "auto", Interval(Integral, 2, None, closed="left"), StrOptions({"auto"})
)

#: UMAP's output dimension; ``"auto"`` is ``n_clusters`` within [2, 10].
UMAP_COMPONENTS = Param(
    "auto", Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})
)

#: Initialisations of the mixture (each from k-means), the most likely kept:
#: N2DClusterer's default and DEC's manifold start. A fit of 70 000 points
#: costs seconds per initialisation.
MIXTURE_N_INIT = 5

#: The mixture's covariance structure.
COVARIANCE_TYPE = Param("full", StrOptions({"full", "tied", "diag", "spherical"}))


def manifold_clustering(embedding, settings, *, n_clusters, n_init, covariance_type,
                        min_dist, rng, seeded, progress, replicas=SINGLE):
    """UMAP of ``embedding`` (where ``settings["manifold"]``), then a mixture.

    Run once, by rank 0 of a distributed fit, and broadcast.

    Parameters
    ----------
    embedding : ndarray of shape (n_samples, n_components), float32
        The training embedding, on the host.
    settings : dict
        The fit's resolved settings: ``manifold``, ``n_neighbors``,
        ``umap_components``, ``umap_epochs``.
    n_clusters, n_init : int
    covariance_type : str
    min_dist : float
    rng : numpy.random.RandomState
        The fit's generator; one seed is drawn from it.
    seeded : bool
        Whether the user seeded the fit. umap-learn runs single-threaded
        when seeded; an unseeded fit lets it use every core.
    progress : ProgressPrinter
        Told what runs, at ``verbose >= 1``.
    replicas : Replicas, default=SINGLE
        The processes of the fit.

    Returns
    -------
    coordinates : ndarray of shape (n_samples, n_dims), float32
        The UMAP coordinates, or the embedding itself without the manifold.
    clustering : MixtureClustering
    """
    seed = draw_seed(rng)
    return replicas.compute_once(
        lambda: _manifold_clustering(embedding, settings, n_clusters, n_init,
                                     covariance_type, min_dist, seed, seeded, progress)
    )


def _manifold_clustering(embedding, settings, n_clusters, n_init, covariance_type,
                         min_dist, seed, seeded, progress):
    mixture = f"a Gaussian mixture of {n_clusters} components ({n_init} inits)"
    if settings["manifold"]:
        progress.message(
            f"UMAP of the embedding (n_neighbors={settings['n_neighbors']}, "
            f"n_components={settings['umap_components']}), then {mixture}"
        )
        coordinates = umap_coordinates(
            embedding,
            n_neighbors=settings["n_neighbors"],
            n_components=settings["umap_components"],
            n_epochs=settings["umap_epochs"],
            min_dist=min_dist,
            random_state=seed if seeded else None,
        )
    else:
        progress.message(f"{mixture} on the embedding")
        coordinates = embedding
    clustering = fit_mixture(
        coordinates,
        n_clusters,
        covariance_type=covariance_type,
        n_init=n_init,
        random_state=seed,
    )
    return coordinates, clustering
