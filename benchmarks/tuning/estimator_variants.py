"""Fit one estimator with non-default parameters on the benchmark data sets.

The estimator-level half of the tuning behind
``benchmarks/results/auto_defaults.md`` (``dec_variants.py`` is the other):
each fit is ``Est(n_clusters=k, random_state=seed, device="cpu", **params)``,
in a ``Pipeline`` after ``StandardScaler`` for the tabular sets, and prints
one JSON line. ``summarise.py`` makes the table.

Run, e.g.::

    python benchmarks/tuning/estimator_variants.py imsat \\
        '{"hidden_dims": "auto", "eps_scale": 1.0}' im_auto_e1 digits 0 1 2 3 4

``--set module.NAME=value`` (before the other arguments, repeatable) sets a
module constant of a rule first, e.g. ``--set
deepcluster_sk._auto._IMSAT_MIN_STEPS=500``, or a class attribute, e.g.
``--set deepcluster_sk._estimators._dac.DACClusterer._optimizer='"adam"'``.

Data sets: those of ``auto_defaults.py --suite tabular`` and ``digits``, and
``mnist_test`` (set ``MNIST_DIR``, default ``../shared/data/mnist``).
"""

import importlib
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from auto_defaults import datasets, fit_and_score, warm_up, warm_up_umap  # noqa: E402

from deepcluster_sk import (  # noqa: E402
    AutoencoderKMeans,
    DACClusterer,
    DECClusterer,
    IMSATClusterer,
    N2DClusterer,
)

ESTIMATORS = {
    "dec": DECClusterer,
    "n2d": N2DClusterer,
    "aek": AutoencoderKMeans,
    "imsat": IMSATClusterer,
    "dac": DACClusterer,
}


def load(name):
    if name == "mnist_test":
        return datasets("mnist-test", os.environ.get("MNIST_DIR", "../shared/data/mnist"))[name]
    return {**datasets("tabular", None), **datasets("digits", None)}[name]


def _resolve(path):
    """The module, or the attribute of a module (a class), named ``path``."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ModuleNotFoundError(path)


def set_constants(argv):
    """Apply and strip the leading ``--set module.NAME=value`` arguments."""
    constants = {}
    while argv and argv[0] == "--set":
        target, value = argv[1].split("=", 1)
        owner, name = target.rsplit(".", 1)
        setattr(_resolve(owner), name, json.loads(value))
        constants[target] = json.loads(value)
        argv = argv[2:]
    return constants, argv


def fits(estimator, params, names, seeds):
    """Fit ``estimator`` with ``params`` on each data set and seed, warmed up.

    Yields
    ------
    name, seed, row
        The data set, the seed and :func:`fit_and_score`'s row.
    """
    warm_up()
    warm_up_umap()
    for name in names.split(","):
        X, y, standardise = load(name)
        for seed in map(int, seeds):
            est = ESTIMATORS[estimator](
                len(np.unique(y)), random_state=seed, device="cpu", **params
            )
            yield name, seed, fit_and_score(est, X, y, standardise)


def main(argv):
    constants, argv = set_constants(argv)
    estimator, params, tag, names, *seeds = argv
    params = json.loads(params)
    for name, seed, row in fits(estimator, params, names, seeds):
        head = dict(tag=tag, estimator=estimator, params=params, data=name, seed=seed,
                    constants=constants)
        print(json.dumps({**head, **row}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
