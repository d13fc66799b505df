"""DEC on imbalanced MNIST, the protocol of the DEC paper (section 5.2).

For a minimum retention rate ``r_min``, each digit of class ``c`` is kept
with probability ``1 - (1 - r_min) * c / 9``: all of class 0, a fraction
``r_min`` of class 9, the other classes linearly in between (the paper keeps
class 0 at ``r_min`` and class 9 whole; only the names of the classes
differ). DECClusterer, KMeans(n_init=20) and a diagonal GaussianMixture
cluster each sample with ``k = 10``; the script prints and writes ACC
(``deepcluster_sk.metrics.cluster_accuracy``) and NMI as mean and standard
deviation over seeds.

Examples
--------
The paper's setting on a GPU (all 70 000 digits, r_min from 0.1 to 0.9)::

    python benchmarks/imbalance.py --data-dir ../shared/data/mnist --device cuda

A CPU check on a 2 000-digit subset with a narrower network and shorter
training (the run in ``benchmarks/results/imbalance_cpu_2000.*``)::

    python benchmarks/imbalance.py --data-dir ../shared/data/mnist --device cpu \\
        --subset 2000 --r-min 0.1 0.3 0.5 0.7 0.9 --seeds 0 \\
        --hidden-dims 128 128 256 --batch-size 64 --pretrain-epochs 30 \\
        --max-iter 1000
"""

import argparse
import json
import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split

from deepcluster_sk import DECClusterer
from deepcluster_sk._torch._precision import cpu_has_bfloat16_units
from deepcluster_sk.datasets import load_mnist
from deepcluster_sk.metrics import cluster_accuracy

N_CLUSTERS = 10
METHODS = ("dec", "kmeans", "gmm")
DEFAULT_R_MIN = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def retention_rates(r_min, n_classes=N_CLUSTERS):
    """Keep-probability of each class: 1 for class 0 down to ``r_min``.

    Parameters
    ----------
    r_min : float
        Retention rate of the last class, in (0, 1].
    n_classes : int, default=10

    Returns
    -------
    rates : ndarray of shape (n_classes,)
    """
    return 1.0 - (1.0 - r_min) * np.arange(n_classes) / (n_classes - 1)


def imbalanced_sample(y, r_min, rng):
    """Row indices kept: each row of class ``c`` with its retention rate.

    Parameters
    ----------
    y : ndarray of int
        Class labels 0..9.
    r_min : float
    rng : numpy.random.Generator

    Returns
    -------
    index : ndarray of int
        Sorted indices of the kept rows.
    """
    keep = rng.random(y.shape[0]) < retention_rates(r_min)[y]
    return np.flatnonzero(keep)


def make_estimator(name, seed, args):
    """The estimator ``name`` seeded with ``seed``, configured from ``args``."""
    if name == "kmeans":
        return KMeans(N_CLUSTERS, n_init=20, random_state=seed)
    if name == "gmm":
        # Full 784 x 784 covariances are ill-conditioned on pixels (many are
        # constant); diagonal ones are the usual pixel-space baseline.
        return GaussianMixture(
            N_CLUSTERS, covariance_type="diag", random_state=seed
        )
    params = dict(n_clusters=N_CLUSTERS, device=args.device, random_state=seed)
    if args.hidden_dims:
        params["hidden_dims"] = tuple(args.hidden_dims)
    if args.batch_size:
        params["batch_size"] = args.batch_size
    if args.pretrain_epochs:
        params["pretrain_epochs"] = args.pretrain_epochs
    if args.max_iter is not None:
        params["max_iter"] = args.max_iter
    return DECClusterer(**params)


def fit_once(name, X, y, seed, args):
    """Fit one method on one imbalanced sample; return its scores and time."""
    estimator = make_estimator(name, seed, args)
    start = time.perf_counter()
    labels = estimator.fit_predict(X)
    seconds = time.perf_counter() - start
    return {
        "method": name,
        "seed": seed,
        "acc": cluster_accuracy(y, labels),
        "nmi": float(normalized_mutual_info_score(y, labels)),
        "fit_seconds": seconds,
    }


def summarise(runs, r_mins, methods):
    """Mean and standard deviation over seeds per ``r_min`` and method."""
    rows = []
    for r_min in r_mins:
        for name in methods:
            sel = [r for r in runs if r["r_min"] == r_min and r["method"] == name]
            if not sel:
                continue
            row = {"r_min": r_min, "method": name, "n_seeds": len(sel)}
            for key in ("acc", "nmi", "fit_seconds", "n_samples"):
                values = np.array([r[key] for r in sel], dtype=float)
                row[f"{key}_mean"] = float(values.mean())
                row[f"{key}_std"] = float(values.std())
            rows.append(row)
    return rows


