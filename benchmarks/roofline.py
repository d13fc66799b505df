"""How close each training phase runs to the machine's matmul peak.

In one run on one machine: first the peak throughput of a large square
matrix product in each precision, then the step throughput of every
training phase -- autoencoder pretraining, DEC's self-training, IMSAT and
DAC -- with the default network at the default batch that the ``"auto"``
rules choose for data of a given shape, in float32 and in bfloat16, as
samples per second and as a fraction of the bfloat16 peak (on a device
without bfloat16 units, float32 only and its peak). The phases are
built by the estimators' own code and run by the package's training loop
(:func:`~deepcluster_sk._training._engine.run_phase`: sampler, batch
gathering, step, schedule), on random rows of the data's shape; only the
phase's schedule is replaced by a fixed number of steps, and DEC's target
updates (full passes, not steps) are left out.

A step's FLOPs are counted as ``6 x (forward multiply-adds per sample) x
(forward passes per step) x batch``: a forward pass is 2 FLOPs per
multiply-add, its backward twice that.

Run alone on the machine, from the repository root::

    python benchmarks/roofline.py                      # CPU, the three shapes
    python benchmarks/roofline.py --device cuda --graphs both
    python benchmarks/roofline.py --smoke              # a quick check

Writes ``benchmarks/results/roofline_<device>.md`` and ``.json`` (or under
``--out``).
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.base import clone

from deepcluster_sk import AutoencoderKMeans, DACClusterer, DECClusterer, IMSATClusterer
from deepcluster_sk._estimators._base import FitContext
from deepcluster_sk._estimators._modules import PROBE_ROWS
from deepcluster_sk._torch._data import TrainingData, forward_all
from deepcluster_sk._torch._device import resolve_device
from deepcluster_sk._torch._precision import native_bfloat16
from deepcluster_sk._torch._work import WorkCounter
from deepcluster_sk._training._engine import PeriodEnd, run_phase
from deepcluster_sk._training._optim import make_optimizer
from deepcluster_sk._training._pretraining import EndToEndPhase
from deepcluster_sk._training._progress import ProgressPrinter
from deepcluster_sk._training._sampler import RowSampler
from deepcluster_sk._training._self_training import SelfTrainingPhase
from imbalance import cpu_description, environment

#: The data shapes whose default settings are measured: (name, n_samples,
#: n_features, n_clusters).
SHAPES = {
    "mnist": (70000, 784, 10),
    "mnist-test": (10000, 784, 10),
    "digits": (1797, 64, 10),
}
PRECISIONS = ("float32", "bfloat16")
RESULTS = Path(__file__).resolve().parent / "results"


# -- peak ------------------------------------------------------------------------


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device, dtype, sizes, repeats):
    """Best GFLOP/s of an ``n x n x n`` product over ``sizes`` and ``repeats``."""
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        a @ b
        _sync(device)
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            _sync(device)
            best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


# -- phases ----------------------------------------------------------------------


def _estimators(k):
    return {
        "pretraining": DECClusterer(k),
        "self-training": DECClusterer(k),
        "IMSAT": IMSATClusterer(k),
        "DAC": DACClusterer(k),
    }


def _fit_context(estimator, X, n_samples, device, precision):
    """The fit's settings for data of ``n_samples`` rows, on the rows ``X``."""
    generator = torch.Generator().manual_seed(0)
    estimator = clone(estimator).set_params(precision=precision, random_state=0)
    example = torch.from_numpy(X[:PROBE_ROWS]).to(device)
    settings, network, work = estimator._plan(
        n_samples, (X.shape[1],), generator, example
    )
    data = TrainingData(X, device)
    data.precision = settings["precision"]
    fit = FitContext(
        data=data,
        rng=np.random.RandomState(0),
        generator=generator,
        progress=ProgressPrinter(0, type(estimator).__name__),
        settings=settings,
        network=network,
        network_generator=generator,
        network_seed=0,
        work_per_sample=work,
    )
    return estimator, fit


def build_phase(kind, estimator, fit):
    """The phase of ``kind`` on ``fit``; its forward multiply-adds per sample-step."""
    data, settings, network = fit.data, fit.settings, fit.network
    batch = settings["batch_size"]
    if kind == "pretraining":
        sampler = RowSampler(data.n_samples, batch, fit.generator, data.device)
        phase = EndToEndPhase(network, data, sampler, 1, 1e-3, "")
        return phase, fit.work_per_sample
    if kind == "self-training":
        sampler = RowSampler(data.n_samples, batch, fit.generator, data.device)
        centers = torch.nn.Parameter(
            torch.randn(estimator.n_clusters, estimator.n_components, device=data.device)
        )
        phase = SelfTrainingPhase(
            network, centers, data, sampler, alpha=1.0, max_iter=10**9,
            update_interval=10**9, tol=0.0, learning_rate=0.01, momentum=0.9,
            train_encoder=True, reconstruction_weight=0.0,
            inference_batch_size=estimator._inference_batch_size(data.device),
            advice="",
        )
        phase.begin()  # the first target distribution
        with WorkCounter(network.encoder) as counter, torch.no_grad():
            network.encoder(data.first_rows(PROBE_ROWS))
        return phase, counter.multiply_adds / min(PROBE_ROWS, data.n_samples)
    sampler = RowSampler(data.n_samples, batch, fit.generator, data.device,
                         drop_last=True)
    optimizer = make_optimizer(
        estimator._optimizer, network.parameters(), estimator.learning_rate,
        data.device, **estimator._optimizer_options(),
    )
    phase = estimator._phase(fit, sampler, optimizer)
    return phase, fit.work_per_sample * estimator._passes_per_step


