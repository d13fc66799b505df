"""Does bfloat16 cost accuracy? float32 and bfloat16 at equal samples seen.

The same estimator, the same explicit batch and pretraining length, once
with ``precision="float32"`` and once with ``precision="bfloat16"``:
``AutoencoderKMeans`` (k-means on the pretrained embedding, and the final
reconstruction error), then ``DECClusterer`` on the same pretrained network
through the ``memory`` cache (the cache keys on the precision, so each
precision pretrains its own network).

``digits``: X / 16, batch 64, the ``"auto"`` pretraining length, seeds 0-4.
``mnist-test``: the 10 000 MNIST test images / 255, batch 256, 30 epochs,
seeds 0-2.

Run alone on the machine, e.g.::

    python benchmarks/precision_accuracy.py --data digits
    python benchmarks/precision_accuracy.py --data mnist-test \\
        --mnist-dir ../shared/data/mnist

Writes ``benchmarks/results/precision_accuracy_<data>.md`` and ``.json``.
"""

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from auto_defaults import datasets
from deepcluster_sk import AutoencoderKMeans, DECClusterer
from deepcluster_sk.metrics import cluster_accuracy
from imbalance import environment

SETTINGS = {
    "digits": ({"batch_size": 64}, [0, 1, 2, 3, 4]),
    "mnist-test": ({"batch_size": 256, "pretrain_epochs": 30}, [0, 1, 2]),
}
PRECISIONS = ("float32", "bfloat16")
RESULTS = Path(__file__).resolve().parent / "results"


def fit_pair(X, y, k, params):
    """AutoencoderKMeans, then DEC from its cached autoencoder; their scores."""
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        aekm = AutoencoderKMeans(k, memory=cache, **params).fit(X)
        aekm_seconds = time.perf_counter() - start
        start = time.perf_counter()
        dec = DECClusterer(k, memory=cache, **params).fit(X)
        dec_seconds = time.perf_counter() - start
    return {
        "ae_kmeans_acc": cluster_accuracy(y, aekm.labels_),
        "dec_acc": cluster_accuracy(y, dec.labels_),
        "final_mse": aekm.history_["pretrain_loss"][-1],
        "ae_kmeans_s": aekm_seconds,
        "dec_self_training_s": dec_seconds,
        "settings": {"batch_size": aekm.batch_size_,
                     "pretrain_epochs": aekm.pretrain_epochs_,
                     "precision": aekm.precision_},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=SETTINGS, required=True)
    parser.add_argument("--mnist-dir", type=Path)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    ((X, y, _),) = datasets(args.data, args.mnist_dir).values()
    k = len(np.unique(y))
    params, seeds = SETTINGS[args.data]
    rows = []
    for seed in seeds:
        for precision in PRECISIONS:
            row = fit_pair(X, y, k, {**params, "precision": precision,
                                     "random_state": seed, "device": "cpu"})
            row.update(seed=seed, precision=precision)
            rows.append(row)
            print(json.dumps(row), flush=True)
    write(args, params, rows)


def _summary(rows, key):
    values = [r[key] for r in rows]
    return statistics.mean(values), min(values), max(values)


def write(args, params, rows):
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"precision_accuracy_{args.data}"
    env = environment()
    stem.with_suffix(".json").write_text(
        json.dumps({"environment": env, "params": params, "rows": rows}, indent=1)
    )
    lines = [
        f"# float32 against bfloat16 at equal samples seen: {args.data}",
        "",
        f"Command: `{shlex.join(['python', *sys.argv])}`  ",
        f"Machine: {env['cpu_model']}, {env['torch_threads']} torch threads, torch "
        f"{env['torch']}. Settings besides the precision: {params}, the rest "
        "the defaults; DEC self-trains the cached autoencoder of the "
        "AutoencoderKMeans fit of the same seed and precision.",
        "",
        "| precision | seeds | AE + k-means ACC mean (min-max) | DEC ACC mean "
        "(min-max) | final reconstruction MSE mean | AE + k-means fit s | "
        "DEC fit s (cached AE) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for precision in PRECISIONS:
        mine = [r for r in rows if r["precision"] == precision]
        aekm = _summary(mine, "ae_kmeans_acc")
        dec = _summary(mine, "dec_acc")
        lines.append(
            f"| {precision} | {len(mine)} | {aekm[0]:.3f} ({aekm[1]:.3f}-{aekm[2]:.3f})"
            f" | {dec[0]:.3f} ({dec[1]:.3f}-{dec[2]:.3f}) | "
            f"{_summary(mine, 'final_mse')[0]:.5f} | "
            f"{_summary(mine, 'ae_kmeans_s')[0]:.1f} | "
            f"{_summary(mine, 'dec_self_training_s')[0]:.1f} |"
        )
    mse = {p: _summary([r for r in rows if r["precision"] == p], "final_mse")[0]
           for p in PRECISIONS}
    lines += ["", f"Reconstruction error, bfloat16 / float32: "
              f"{mse['bfloat16'] / mse['float32']:.4f}."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
