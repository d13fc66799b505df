"""The other levers of training speed on a CPU, each measured once.

1. Adam's and SGD's implementations (``fused=True``, ``foreach=True``, the
   single-tensor loop) on the pretraining step (SGD with DEC's momentum
   0.9 in place of Adam): the package uses the fused ones
   (``_training/_optim.make_optimizer``).
2. ``torch.compile`` of the whole pretraining step (forward, backward, Adam)
   against the eager step: compile seconds and steps per second.
3. The per-step overhead of the training loop: ``run_phase`` (sampler,
   batch gathering, divergence monitor, schedule) against calling the step
   on one fixed batch of a fresh network.
4. Subnormal floats: ``run_phase`` flushes them to zero on a CPU
   (``_torch/_denormals.py``); the same steps with them kept. The phase has
   trained before it is timed, as in a fit, so Adam's state holds them.

For the digits network at batch 64 in float32 and the paper's network at
batch 256 in bfloat16, the defaults of those data.

Run alone on the machine:  python benchmarks/tuning/levers.py [--out FOLDER]
Writes benchmarks/results/tuning/levers.md and .json (or under ``--out``).
"""

import argparse
import contextlib
import json
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from imbalance import environment  # noqa: E402
from roofline import time_phase  # noqa: E402

import deepcluster_sk._training._engine as engine  # noqa: E402
from deepcluster_sk._torch._data import TrainingData  # noqa: E402
from deepcluster_sk._training._pretraining import EndToEndPhase  # noqa: E402
from deepcluster_sk._training._sampler import RowSampler  # noqa: E402
from deepcluster_sk.nn import MLPAutoencoder  # noqa: E402

CASES = (
    ("digits network, batch 64, float32", 64, (128, 128, 256), 64, "float32", 200),
    ("paper network, batch 256, bfloat16", 784, (500, 500, 2000), 256, "bfloat16",
     40),
)
RESULTS = Path(__file__).resolve().parents[1] / "results" / "tuning"


OPTIMIZERS = {"adam": (torch.optim.Adam, {"lr": 1e-3}),
              "sgd": (torch.optim.SGD, {"lr": 1e-4, "momentum": 0.9})}
FORMS = (("fused", {"fused": True}), ("foreach", {"foreach": True}),
         ("single-tensor", {"foreach": False}))


def phase_on_random_rows(network, n_features, batch, precision,
                         phase_class=EndToEndPhase):
    """``phase_class`` training ``network`` on eight batches of uniform rows.

    Returns the phase and one batch of its rows, for timing its step.
    """
    X = torch.rand(8 * batch, n_features)
    data = TrainingData(X.numpy(), torch.device("cpu"))
    data.precision = precision
    sampler = RowSampler(data.n_samples, batch, torch.Generator(), data.device)
    return phase_class(network, data, sampler, 1, 1e-3, ""), X[:batch]


def make_phase(n_features, hidden_dims, batch, precision, optimizer=None):
    torch.manual_seed(0)
    autoencoder = MLPAutoencoder(n_features, hidden_dims, 10)
    phase, x = phase_on_random_rows(autoencoder, n_features, batch, precision)
    if optimizer is not None:
        algorithm, form = optimizer
        cls, kwargs = OPTIMIZERS[algorithm]
        phase.optimizer = cls(autoencoder.parameters(), **kwargs, **form)
        phase.lr_schedule = None
    return phase, x


def seconds_per_step(step, x, data, n_steps, repeats=5):
    with data.autocast():
        for _ in range(3):
            step(x)
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(n_steps):
                step(x)
            runs.append((time.perf_counter() - start) / n_steps)
    return statistics.median(runs)


def subnormal_share(optimizer):
    """The fraction of the optimizer's state entries in float32's subnormal range."""
    tensors = [t for state in optimizer.state.values() for t in state.values()
               if torch.is_tensor(t) and t.ndim > 0]
    tiny = torch.finfo(torch.float32).tiny
    subnormal = sum(int(((t != 0) & (t.abs() < tiny)).sum()) for t in tensors)
    return subnormal / sum(t.numel() for t in tensors)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="folder for the results (default: results/tuning)")
    out = parser.parse_args(argv).out
    results = []
    for label, d, dims, batch, precision, n_steps in CASES:
        row = {"case": label}
        for algorithm in OPTIMIZERS:
            for name, form in FORMS:
                phase, x = make_phase(d, dims, batch, precision, (algorithm, form))
                row[f"{algorithm} {name} ms"] = 1e3 * seconds_per_step(
                    phase.step, x, phase.data, n_steps)
        phase, x = make_phase(d, dims, batch, precision)
        row["eager step ms"] = 1e3 * seconds_per_step(phase.step, x, phase.data, n_steps)
        row["run_phase ms per step"] = 1e3 * time_phase(phase, n_steps, 5, graphs=False)
        phase, x = make_phase(d, dims, batch, precision)
        kept = mock.patch.object(engine, "denormals_flushed",
                                 lambda device: contextlib.nullcontext())
        with kept:
            row["run_phase ms per step, subnormals kept"] = 1e3 * time_phase(
                phase, n_steps, 5, graphs=False)
        row["subnormal share of Adam's state"] = subnormal_share(phase.optimizer)
        phase, x = make_phase(d, dims, batch, precision)
        compiled = torch.compile(phase.step)
        start = time.perf_counter()
        try:
            with warnings.catch_warnings(), phase.data.autocast():
                warnings.simplefilter("ignore")
                compiled(x)
            row["compile s"] = time.perf_counter() - start
            row["compiled step ms"] = 1e3 * seconds_per_step(compiled, x, phase.data,
                                                            n_steps)
        except Exception as exc:  # noqa: BLE001 - record why it failed
            row["compile error"] = f"{type(exc).__name__}: {exc}"[:300]
        results.append(row)
        print(json.dumps(row), flush=True)
    write(results, out)


def write(results, out=RESULTS):
    env = environment()
    out.mkdir(parents=True, exist_ok=True)
    (out / "levers.json").write_text(
        json.dumps({"environment": env, "rows": results}, indent=1)
    )
    keys = [k for k in results[0] if k != "case"]
    lines = [
        "# Other levers of CPU training speed",
        "",
        f"Command: `{shlex.join(['python', *sys.argv])}`  ",
        f"Machine: {env['cpu_model']}, {env['torch_threads']} torch threads, "
        f"torch {env['torch']}; median of 5 runs; the step is "
        "`EndToEndPhase.step` (forward, MSE backward, Adam; in the sgd columns SGD "
        "with momentum 0.9 instead). \"run_phase\" flushes "
        "subnormal floats to zero on every torch thread (`_torch/_denormals.py`); "
        "\"subnormals kept\" is the same loop without that, and the share is "
        "the fraction of Adam's state entries subnormal after those runs (1 200 steps of the digits network, 240 of the paper's).",
        "",
        "| case | " + " | ".join(keys) + " |",
        "| --- | " + " | ".join("---" for _ in keys) + " |",
    ]
    for r in results:
        cells = [
            f"{r[k]:.2f}" if isinstance(r.get(k), float) else str(r.get(k, "-"))
            for k in keys
        ]
        lines.append(f"| {r['case']} | " + " | ".join(cells) + " |")
    (out / "levers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
