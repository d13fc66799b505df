"""Does digits train as well with fewer or larger pretraining steps?

N2DClusterer with the defaults except ``batch_size`` and ``pretrain_epochs``
(the default is batch 64 for 188 epochs, 5 452 steps), seeds 0-4, each fit
timed whole (pretraining, UMAP, mixture) after umap-learn's compilation.
Run alone on the machine::

    python benchmarks/tuning/digits_budget.py > benchmarks/results/tuning/digits_budget.jsonl
"""

import json
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits

from deepcluster_sk import N2DClusterer
from deepcluster_sk._manifold import import_umap
from deepcluster_sk.metrics import cluster_accuracy

CONFIGS = [(64, 188), (64, 94), (64, 60), (128, 188), (128, 94), (256, 188)]


def main():
    warnings.filterwarnings("ignore")
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    import_umap().UMAP().fit(X[:200])  # numba compilation, not timed
    for batch_size, epochs in CONFIGS:
        for seed in range(5):
            start = time.perf_counter()
            model = N2DClusterer(n_clusters=10, random_state=seed, batch_size=batch_size,
                                 pretrain_epochs=epochs).fit(X)
            print(json.dumps(dict(
                batch=batch_size, epochs=epochs, seed=seed,
                acc=cluster_accuracy(y, model.labels_),
                seconds=time.perf_counter() - start,
                loss=model.history_["pretrain_loss"][-1],
            )), flush=True)


if __name__ == "__main__":
    main()