def time_phase(phase, n_steps, repeats, graphs):
    """Median seconds per step of ``run_phase`` over ``n_steps`` steps."""
    phase.periods = lambda: [n_steps]
    phase.begin = lambda: None
    phase.end_period = lambda period, mean: PeriodEnd(period + 1, mean)
    phase.finish = lambda: None
    if not graphs:
        phase.capture = False
    run_phase(phase)  # warm-up (and, on CUDA, the graph capture)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_phase(phase)
        runs.append((time.perf_counter() - start) / n_steps)
    return statistics.median(runs)


def measure_shape(name, device, precisions, graph_modes, seconds_per_case, repeats):
    n_samples, n_features, k = SHAPES[name]
    rows = []
    for kind, estimator in _estimators(k).items():
        default_precision = None
        for precision in ("auto", *precisions):
            generator = np.random.RandomState(0)
            X = generator.rand(min(n_samples, 8192), n_features).astype(np.float32)
            est, fit = _fit_context(estimator, X, n_samples, device, precision)
            if precision == "auto":
                default_precision = fit.settings["precision"]
                continue
            batch = fit.settings["batch_size"]
            for graphs in graph_modes:
                phase, work = build_phase(kind, est, fit)
                # About seconds_per_case of steps, from a first estimate.
                probe = time_phase(phase, 3, 1, graphs)
                n_steps = int(min(500, max(5, seconds_per_case / repeats / probe)))
                seconds = time_phase(phase, n_steps, repeats, graphs)
                batch_rows = min(batch, fit.data.n_samples)
                flops = 6 * work * batch_rows / seconds
                rows.append({
                    "shape": name, "phase": kind, "precision": precision,
                    "default": precision == default_precision,
                    "graphs": graphs, "batch_size": batch_rows,
                    "hidden_dims": fit.settings.get("hidden_dims"),
                    "forward_madds_per_sample_step": work,
                    "ms_per_step": 1e3 * seconds,
                    "samples_per_s": batch_rows / seconds,
                    "gflops": flops / 1e9,
                })
                print(json.dumps(rows[-1]), flush=True)
    return rows


def measure_inference(name, device, precisions, batch_sizes, repeats):
    """Rows per second of the default encoder's full pass, by batch and precision.

    The pass that ``predict``, ``transform`` and DEC's target updates make
    (:func:`~deepcluster_sk._torch._data.forward_all`).
    """
    n_samples, n_features, k = SHAPES[name]
    X = np.random.RandomState(0).rand(min(n_samples, 65536), n_features)
    X = X.astype(np.float32)
    rows = []
    for precision in precisions:
        _, fit = _fit_context(DECClusterer(k), X, n_samples, device, precision)
        encoder = fit.network.encoder
        for batch in batch_sizes:
            forward_all(encoder, fit.data, batch)
            runs = []
            for _ in range(repeats):
                start = time.perf_counter()
                forward_all(encoder, fit.data, batch).sum().item()
                runs.append(time.perf_counter() - start)
            rows.append({
                "shape": name, "precision": precision, "batch_size": batch,
                "rows": X.shape[0],
                "samples_per_s": X.shape[0] / statistics.median(runs),
            })
            print(json.dumps(rows[-1]), flush=True)
    return rows


