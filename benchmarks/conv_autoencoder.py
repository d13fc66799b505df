"""ConvAutoencoder against the default MLP autoencoder, at equal pretraining time.

For each data set and seed, ``AutoencoderKMeans`` and ``DECClusterer`` are
fitted four ways:

``mlp``
    ``Est(n_clusters=10, random_state=seed)``: the default
    :class:`~deepcluster_sk.nn.MLPAutoencoder` and its ``"auto"`` budget.
``conv``
    ``autoencoder=ConvAutoencoder`` (DCEC's shape: 32, 64, 128 channels,
    kernels 5, 5, 3, an embedding of 10) with as many pretraining epochs as
    take the wall time of the MLP's ``AutoencoderKMeans`` fit (its
    pretraining and k-means) on the same seed; one epoch of the
    convolutional autoencoder is timed first, alone. Self-training keeps
    DEC's defaults.

Images are 8 x 8 (scikit-learn's digits, ``X / 16``) and 28 x 28 (the 10 000
MNIST test images, ``/ 255``), given as flat rows, which ``ConvAutoencoder``
reads as square one-channel images. Run from the repository root, alone on
the machine::

    python benchmarks/conv_autoencoder.py --data digits --seeds 0 1 2
    python benchmarks/conv_autoencoder.py --data mnist-test --seeds 0 1 \\
        --mnist-dir ../shared/data/mnist --methods ae-kmeans

Results go to ``benchmarks/results/conv_autoencoder.md`` and ``.json``;
runs are appended, so the data sets can be run in parts.
"""

import argparse
import json
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score

from deepcluster_sk import AutoencoderKMeans, DECClusterer
from deepcluster_sk.datasets import load_mnist
from deepcluster_sk.metrics import cluster_accuracy
from deepcluster_sk.nn import ConvAutoencoder
from imbalance import environment

ESTIMATORS = {"ae-kmeans": AutoencoderKMeans, "dec": DECClusterer}


def load(name, mnist_dir):
    """``(X, y)`` of a data set, pixels scaled to [0, 1]."""
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return (X / 16.0).astype(np.float32), y
    if mnist_dir is None:
        raise SystemExit("--data mnist-test needs --mnist-dir")
    X, y = load_mnist(mnist_dir)
    return X[60000:], y[60000:]


def fit(estimator, X, y):
    """Fit; return ACC, NMI, seconds, pretraining epochs and the warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        labels = estimator.fit_predict(X)
        seconds = time.perf_counter() - start
    return {
        "acc": cluster_accuracy(y, labels),
        "nmi": float(normalized_mutual_info_score(y, labels)),
        "seconds": seconds,
        "pretrain_epochs": int(estimator.pretrain_epochs_),
        "n_iter": int(estimator.n_iter_),
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    }


def conv_epoch_seconds(X, seed, short=1, long=None):
    """Wall time of one pretraining epoch of the ConvAutoencoder on ``X``.

    After a warm-up fit (the first fit of a process pays one-time costs),
    fits of ``short`` and ``long`` epochs; their difference over
    ``long - short`` is an epoch without the fixed costs (building,
    k-means). On data of a few thousand rows an epoch takes a fraction of
    a second, so ``long`` is larger there.
    """
    def seconds(epochs):
        model = AutoencoderKMeans(
            10, autoencoder=ConvAutoencoder, pretrain_epochs=epochs, n_init=1,
            random_state=seed,
        )
        start = time.perf_counter()
        model.fit(X)
        return time.perf_counter() - start

    if long is None:
        long = 4 if len(X) > 5000 else 12
    seconds(short)
    first, last = seconds(short), seconds(long)
    return (last - first) / (long - short) if last > first else last / long


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, choices=["digits", "mnist-test"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=list(ESTIMATORS),
                        default=list(ESTIMATORS))
    parser.add_argument("--mnist-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    X, y = load(args.data, args.mnist_dir)
    json_path = args.out / "conv_autoencoder.json"
    report = json.loads(json_path.read_text()) if json_path.exists() else {"runs": []}
    report.setdefault("commands", []).append(shlex.join(["python", *sys.argv]))
    report["environment"] = environment()
    for seed in args.seeds:
        epoch = conv_epoch_seconds(X, seed)
        # The MLP's AutoencoderKMeans fit is its pretraining (and k-means):
        # the conv networks get the epochs that take as long.
        mlp_aek = fit(AutoencoderKMeans(10, random_state=seed), X, y)
        epochs = max(1, round(mlp_aek["seconds"] / epoch))
        for method in args.methods:
            Estimator = ESTIMATORS[method]
            mlp = mlp_aek if method == "ae-kmeans" else fit(
                Estimator(10, random_state=seed), X, y
            )
            conv = fit(
                Estimator(10, autoencoder=ConvAutoencoder, pretrain_epochs=epochs,
                          random_state=seed),
                X, y,
            )
            for network, row in (("mlp", mlp), ("conv", conv)):
                row = dict(row, data=args.data, method=method, network=network,
                           seed=seed, conv_epoch_seconds=epoch)
                print(
                    f"{args.data} {method} {network} seed {seed}: ACC {row['acc']:.3f} "
                    f"NMI {row['nmi']:.3f} in {row['seconds']:.1f} s, "
                    f"{row['pretrain_epochs']} epochs", flush=True,
                )
                report["runs"] = [
                    r for r in report["runs"]
                    if (r["data"], r["method"], r["network"], r["seed"])
                    != (args.data, method, network, seed)
                ]
                report["runs"].append(row)
            json_path.write_text(json.dumps(report, indent=1))
    write_markdown(report, args.out / "conv_autoencoder.md")


def write_markdown(report, path):
    """The summary table: mean and worst over seeds per data set, method, network."""
    runs = report["runs"]
    keys = sorted({(r["data"], r["method"], r["network"]) for r in runs},
                  key=lambda k: (k[0], k[1], k[2] != "mlp"))
    lines = [
        "# ConvAutoencoder against the MLP autoencoder, equal pretraining time",
        "",
        "Generated by `benchmarks/conv_autoencoder.py` (its docstring gives the "
        "protocol).",
        "",
        "Commands:",
        *[f"- `{c}`" for c in report["commands"]],
        "",
        f"Machine: {report['environment'].get('cpu_model', 'CPU')}, "
        f"{report['environment']['cpu_count']} cores, torch "
        f"{report['environment']['torch']}, torch threads "
        f"{report['environment']['torch_threads']}.",
        "",
        "Pixels / 255 (MNIST) or / 16 (digits), 10 clusters, rows of pixels; "
        "`conv` is `autoencoder=ConvAutoencoder` with the pretraining epochs "
        "that take the time of the `mlp` AutoencoderKMeans fit of the same seed. "
        "Warnings are ConvergenceWarnings (self-training stopped at max_iter).",
        "",
        "| data | estimator | network | seeds | ACC mean | ACC worst | NMI mean "
        "| pretraining epochs (seed 0) | fit s mean | warnings |",
        "|" + " --- |" * 10,
    ]
    for data, method, network in keys:
        own = [r for r in runs if (r["data"], r["method"], r["network"])
               == (data, method, network)]
        acc = np.array([r["acc"] for r in own])
        first = min(own, key=lambda r: r["seed"])
        lines.append(
            f"| {data} | {method} | {network} | {len(own)} | {acc.mean():.3f} "
            f"| {acc.min():.3f} | {np.mean([r['nmi'] for r in own]):.3f} "
            f"| {first['pretrain_epochs']} | "
            f"{np.mean([r['seconds'] for r in own]):.1f} "
            f"| {sum(len(r['warnings']) for r in own)} |"
        )
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
