"""The data sets, start-up and manifold step shared by the manifold studies.

``neighbour_count.py``, ``neighbour_choice.py``, ``umap_components.py``
and ``manifold_consensus.py`` compare settings of the manifold step on the
same data: digits (``X / 16``) whole and its first 1 000 rows, the
standardised 1 000-row digits table of the tabular suite, 1 000 and 2 000
random MNIST test images (a fixed permutation) and the whole test split.
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from auto_defaults import datasets, warm_up, warm_up_umap  # noqa: E402

from deepcluster_sk import N2DClusterer  # noqa: E402
from deepcluster_sk._auto import _UMAP_EPOCHS  # noqa: E402
from deepcluster_sk._estimators._neighbourhood import MIXTURE_N_INIT  # noqa: E402
from deepcluster_sk._manifold import fit_mixture, umap_coordinates  # noqa: E402


def study_sets(names, mnist_dir):
    """``{name: (X, y)}`` for ``names``, in that order.

    Parameters
    ----------
    names : sequence of str
        Among "digits", "digits1000", "digits_pca20", "mnist1000",
        "mnist2000" and "mnist_test".
    mnist_dir : str
        The folder of the MNIST files, read only if a name needs them.
    """
    X, y, _ = datasets("digits", None)["digits"]
    found = {"digits": (X, y), "digits1000": (X[:1000], y[:1000])}
    table, table_y, _ = datasets("tabular", None)["digits_pca20"]
    found["digits_pca20"] = (StandardScaler().fit_transform(table), table_y)
    if any(name.startswith("mnist") for name in names):
        images, labels, _ = datasets("mnist-test", mnist_dir)["mnist_test"]
        order = np.random.RandomState(0).permutation(len(labels))
        for rows in (1000, 2000):
            found[f"mnist{rows}"] = (images[order[:rows]], labels[order[:rows]])
        found["mnist_test"] = (images, labels)
    return {name: found[name] for name in names}


def start_study(description, *extra_arguments):
    """Parse ``--mnist-dir`` (and ``extra_arguments``), then warm up.

    Parameters
    ----------
    description : str
    *extra_arguments : tuple
        ``(flags, keyword arguments)`` pairs for ``add_argument``.

    Returns
    -------
    args : argparse.Namespace
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    for flags, options in extra_arguments:
        parser.add_argument(*flags, **options)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    warm_up()
    warm_up_umap()
    return args


def n2d_fit(X, seed):
    """``N2DClusterer(10)`` with its defaults fitted on ``X`` on the CPU."""
    return N2DClusterer(10, random_state=seed, device="cpu").fit(X)


def manifold_step(embedding, *, n_neighbors, n_components, umap_seed, mixture_seed):
    """N2D's manifold step on ``embedding`` with other UMAP settings or seeds.

    UMAP with ``min_dist=0`` and the package's layout epochs, then the
    full-covariance mixture with the package's number of inits, for 10
    clusters.

    Returns
    -------
    coordinates : ndarray of shape (n_samples, n_components)
    clustering : deepcluster_sk._manifold.MixtureClustering
    """
    coordinates = umap_coordinates(embedding, n_neighbors=n_neighbors,
                                   n_components=n_components, min_dist=0.0,
                                   random_state=umap_seed, n_epochs=_UMAP_EPOCHS)
    clustering = fit_mixture(coordinates, 10, covariance_type="full",
                             n_init=MIXTURE_N_INIT, random_state=mixture_seed)
    return coordinates, clustering
