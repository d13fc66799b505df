"""UMAP's graph settings for the manifold step, on fixed N2D embeddings.

The manifold step's result moves more with UMAP's neighbour graph than
with anything else measured, and a whole N2D fit is mostly pretraining. So
this study fits ``N2DClusterer(10)`` once per data set and seed (its
embedding does not depend on UMAP's settings), keeps the embedding, and
reruns only the manifold step on it: UMAP (exact neighbours, ``min_dist=0``,
10 components, the package's layout epochs, spectral start) then the
package's full-covariance mixture, with one setting changed per variant and
two UMAP seeds per embedding (``100 * seed + 0`` and ``+ 1``, the mixture on
the same seed), so that the variants of one embedding and UMAP seed are
paired. One JSON line per variant and data set, with every run's ACC.

``base``
    The step as N2D ran it before ``n_neighbors="auto"`` became 30: 20
    neighbours.
``k25``, ``k30``, ``k40``
    25, 30 or 40 neighbours.
``std``, ``cos``
    The embedding standardised per dimension, or its rows scaled to unit
    length (cosine neighbours), before UMAP.
``std-k25``, ``std-k30``, ``std-k40``
    Standardised, with 25, 30 or 40 neighbours.
``mix0.5``
    UMAP's ``set_op_mix_ratio=0.5``: halfway between the union and the
    intersection of the directed neighbour memberships.
``lc2``
    ``local_connectivity=2``: every point fully connected to its two
    nearest neighbours.
``neg10``
    ``negative_sample_rate=10`` instead of 5 in the layout.
``k30-neg3``
    30 neighbours (the default since 2026-12-08) and
    ``negative_sample_rate=3``: two fifths fewer repulsive updates, so a
    layout about a third shorter.

Run alone on the machine (``--cache DIR`` keeps the embeddings between
runs)::

    python benchmarks/tuning/umap_graph.py --cache /tmp/umap_graph \\
        >> benchmarks/results/tuning/umap_graph.jsonl
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from manifold_sets import n2d_fit, start_study, study_sets  # noqa: E402

from deepcluster_sk._auto import _UMAP_EPOCHS  # noqa: E402
from deepcluster_sk._estimators._neighbourhood import MIXTURE_N_INIT  # noqa: E402
from deepcluster_sk._manifold import exact_knn, fit_mixture, import_umap  # noqa: E402
from deepcluster_sk.metrics import cluster_accuracy  # noqa: E402

SETS = ("digits", "digits_pca20", "mnist2000", "mnist1000")

VARIANTS = {
    "base": {},
    "k25": {"k": 25},
    "k30": {"k": 30},
    "k40": {"k": 40},
    "std": {"prep": "std"},
    "cos": {"prep": "cos"},
    "std-k25": {"prep": "std", "k": 25},
    "std-k30": {"prep": "std", "k": 30},
    "std-k40": {"prep": "std", "k": 40},
    "mix0.5": {"set_op_mix_ratio": 0.5},
    "lc2": {"local_connectivity": 2.0},
    "neg10": {"negative_sample_rate": 10},
    "k30-neg3": {"k": 30, "negative_sample_rate": 3},
}


def prepared(embedding, prep):
    """The embedding as the variant hands it to UMAP, in float64."""
    Z = np.asarray(embedding, dtype=np.float64)
    if prep == "std":
        return (Z - Z.mean(axis=0)) / Z.std(axis=0)
    if prep == "cos":
        return Z / np.linalg.norm(Z, axis=1, keepdims=True)
    return Z


def manifold_labels(embedding, seed, k=20, prep=None, **umap_options):
    """UMAP of the prepared embedding, then the mixture's labels."""
    Z = prepared(embedding, prep)
    reducer = import_umap().UMAP(
        n_neighbors=k, n_components=10, min_dist=0.0, init="spectral",
        random_state=seed, n_epochs=_UMAP_EPOCHS, precomputed_knn=exact_knn(Z, k),
        **umap_options,
    )
    coordinates = reducer.fit_transform(Z.astype(np.float32))
    return fit_mixture(coordinates, 10, covariance_type="full", n_init=MIXTURE_N_INIT,
                       random_state=seed).labels


def embeddings(name, X, seeds, cache):
    """N2D's training embedding of ``X`` for each seed, cached if asked."""
    found = []
    for seed in seeds:
        path = cache / f"{name}_{seed}.npy" if cache else None
        if path is not None and path.exists():
            found.append(np.load(path))
            continue
        embedding = n2d_fit(X, seed)._fit_embedding_
        if path is not None:
            np.save(path, embedding)
        found.append(embedding)
    return found


def main():
    args = start_study(
        __doc__.splitlines()[0],
        (("--sets",), dict(nargs="+", default=list(SETS))),
        (("--variants",), dict(nargs="+", choices=list(VARIANTS), default=list(VARIANTS))),
        (("--seeds",), dict(type=int, nargs="+", default=None,
                            help="N2D seeds; default 0-4, 0-2 for mnist_test")),
        (("--cache",), dict(type=Path, default=None)),
    )
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    for name, (X, y) in study_sets(args.sets, args.mnist_dir).items():
        seeds = args.seeds or list(range(3 if name == "mnist_test" else 5))
        fixed = embeddings(name, X, seeds, args.cache)
        for variant in args.variants:
            start, accs = time.perf_counter(), []
            for seed, embedding in zip(seeds, fixed):
                for umap_seed in (100 * seed, 100 * seed + 1):
                    labels = manifold_labels(embedding, umap_seed, **VARIANTS[variant])
                    accs.append(round(cluster_accuracy(y, labels), 4))
            print(json.dumps({
                "variant": variant, "data": name, "seeds": seeds,
                "mean": round(float(np.mean(accs)), 4), "worst": min(accs),
                "seconds_per_step": round((time.perf_counter() - start) / len(accs), 2),
                "accs": accs,
            }), flush=True)


if __name__ == "__main__":
    main()
