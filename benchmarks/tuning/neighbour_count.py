"""Does UMAP's ``n_neighbors`` of the manifold step depend on the data's size?

N2DClusterer (or DECClusterer, ``--estimator dec``) with its defaults
except ``n_neighbors``, on raw digits and the MNIST test split subsampled
to a few sizes (``--sets``), seeds 0-4, each fit timed whole after
umap-learn's compilation; one JSON line per fit. Run alone on the
machine::

    python benchmarks/tuning/neighbour_count.py \\
        >> benchmarks/results/tuning/neighbour_count.jsonl

Full-size digits and the six tables come from ``estimator_variants.py``
(``n2d`` / ``dec`` with ``{"n_neighbors": 40}``).
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from auto_defaults import fit_and_score  # noqa: E402
from manifold_sets import start_study, study_sets  # noqa: E402

from deepcluster_sk import DECClusterer, N2DClusterer  # noqa: E402

SETS = ("digits1000", "mnist2000", "mnist1000")
ESTIMATORS = {"n2d": N2DClusterer, "dec": DECClusterer}


def main():
    args = start_study(
        __doc__.splitlines()[0],
        (("--neighbours",), dict(type=int, nargs="+", default=[20, 40])),
        (("--seeds",), dict(type=int, nargs="+", default=[0, 1, 2, 3, 4])),
        (("--sets",), dict(nargs="+", default=list(SETS))),
        (("--estimator",), dict(choices=sorted(ESTIMATORS), default="n2d")),
    )
    make = ESTIMATORS[args.estimator]
    for name, (X, y) in study_sets(args.sets, args.mnist_dir).items():
        for k in args.neighbours:
            for seed in args.seeds:
                estimator = make(10, n_neighbors=k, random_state=seed, device="cpu")
                row = fit_and_score(estimator, X, y, False)
                print(json.dumps({"data": name, "estimator": args.estimator,
                                  "n_neighbors": k, "seed": seed, **row}), flush=True)


if __name__ == "__main__":
    main()