def markdown_table(rows, methods):
    """One line per ``r_min``: samples, then ACC and NMI of each method."""
    header = ["r_min", "n"] + [f"{m} {s}" for m in methods for s in ("ACC", "NMI")]
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    for r_min in sorted({row["r_min"] for row in rows}):
        by_method = {row["method"]: row for row in rows if row["r_min"] == r_min}
        first = next(iter(by_method.values()))
        cells = [f"{r_min:.1f}", f"{first['n_samples_mean']:.0f}"]
        for name in methods:
            row = by_method.get(name)
            for key in ("acc", "nmi"):
                cells.append(
                    "n/a"
                    if row is None
                    else f"{row[key + '_mean']:.3f} ± {row[key + '_std']:.3f}"
                )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seconds_table(rows, methods):
    """Mean fit seconds per ``r_min`` and method."""
    header = ["r_min"] + [f"{m} s" for m in methods]
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    for r_min in sorted({row["r_min"] for row in rows}):
        by_method = {row["method"]: row for row in rows if row["r_min"] == r_min}
        cells = [f"{r_min:.1f}"] + [
            f"{by_method[m]['fit_seconds_mean']:.1f}" if m in by_method else "n/a"
            for m in methods
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_model():
    """The CPU's model name as Linux reports it, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment():
    """Versions and machine state the results depend on."""
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "cuda_device": (
            torch.cuda.get_device_name() if torch.cuda.is_available() else None
        ),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bfloat16_units": cpu_has_bfloat16_units(),
    }


def cpu_description(env):
    """The CPU of ``env`` in words: model, vector units, bfloat16 units."""
    text = env.get("cpu_model", "CPU model not recorded")
    if "cpu_capability" in env:
        units = "bfloat16 units" if env["cpu_bfloat16_units"] else "no bfloat16 units"
        text += f" ({env['cpu_capability']}, {units})"
    return text


def write_report(report, out_dir):
    """Rewrite the JSON and Markdown files of ``report``; return their paths."""
    config = report["config"]
    size = config["subset"] if config["subset"] else "full"
    stem = out_dir / f"imbalance_{config['device']}_{size}"
    out_dir.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    methods = config["methods"]
    text = "\n\n".join(
        [
            "# DEC on imbalanced MNIST",
            f"Command: `{config['command']}`",
            (
                f"Data: {'all 70 000' if not config['subset'] else config['subset']}"
                " MNIST digits (stratified subset) before the imbalanced draw; "
                "class c kept with probability 1 - (1 - r_min) c / 9. "
                f"Seeds: {config['seeds']}; device {config['device']}; "
                f"load average at start {report['environment']['load_average_at_start']}."
            ),
            "ACC and NMI, mean ± std over seeds:",
            markdown_table(report["summary"], methods),
            "Mean fit seconds:",
            seconds_table(report["summary"], methods),
        ]
    )
    stem.with_suffix(".md").write_text(text + "\n")
    return stem.with_suffix(".json"), stem.with_suffix(".md")


def parse_args(argv):
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="folder with the four MNIST IDX files")
    parser.add_argument("--subset", type=int, default=None,
                        help="stratified subset of MNIST drawn before imbalancing")
    parser.add_argument("--r-min", type=float, nargs="+", default=DEFAULT_R_MIN,
                        help="minimum retention rates (default 0.1 .. 0.9)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--hidden-dims", type=int, nargs="+", default=None,
                        help="DECClusterer hidden_dims (default: its own)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="DECClusterer batch_size (default: its own)")
    parser.add_argument("--pretrain-epochs", type=int, default=None,
                        help="DECClusterer pretrain_epochs (default: 'auto')")
    parser.add_argument("--max-iter", type=int, default=None,
                        help="DECClusterer max_iter (default: its own)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks") / "results")
    args = parser.parse_args(argv)
    if not all(0 < r <= 1 for r in args.r_min):
        parser.error("--r-min values must lie in (0, 1].")
    if args.subset is not None and not 100 <= args.subset <= 70000:
        parser.error("--subset must be between 100 and 70000.")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    return args


def main(argv=None):
    """Run the benchmark and write ``benchmarks/results/imbalance_*``."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    X, y = load_mnist(args.data_dir)
    if args.subset:
        X, _, y, _ = train_test_split(
            X, y, train_size=args.subset, stratify=y, random_state=0
        )
    report = {
        "config": {
            "command": shlex.join(
                ["python", "benchmarks/imbalance.py", *(argv or sys.argv[1:])]
            ),
            "subset": args.subset,
            "r_min": args.r_min,
            "seeds": args.seeds,
            "device": args.device,
            "methods": args.methods,
            "dec_overrides": {
                "hidden_dims": args.hidden_dims,
                "batch_size": args.batch_size,
                "pretrain_epochs": args.pretrain_epochs,
                "max_iter": args.max_iter,
            },
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
        "environment": environment(),
        "runs": [],
    }
    for seed in args.seeds:
        for r_min in args.r_min:
            rng = np.random.default_rng([seed, round(r_min * 1000)])
            index = imbalanced_sample(y, r_min, rng)
            for name in args.methods:
                run = fit_once(name, X[index], y[index], seed, args)
                run.update(
                    r_min=r_min,
                    n_samples=int(index.size),
                    class_sizes=np.bincount(y[index], minlength=10).tolist(),
                )
                report["runs"].append(run)
                print(
                    f"seed {seed} r_min {r_min:.1f} n {index.size} {name:7s} "
                    f"ACC {run['acc']:.3f} NMI {run['nmi']:.3f} "
                    f"{run['fit_seconds']:.1f}s",
                    flush=True,
                )
                report["summary"] = summarise(report["runs"], args.r_min, args.methods)
                write_report(report, args.out)
    print(markdown_table(report["summary"], args.methods))


if __name__ == "__main__":
    main()
