"""Batch size, precision and learning rate of pretraining, at equal wall time.

For each configuration ``(batch_size, precision, pretrain_learning_rate)``
the pretraining step's throughput is measured first (``EndToEndPhase.step``
on the data's default network), and the number of epochs is set so that
pretraining takes about ``--seconds``; then ``AutoencoderKMeans`` is fitted
with those settings (ACC of k-means on the embedding, the final
reconstruction error) and ``DECClusterer`` on the same pretrained network
through the ``memory`` cache (ACC after self-training).

Run alone on the machine, e.g.::

    python benchmarks/tuning/batch_equal_time.py --data mnist-test \\
        --mnist-dir ../shared/data/mnist --seconds 60 \\
        --configs 256:bfloat16:1e-3 1024:bfloat16:1e-3 1024:bfloat16:3e-3

Appends to benchmarks/results/tuning/batch_equal_time.jsonl.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from auto_defaults import datasets  # noqa: E402
from imbalance import environment  # noqa: E402

from deepcluster_sk import AutoencoderKMeans, DECClusterer  # noqa: E402
from deepcluster_sk._auto import auto_hidden_dims  # noqa: E402
from deepcluster_sk._torch._data import TrainingData  # noqa: E402
from deepcluster_sk._training._pretraining import EndToEndPhase  # noqa: E402
from deepcluster_sk._training._sampler import RowSampler  # noqa: E402
from deepcluster_sk.metrics import cluster_accuracy  # noqa: E402
from deepcluster_sk.nn import MLPAutoencoder  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "results" / "tuning" / "batch_equal_time.jsonl"


def samples_per_second(X, batch_size, precision, learning_rate, steps=20):
    """Throughput of the pretraining step of the default network on ``X``."""
    torch.manual_seed(0)
    n_features = X.shape[1]
    autoencoder = MLPAutoencoder(n_features, auto_hidden_dims(n_features), 10)
    data = TrainingData(X[: max(batch_size, 1)], torch.device("cpu"))
    data.precision = precision
    sampler = RowSampler(data.n_samples, batch_size, torch.Generator(), data.device)
    phase = EndToEndPhase(autoencoder, data, sampler, 1, learning_rate, "")
    x = torch.from_numpy(np.ascontiguousarray(X[:batch_size], dtype=np.float32))
    with data.autocast():
        for _ in range(3):
            phase.step(x)
        start = time.perf_counter()
        for _ in range(steps):
            phase.step(x)
    return steps * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--mnist-dir")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--configs", nargs="+", required=True,
                        help="batch:precision:learning_rate")
    parser.add_argument("--no-dec", action="store_true")
    args = parser.parse_args()
    ((X, y, _),) = datasets(args.data, args.mnist_dir).values()
    k = len(np.unique(y))
    env = environment()
    for config in args.configs:
        batch, precision, lr = config.split(":")
        batch, lr = int(batch), float(lr)
        rate = samples_per_second(X, batch, precision, lr)
        epochs = max(1, round(args.seconds * rate / X.shape[0]))
        for seed in args.seeds:
            params = dict(batch_size=batch, precision=precision, pretrain_epochs=epochs,
                          pretrain_learning_rate=lr, random_state=seed)
            with tempfile.TemporaryDirectory() as cache:
                start = time.perf_counter()
                aekm = AutoencoderKMeans(k, memory=cache, **params).fit(X)
                aekm_s = time.perf_counter() - start
                row = {
                    "data": args.data, "config": config, "seed": seed,
                    "samples_per_s": rate, "epochs": epochs, "steps": epochs * -(-X.shape[0] // batch),
                    "ae_kmeans_acc": cluster_accuracy(y, aekm.labels_),
                    "final_mse": aekm.history_["pretrain_loss"][-1],
                    "ae_kmeans_s": aekm_s,
                }
                if not args.no_dec:
                    start = time.perf_counter()
                    dec = DECClusterer(k, memory=cache, **params).fit(X)
                    row["dec_acc"] = cluster_accuracy(y, dec.labels_)
                    row["dec_self_training_s"] = time.perf_counter() - start
                    row["dec_stop"] = dec.history_["stop_reason"]
                    row["dec_n_iter"] = dec.n_iter_
            row["environment"] = env
            print(json.dumps({k_: v for k_, v in row.items() if k_ != "environment"}),
                  flush=True)
            with OUT.open("a") as out:
                out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
