"""Does UMAP's ``n_neighbors`` of the manifold step depend on the data's size?

N2DClusterer with its defaults except ``n_neighbors``, on raw digits and
the MNIST test split subsampled to a few sizes, seeds 0-4, each fit timed
whole after umap-learn's compilation; one JSON line per fit. Run alone on
the machine::

    python benchmarks/tuning/neighbour_count.py \\
        >> benchmarks/results/tuning/neighbour_count.jsonl

Full-size digits and the six tables come from ``estimator_variants.py``
(``n2d`` / ``dec`` with ``{"n_neighbors": 40}``).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from auto_defaults import datasets, fit_and_score, warm_up, warm_up_umap  # noqa: E402

from deepcluster_sk import N2DClusterer  # noqa: E402


def subsets(mnist_dir):
    """``{name: (X, y)}``: digits' first 1 000 rows; 2 000 and 1 000 MNIST test rows."""
    X, y = load_digits(return_X_y=True)
    found = {"digits1000": (X[:1000] / 16.0, y[:1000])}
    Xm, ym, _ = datasets("mnist-test", mnist_dir)["mnist_test"]
    order = np.random.RandomState(0).permutation(len(ym))
    for rows in (2000, 1000):
        found[f"mnist{rows}"] = (Xm[order[:rows]], ym[order[:rows]])
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    parser.add_argument("--neighbours", type=int, nargs="+", default=[20, 40])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    warm_up()
    warm_up_umap()
    for name, (X, y) in subsets(args.mnist_dir).items():
        for k in args.neighbours:
            for seed in args.seeds:
                estimator = N2DClusterer(10, n_neighbors=k, random_state=seed, device="cpu")
                row = fit_and_score(estimator, X, y, False)
                print(json.dumps({"data": name, "n_neighbors": k, "seed": seed, **row}),
                      flush=True)


if __name__ == "__main__":
    main()
