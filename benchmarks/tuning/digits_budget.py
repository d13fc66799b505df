"""Does digits train as well with fewer or larger pretraining steps?

N2DClusterer with the defaults except ``batch_size``, ``pretrain_epochs``
and ``pretrain_learning_rate`` (the default is batch 64 for 188 epochs,
5 452 steps, at 1e-3), seeds 0-4, each fit timed whole (pretraining, UMAP,
mixture) after umap-learn's compilation. Run alone on the machine::

    python benchmarks/tuning/digits_budget.py >> benchmarks/results/tuning/digits_budget.jsonl
    python benchmarks/tuning/digits_budget.py --configs 256:188:4e-3 128:188:2e-3

A config is ``batch:epochs`` (at the default learning rate) or
``batch:epochs:learning_rate``.
"""

import argparse
import json
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits

from deepcluster_sk import N2DClusterer
from deepcluster_sk._manifold import import_umap
from deepcluster_sk.metrics import cluster_accuracy

CONFIGS = ["64:188", "64:94", "64:60", "128:188", "128:94", "256:188"]


def parse_config(text):
    """``(batch_size, epochs, learning_rate)`` of ``batch:epochs[:lr]``."""
    batch, epochs, *lr = text.split(":")
    return int(batch), int(epochs), float(lr[0]) if lr else 1e-3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=CONFIGS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    import_umap().UMAP().fit(X[:200])  # numba compilation, not timed
    N2DClusterer(10, pretrain_epochs=1, random_state=0).fit(X[:1200])
    for batch_size, epochs, lr in map(parse_config, args.configs):
        for seed in args.seeds:
            start = time.perf_counter()
            model = N2DClusterer(n_clusters=10, random_state=seed, batch_size=batch_size,
                                 pretrain_epochs=epochs,
                                 pretrain_learning_rate=lr).fit(X)
            print(json.dumps(dict(
                batch=batch_size, epochs=epochs, lr=lr, seed=seed,
                acc=cluster_accuracy(y, model.labels_),
                seconds=time.perf_counter() - start,
                loss=model.history_["pretrain_loss"][-1],
            )), flush=True)


if __name__ == "__main__":
    main()
