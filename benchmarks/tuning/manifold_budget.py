"""What UMAP's layout epochs and the mixture's initialisations buy.

The manifold step of ``N2DClusterer`` and of DEC's ``init="manifold"`` is
UMAP of the embedding, then a full-covariance Gaussian mixture of
``n_init`` initialisations. Both budgets cost seconds: umap-learn's own
layout runs 500 epochs up to 10 000 samples (200 above), single-threaded
when seeded, and each mixture initialisation is a full EM run. This fits
``N2DClusterer`` (and, with ``--dec``, ``DECClusterer``) on a cached
autoencoder for each layout-epochs x ``n_init`` variant, so every variant
of a seed starts from the same network, and prints one JSON line per fit.

Run alone on the machine, e.g.::

    python benchmarks/tuning/manifold_budget.py digits --seeds 0 1 2 3 4 \\
        --epochs 500 200 100 --n-init 5 10 20 --cache /tmp/mb_cache
    python benchmarks/tuning/manifold_budget.py mnist-test --seeds 0 1 2 \\
        --epochs 500 200 --n-init 5 10 --dec --cache /tmp/mb_cache

The first fit of each seed pretrains the autoencoder and is not one of the
variants; umap-learn's compilation is paid in a warm-up before.
"""

import argparse
import json
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score

import deepcluster_sk._auto as auto
import deepcluster_sk._estimators._dec as dec_module
from deepcluster_sk import DECClusterer, N2DClusterer
from deepcluster_sk.datasets import load_mnist
from deepcluster_sk.metrics import cluster_accuracy


def load(data, mnist_dir):
    if data == "digits":
        X, y = load_digits(return_X_y=True)
        return X / 16.0, y
    X, y = load_mnist(mnist_dir)
    return (X[60000:], y[60000:]) if data == "mnist-test" else (X, y)


def set_umap_epochs(epochs):
    auto._UMAP_EPOCHS = epochs


def fit(estimator, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        estimator.fit(X)
        seconds = time.perf_counter() - start
    return {
        "acc": cluster_accuracy(y, estimator.labels_),
        "nmi": normalized_mutual_info_score(y, estimator.labels_),
        "s": round(seconds, 2),
        "warn": [str(w.message)[:60] for w in caught],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", choices=["digits", "mnist-test", "mnist"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[500, 200])
    parser.add_argument("--n-init", type=int, nargs="+", default=[5])
    parser.add_argument("--dec", action="store_true", help="fit DEC too")
    parser.add_argument("--cache", required=True, help="the autoencoders' cache")
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    args = parser.parse_args()
    X, y = load(args.data, args.mnist_dir)
    # umap-learn's compilation, outside the timed fits.
    N2DClusterer(10, pretrain_epochs=1, random_state=0).fit(
        np.random.RandomState(0).rand(1200, 8)
    )
    for seed in args.seeds:
        N2DClusterer(10, random_state=seed, memory=args.cache).fit(X)  # pretraining
        for epochs in args.epochs:
            set_umap_epochs(epochs)
            for n_init in args.n_init:
                head = {"data": args.data, "seed": seed, "umap_epochs": epochs,
                        "n_init": n_init}
                n2d = N2DClusterer(10, random_state=seed, memory=args.cache,
                                   n_init=n_init)
                print(json.dumps({**head, "method": "n2d", **fit(n2d, X, y)}),
                      flush=True)
                if args.dec:
                    dec_module.MIXTURE_N_INIT = n_init
                    dec = DECClusterer(10, random_state=seed, memory=args.cache)
                    print(json.dumps({**head, "method": "dec", **fit(dec, X, y),
                                      "n_iter": dec.n_iter_}), flush=True)


if __name__ == "__main__":
    main()
