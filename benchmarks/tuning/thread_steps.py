"""Seconds per autoencoder training step on one and on two torch threads.

The measurement that removed the package's rule of training small networks
on one torch thread (``SINGLE_THREAD_MAX_WORK``, 2e7 multiply-adds per
step): for a few networks and batch sizes, the forward multiply-adds of one
mini-batch and the median time of an Adam step (``EndToEndPhase.step``,
the step pretraining runs) with 1 and 2 threads; then whole
``AutoencoderKMeans`` fits on digits on one thread (what the rule chose for
this network) and on torch's two.

Run alone on the machine:  python benchmarks/tuning/thread_steps.py
Writes benchmarks/results/tuning/thread_steps.md.
"""

import platform
import time
from pathlib import Path

import numpy as np
import torch

from sklearn.datasets import load_digits

from deepcluster_sk import AutoencoderKMeans
from deepcluster_sk._torch._data import TrainingData
from deepcluster_sk._torch._work import WorkCounter
from deepcluster_sk._training._pretraining import EndToEndPhase
from deepcluster_sk._training._sampler import RowSampler
from deepcluster_sk.nn import MLPAutoencoder

#: (label, n_features, hidden_dims, batch_size): the digits network of the
#: "auto" rule at its batch and at the paper's, and a network with four
#: times its multiply-adds (twice the width) at batch 64.
CASES = (
    ("digits network, batch 64", 64, (128, 128, 256), 64),
    ("digits network, batch 256", 64, (128, 128, 256), 256),
    ("2x wider network, batch 64", 64, (256, 256, 512), 64),
)
N_COMPONENTS = 10
WARMUP, REPEATS, STEPS = 50, 7, 200
OUT = Path(__file__).resolve().parents[1] / "results" / "tuning" / "thread_steps.md"


def seconds_per_step(n_features, hidden_dims, batch_size, threads):
    """Median over ``REPEATS`` runs of ``STEPS`` steps, in seconds per step."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    autoencoder = MLPAutoencoder(n_features, hidden_dims, N_COMPONENTS)
    x = torch.rand(batch_size, n_features)
    data = TrainingData(x.numpy(), torch.device("cpu"))
    sampler = RowSampler(batch_size, batch_size, torch.Generator(), data.device)
    step = EndToEndPhase(autoencoder, data, sampler, 1, 1e-3, "").step
    for _ in range(WARMUP):
        step(x)
    runs = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(STEPS):
            step(x)
        runs.append((time.perf_counter() - start) / STEPS)
    return float(np.median(runs))


def digits_fit_seconds(threads):
    """Seconds of ``AutoencoderKMeans(10)`` on digits on ``threads`` threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    X = load_digits().data / 16
    try:
        start = time.perf_counter()
        AutoencoderKMeans(10, device="cpu", random_state=0).fit(X)
        return time.perf_counter() - start
    finally:
        torch.set_num_threads(previous)


def main():
    rows = []
    for label, d, dims, batch in CASES:
        # Encoder and mirrored decoder, measured as the estimators measure it.
        autoencoder = MLPAutoencoder(d, dims, N_COMPONENTS)
        with WorkCounter(autoencoder) as counter, torch.no_grad():
            autoencoder(torch.zeros(batch, d))
        work = counter.multiply_adds
        one, two = (seconds_per_step(d, dims, batch, t) for t in (1, 2))
        rows.append((label, work, one, two))
        print(f"{label}: {work / 1e6:.1f} M multiply-adds, "
              f"1 thread {one * 1e3:.2f} ms, 2 threads {two * 1e3:.2f} ms", flush=True)
    lines = [
        "# Autoencoder step time on one and two torch threads",
        "",
        "Command: `python benchmarks/tuning/thread_steps.py`  ",
        f"Machine: {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads available to torch at the end, "
        f"torch {torch.__version__}; median of {REPEATS} runs of {STEPS} Adam steps "
        f"after {WARMUP} warm-up steps, on random data.",
        "",
        "| network and batch | forward multiply-adds per step | 1 thread ms/step | 2 threads ms/step |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {label} | {work / 1e6:.1f} M | {one * 1e3:.2f} | {two * 1e3:.2f} |"
        for label, work, one, two in rows
    ]
    fits = {"1 thread (the removed rule)": [], "2 threads": []}
    for _ in range(2):
        fits["1 thread (the removed rule)"].append(digits_fit_seconds(1))
        fits["2 threads"].append(digits_fit_seconds(2))
    lines += [
        "",
        "Whole fits, `AutoencoderKMeans(10, device=\"cpu\", random_state=0)` on "
        "digits (X / 16), two runs each, alternated:",
        "",
        "| threads | fit s |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {', '.join(f'{t:.2f}' for t in ts)} |" for name, ts in fits.items()]
    print(fits)
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