def measured_precisions(device):
    """Both precisions where ``device`` has bfloat16 units, else float32 only.

    Without the units PyTorch emulates bfloat16 products: on a 2-core AMD
    EPYC Zen 3 (AVX2) a 2048-square product ran at 0.2 GFLOP/s against
    88 in float32, so its peak alone would take hours to measure, and no
    ``"auto"`` fit computes in it there.
    """
    return PRECISIONS if native_bfloat16(device) else ("float32",)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=SHAPES)
    parser.add_argument("--graphs", choices=("on", "off", "both"), default="on",
                        help="CUDA graphs for the steps (CUDA only)")
    parser.add_argument("--seconds", type=float, default=6.0,
                        help="seconds of steps per case")
    parser.add_argument("--smoke", action="store_true",
                        help="small sizes and short timings, to check the script")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS,
                        help="default: both where the device has bfloat16 units, "
                        "else float32 only")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    precisions = tuple(args.precisions or measured_precisions(device))
    graph_modes = {"on": [True], "off": [False], "both": [True, False]}[args.graphs]
    if device.type != "cuda":
        graph_modes = [False]
    sizes, repeats = ((256, 512), 2) if args.smoke else ((2048, 4096), 5)
    seconds = 0.5 if args.smoke else args.seconds
    shapes = ["digits"] if args.smoke else args.shapes
    peaks = {
        precision: matmul_peak(device, getattr(torch, precision), sizes, repeats)
        for precision in precisions
    }
    first_peaks = peaks
    emulated = None
    if "bfloat16" not in precisions:
        # Emulated products are slow enough that n = 2048 takes minutes.
        emulated = matmul_peak(device, torch.bfloat16, (512, 1024), 1)
    print(json.dumps({"peak_gflops": peaks, "emulated_bfloat16_gflops": emulated}),
          flush=True)
    rows = []
    for name in shapes:
        shape_rows = measure_shape(name, device, precisions, graph_modes, seconds,
                                   3 if args.smoke else 5)
        # A shared or virtual machine's speed drifts: the peak again, after
        # the shape's steps, and each row against the lower of the two.
        after = {
            precision: matmul_peak(device, getattr(torch, precision), sizes, repeats)
            for precision in precisions
        }
        print(json.dumps({"peak_gflops_after": name, **after}), flush=True)
        for row in shape_rows:
            row["peak_gflops"] = {p: min(peaks[p], after[p]) for p in precisions}
            row["peak_precision"] = precisions[-1]
            row["fraction_of_peak"] = row["gflops"] / row["peak_gflops"][precisions[-1]]
        peaks = after
        rows += shape_rows
    inference_batches = (
        (256, 1024) if args.smoke
        else (1024, 4096, 16384, 65536) if device.type == "cuda"
        else (1024, 4096, 16384)
    )
    inference = measure_inference(
        shapes[0], device, precisions, inference_batches, 2 if args.smoke else 3
    )
    write(args.out, device, first_peaks, emulated, rows, inference, argv)


def write(out, device, peaks, emulated, rows, inference, argv):
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    stem = out / f"roofline_{device.type}"
    stem.with_suffix(".json").write_text(
        json.dumps({"environment": env, "peak_gflops": peaks,
                    "emulated_bfloat16_gflops": emulated, "rows": rows,
                    "inference": inference}, indent=1)
    )
    where = env["cuda_device"] if device.type == "cuda" else cpu_description(env)
    reference = "bfloat16" if "bfloat16" in peaks else "float32"
    lines = [
        f"# Training steps against the matmul peak ({device.type})",
        "",
        "Command: `python benchmarks/roofline.py"
        + ("" if not argv else " " + " ".join(argv)) + "`  ",
        f"Machine: {where}, {env['torch_threads']} torch threads, torch "
        f"{env['torch']}.",
        "",
        "Peak of an n x n x n matrix product (best of n = 2048 and 4096) at the "
        "start: " + ", ".join(f"{p} {g:.0f} GFLOP/s" for p, g in peaks.items())
        + "; measured again after each data shape's phases, each row is set "
        f"against the lower of the {reference} peaks before and after it, since "
        "a shared machine's speed drifts."
        + ("" if emulated is None else " bfloat16 is left out: this device "
           "has no bfloat16 units, so PyTorch emulates it (best of n = 512 and "
           f"1024: {emulated:.1f} GFLOP/s) and `\"auto\"` never picks it."),
        "",
        "Each phase with the default network at the default batch for data of "
        "that shape; **bold**: the precision `precision=\"auto\"` picks. "
        "FLOPs: 6 x forward multiply-adds per sample x forward passes per step "
        "x batch.",
        "",
        "| data shape | phase | precision | graphs | batch | ms / step | "
        f"samples / s | GFLOP/s | {reference} peak | of {reference} peak |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        precision = f"**{r['precision']}**" if r["default"] else r["precision"]
        lines.append(
            f"| {r['shape']} | {r['phase']} | {precision} | "
            f"{'on' if r['graphs'] else 'off'} | {r['batch_size']} | "
            f"{r['ms_per_step']:.2f} | {r['samples_per_s']:,.0f} | "
            f"{r['gflops']:.0f} | {r['peak_gflops'][reference]:.0f} | "
            f"{r['fraction_of_peak']:.0%} |"
        )
    lines += [
        "",
        f"Full passes of the default encoder (data shape {inference[0]['shape']}, "
        f"{inference[0]['rows']} rows), as `predict`, `transform` and DEC's "
        "target updates make them:",
        "",
        "| precision | batch | samples / s |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {r['precision']} | {r['batch_size']} | {r['samples_per_s']:,.0f} |"
        for r in inference
    ]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.md", flush=True)


if __name__ == "__main__":
    main()
