"""How long DEC from the manifold clusters trains towards the mixture's posteriors.

``DECClusterer(init="manifold")`` starts at the mean embedding of each
N2D cluster and, for its first ``_MANIFOLD_TARGET_UPDATES`` target periods,
trains towards the mixture's sharpened posteriors instead of its own
target. This sets that constant to each value given (0: its own target from
the start; -1: ``init="kmeans"``, the paper's start) and fits DEC on a
cached autoencoder, so every variant of a seed starts from the same network.

Run alone on the machine, e.g.::

    python benchmarks/tuning/manifold_target.py mnist-test 70 0 0,1,3,40
    for s in 0 1 2 3 4; do
        python benchmarks/tuning/manifold_target.py digits 188 $s 0,1,3,5,-1
    done

Prints one JSON line per fit (the first fit of a seed includes pretraining
and umap-learn's compilation); ``benchmarks/results/tuning/manifold_target.jsonl``
holds the lines of the runs above, made by an earlier form of this script
(a cache directory kept between calls; during the held periods it counted
label changes against the mixture's labels, which changes ``first_changes``
and could change when training stops, not what it trains towards).
"""

import json
import sys
import tempfile
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score

import deepcluster_sk._estimators._dec as dec_module
from deepcluster_sk import DECClusterer
from deepcluster_sk.datasets import load_mnist
from deepcluster_sk.metrics import cluster_accuracy


def main(data, epochs, seed, holds, mnist_dir="../shared/data/mnist"):
    if data == "mnist-test":
        X, y = load_mnist(mnist_dir)
        X, y = X[60000:], y[60000:]
    else:
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
    with tempfile.TemporaryDirectory() as cache:
        for hold in holds:
            dec_module._MANIFOLD_TARGET_UPDATES = max(hold, 0)
            init = {"init": "kmeans"} if hold < 0 else {}
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                start = time.perf_counter()
                model = DECClusterer(10, random_state=seed, pretrain_epochs=epochs,
                                     memory=cache, **init).fit(X)
                seconds = time.perf_counter() - start
            print(json.dumps({
                "data": data, "epochs": epochs, "seed": seed, "hold": hold,
                "acc": cluster_accuracy(y, model.labels_),
                "nmi": normalized_mutual_info_score(y, model.labels_),
                "s": seconds, "n_iter": model.n_iter_,
                "stop": model.history_["stop_reason"],
                "first_changes": [round(c, 4) for c in model.history_["label_change"][:4]],
                "warn": [str(w.message)[:60] for w in caught],
            }), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
         [int(h) for h in sys.argv[4].split(",")])
