"""Autoencoder step time in float32 and in bfloat16 autocast, by network and batch.

The measurement behind ``BFLOAT16_MIN_WORK`` in
``deepcluster_sk/_torch/_precision.py``: for the default networks of a small
table, digits, 128 features and MNIST, at batches from 64 to 4 096, the
median time of one pretraining step (``EndToEndPhase.step``, Adam on the
reconstruction error) with the fit's precision set as a fit sets it, and a
ClusterMLP step (batch normalisation, IMSAT's and DAC's network) for the
two largest networks.

Run alone on the machine:  python benchmarks/tuning/precision_steps.py [--out FOLDER]
Writes benchmarks/results/tuning/precision_steps.md and .json (or under ``--out``).
"""

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from imbalance import environment  # noqa: E402

from deepcluster_sk._torch._data import TrainingData  # noqa: E402
from deepcluster_sk._torch._precision import cpu_has_bfloat16_units  # noqa: E402
from deepcluster_sk._torch._work import WorkCounter  # noqa: E402
from deepcluster_sk._training._optim import make_adam  # noqa: E402
from deepcluster_sk._training._pretraining import EndToEndPhase  # noqa: E402
from deepcluster_sk._training._sampler import RowSampler  # noqa: E402
from deepcluster_sk.nn import ClusterMLP, MLPAutoencoder  # noqa: E402

#: (label, n_features, hidden_dims) of the "auto" autoencoders.
NETWORKS = (
    ("table (13 features)", 13, (64, 64, 128)),
    ("digits (64 features)", 64, (128, 128, 256)),
    ("128 features", 128, (256, 256, 512)),
    ("MNIST (784 features)", 784, (500, 500, 2000)),
)
BATCHES = (64, 256, 1024, 4096)
#: (label, n_features, hidden_dims) of ClusterMLP networks (IMSAT, DAC).
CLUSTER_NETWORKS = (
    ("ClusterMLP digits", 64, (128, 128)),
    ("ClusterMLP MNIST", 784, (1200, 1200)),
)
PRECISIONS = ("float32", "bfloat16")
WARMUP, REPEATS = 5, 5
#: Samples per timed run, so that small batches run many steps.
SAMPLES_PER_RUN = 32768
RESULTS = Path(__file__).resolve().parents[1] / "results" / "tuning"


def _time(step, x, batch):
    """Median seconds per step over ``REPEATS`` runs."""
    n_steps = max(5, min(200, SAMPLES_PER_RUN // batch))
    for _ in range(WARMUP):
        step(x)
    runs = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(n_steps):
            step(x)
        runs.append((time.perf_counter() - start) / n_steps)
    return statistics.median(runs)


def autoencoder_step(n_features, hidden_dims, batch, precision):
    """The pretraining step and its forward multiply-adds per step."""
    torch.manual_seed(0)
    autoencoder = MLPAutoencoder(n_features, hidden_dims, 10)
    x = torch.rand(batch, n_features)
    data = TrainingData(x.numpy(), torch.device("cpu"))
    data.precision = precision
    sampler = RowSampler(batch, batch, torch.Generator(), data.device)
    phase = EndToEndPhase(autoencoder, data, sampler, 1, 1e-3, "")
    with WorkCounter(autoencoder) as counter, torch.no_grad():
        autoencoder.decoder(autoencoder.encoder(x))

    def step(rows):
        with data.autocast():
            return phase.step(rows)

    return step, x, counter.multiply_adds


def cluster_mlp_step(n_features, hidden_dims, batch, precision):
    """A ClusterMLP step: cross-entropy to random labels, Adam."""
    torch.manual_seed(0)
    network = ClusterMLP(n_features, 10, hidden_dims)
    x = torch.rand(batch, n_features)
    y = torch.randint(0, 10, (batch,))
    data = TrainingData(x.numpy(), torch.device("cpu"))
    data.precision = precision
    optimizer = make_adam(network.parameters(), 1e-3)
    with WorkCounter(network) as counter, torch.no_grad():
        network.eval()
        network(x)
    network.train()

    def step(rows):
        with data.autocast():
            loss = torch.nn.functional.cross_entropy(network(rows).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step, x, counter.multiply_adds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="folder for the results (default: results/tuning)")
    out = parser.parse_args(argv).out
    rows = []
    cases = [(autoencoder_step, *net) for net in NETWORKS] + [
        (cluster_mlp_step, *net) for net in CLUSTER_NETWORKS
    ]
    for build, label, n_features, hidden_dims in cases:
        batches = BATCHES if build is autoencoder_step else (256, 1024)
        for batch in batches:
            row = {"network": label, "batch": batch}
            for precision in PRECISIONS:
                step, x, work = build(n_features, hidden_dims, batch, precision)
                row["work"] = work
                row[precision] = _time(step, x, batch)
            row["speedup"] = row["float32"] / row["bfloat16"]
            rows.append(row)
            print(
                f"{label:24s} batch {batch:5d}  {row['work'] / 1e6:9.1f} M  "
                f"fp32 {row['float32'] * 1e3:8.2f} ms  bf16 {row['bfloat16'] * 1e3:8.2f} ms"
                f"  x{row['speedup']:.2f}",
                flush=True,
            )
    write(rows, out)


def write(rows, out=RESULTS):
    out.mkdir(parents=True, exist_ok=True)
    env = {**environment(), "bfloat16_units": cpu_has_bfloat16_units()}
    (out / "precision_steps.json").write_text(
        json.dumps({"environment": env, "rows": rows}, indent=1)
    )
    lines = [
        "# Training step time in float32 and in bfloat16 autocast",
        "",
        f"Command: `{shlex.join(['python', *sys.argv])}`  ",
        f"Machine: {env['cpu_model']}, {env['torch_threads']} torch threads, torch "
        f"{env['torch']}, bfloat16 units: {env['bfloat16_units']}; median of "
        f"{REPEATS} runs after {WARMUP} warm-up steps, on random data.",
        "",
        "| network | batch | forward multiply-adds per step | float32 ms | "
        "bfloat16 ms | speed-up |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['network']} | {r['batch']} | {r['work'] / 1e6:.1f} M | "
            f"{r['float32'] * 1e3:.2f} | {r['bfloat16'] * 1e3:.2f} | "
            f"{r['speedup']:.2f}x |"
        )
    (out / "precision_steps.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
