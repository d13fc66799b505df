"""DDP scaling on the CPU: one process against two, one thread each, same global batch.

Runs ``torchrun --nproc-per-node=N`` for each N of ``--nprocs`` with
``OMP_NUM_THREADS=1``; every process fits the same estimator with its
defaults on the MNIST test split (pixels / 255), which trains one model
across the processes (``distributed="auto"``). Rank 0 reports the fit's
seconds, each training phase's samples per second (the rows of all
processes) and the accuracy. Usage::

    python benchmarks/ddp_scaling.py --data-dir ../shared/data/mnist

Results: ``benchmarks/results/ddp_scaling_cpu.md`` and ``.json``.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

_ESTIMATORS = ("DECClusterer", "IMSATClusterer", "AutoencoderKMeans")


def _time_phases(records):
    """Wrap ``run_phase`` where the phases call it; record seconds and rows."""
    import deepcluster_sk._estimators._discriminative as discriminative
    import deepcluster_sk._training._pretraining as pretraining
    import deepcluster_sk._training._self_training as self_training
    from deepcluster_sk._training._engine import run_phase

    def timed(phase, track=None):
        rows = [0]
        batch_inputs = phase.batch_inputs

        def counted(index):
            rows[0] += index.numel()
            return batch_inputs(index)

        phase.batch_inputs = counted
        start = time.perf_counter()
        try:
            return run_phase(phase, track)
        finally:
            records.append({"phase": phase.name, "seconds": time.perf_counter() - start,
                            "local_rows": rows[0]})

    for module in (pretraining, self_training, discriminative):
        module.run_phase = timed


def worker(args):
    import numpy as np
    import torch
    import torch.distributed as dist

    import deepcluster_sk
    from deepcluster_sk.datasets import load_mnist
    from deepcluster_sk.metrics import cluster_accuracy

    X, y = load_mnist(args.data_dir)  # training then test digits, pixels / 255
    X = np.ascontiguousarray(X.reshape(len(X), -1)[60_000:], dtype=np.float32)
    y = y[60_000:]
    records = []
    _time_phases(records)
    params = {"batch_size": args.batch_size} if args.batch_size else {}
    model = getattr(deepcluster_sk, args.estimator)(n_clusters=10, random_state=0,
                                                    **params)
    start = time.perf_counter()
    model.fit(X)
    seconds = time.perf_counter() - start
    world = dist.get_world_size() if dist.is_initialized() else 1
    if not dist.is_initialized() or dist.get_rank() == 0:
        phases = {}
        for record in records:
            phase = phases.setdefault(record["phase"], {"seconds": 0.0, "rows": 0})
            phase["seconds"] += record["seconds"]
            phase["rows"] += record["local_rows"] * world
        for phase in phases.values():
            phase["samples_per_s"] = phase["rows"] / phase["seconds"]
        print(json.dumps({
            "estimator": args.estimator, "processes": world,
            "threads": torch.get_num_threads(), "seconds": seconds,
            "acc": float(cluster_accuracy(y, model.labels_)),
            "batch_size": int(model.batch_size_), "precision": model.precision_,
            "phases": phases,
        }), flush=True)


def drive(args):
    out = Path(args.out)
    runs = []
    if args.resume and out.with_suffix(".json").exists():
        runs = json.loads(out.with_suffix(".json").read_text())["runs"]
    for estimator in args.estimators:
        for nproc in args.nprocs:
            command = [
                sys.executable, "-m", "torch.distributed.run",
                f"--nproc-per-node={nproc}", "--rdzv-backend=c10d",
                "--rdzv-endpoint=localhost:0", __file__, "--worker",
                "--estimator", estimator, "--data-dir", args.data_dir,
                *(["--batch-size", str(args.batch_size)] if args.batch_size else []),
            ]
            env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode != 0 or not lines:
                run = {"estimator": estimator, "processes": nproc,
                       "error": done.stderr.strip()[-3000:]}
            else:
                run = json.loads(lines[-1])
            runs.append(run)
            print(json.dumps(run), flush=True)
            out.with_suffix(".json").write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    lines = [
        "# DDP scaling on the CPU: 1 against 2 processes, one thread each",
        "",
        f"Command: `python {' '.join(sys.argv)}`  ",
        f"Machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}; torchrun, gloo on "
        "loopback, `OMP_NUM_THREADS=1`; MNIST test split (10 000 x 784, pixels / "
        "255), each estimator with its defaults and `random_state=0`, the same "
        "global batch in both runs. Samples/s count the rows of all processes.",
        "",
        "| estimator | processes | fit s | ACC | batch | precision | phase: samples/s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        if "error" in run:
            lines.append(f"| {run['estimator']} | {run['processes']} | failed | | | | |")
            continue
        phases = "; ".join(f"{name}: {p['samples_per_s']:,.0f} ({p['seconds']:.1f} s)"
                           for name, p in run["phases"].items())
        lines.append(
            f"| {run['estimator']} | {run['processes']} | {run['seconds']:.1f} | "
            f"{run['acc']:.3f} | {run['batch_size']} | {run['precision']} | {phases} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--estimators", nargs="+", default=["DECClusterer"],
                        choices=_ESTIMATORS)
    parser.add_argument("--estimator", help=argparse.SUPPRESS)
    parser.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=None,
                        help="the global batch (default: the estimator's)")
    parser.add_argument("--out", default="benchmarks/results/ddp_scaling_cpu")
    parser.add_argument("--resume", action="store_true",
                        help="add to the runs already in the output's .json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
    else:
        drive(args)


if __name__ == "__main__":
    main()
