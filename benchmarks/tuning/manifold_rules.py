"""The manifold step's rules, measured: pretraining length, neighbours, mixture inits.

For each data set, seed and pretraining length, one N2DClusterer fit trains
the autoencoder (timed whole: pretraining, UMAP, mixture) into a ``memory``
cache; the variants below then reuse that autoencoder, so each costs only
its own step:

- ``n2d`` with ``n_neighbors`` in ``--neighbours`` (UMAP + mixture);
- ``dec`` with ``init="manifold"`` (UMAP + mixture + self-training) and
  ``init="kmeans"``;
- ``manifold=False`` (the mixture on the embedding), on the tables.

Run alone on the machine, e.g.::

    python benchmarks/tuning/manifold_rules.py --data digits --epochs 60 120 188
    python benchmarks/tuning/manifold_rules.py --data mnist-test --seeds 0 \\
        --epochs 70 133 --mnist-dir ../shared/data/mnist

Appends one JSON line per fit to
``benchmarks/results/tuning/manifold_rules.jsonl``.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from auto_defaults import datasets, fit_and_score  # noqa: E402

from deepcluster_sk import DECClusterer, N2DClusterer  # noqa: E402


def _fit(estimator, X, y, standardise):
    row = fit_and_score(estimator, X, y, standardise)
    return {"acc": row["acc"], "nmi": row["nmi"], "seconds": row["seconds"],
            "warnings": len(row["warnings"])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True,
                        choices=["tabular", "digits", "mnist-test", "mnist"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", nargs="+", default=["auto"])
    parser.add_argument("--neighbours", type=int, nargs="+", default=[20])
    parser.add_argument("--no-dec", action="store_true")
    parser.add_argument("--mnist-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1]
                        / "results" / "tuning" / "manifold_rules.jsonl")
    args = parser.parse_args(argv)
    sets = datasets(args.data, args.mnist_dir)
    with args.out.open("a") as out:
        for name, (X, y, standardise) in sets.items():
            k = len(np.unique(y))
            for epochs in args.epochs:
                epochs = epochs if epochs == "auto" else int(epochs)
                for seed in args.seeds:
                    with tempfile.TemporaryDirectory() as cache:
                        common = dict(random_state=seed, pretrain_epochs=epochs,
                                      memory=cache)
                        variants = [
                            ("n2d", N2DClusterer(k, manifold=True, n_neighbors=nn,
                                                 **common), {"n_neighbors": nn})
                            for nn in args.neighbours
                        ]
                        variants.append(("n2d-no-manifold",
                                         N2DClusterer(k, manifold=False, **common), {}))
                        if not args.no_dec:
                            variants += [
                                ("dec-manifold",
                                 DECClusterer(k, init="manifold", **common), {}),
                                ("dec-kmeans", DECClusterer(k, init="kmeans", **common),
                                 {}),
                            ]
                        for i, (method, estimator, extra) in enumerate(variants):
                            row = {"data": name, "method": method, "seed": seed,
                                   "pretrain_epochs": epochs, **extra,
                                   "includes_pretraining": i == 0,
                                   **_fit(estimator, X, y, standardise)}
                            print(json.dumps(row), flush=True)
                            out.write(json.dumps(row) + "\n")
                            out.flush()


if __name__ == "__main__":
    main()
