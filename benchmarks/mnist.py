"""Cluster MNIST with every method of the package and with classic baselines.

Prints, per method, the clustering accuracy (ACC), NMI and ARI as mean and
standard deviation over seeds, the mean fit time and the peak GPU memory of
a fit, and writes the same as JSON and as a Markdown table.

Examples
--------
All 70 000 digits on a GPU::

    python benchmarks/mnist.py --data-dir ../shared/data/mnist --device cuda

A quick CPU check on a stratified subset::

    python benchmarks/mnist.py --data-dir ../shared/data/mnist --device cpu \\
        --subset 5000 --seeds 0 1 2
"""

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

import deepcluster_sk
from deepcluster_sk.datasets import load_mnist
from deepcluster_sk.metrics import cluster_accuracy

N_CLUSTERS = 10

#: IDEC's weight of the reconstruction error; the IDEC paper weights the
#: clustering loss by 0.1 against the reconstruction, which DECClusterer's
#: docstring translates to ``reconstruction_weight=10``.
IDEC_RECONSTRUCTION_WEIGHT = 10.0


@dataclass(frozen=True)
class Method:
    """A clustering method of the benchmark.

    Attributes
    ----------
    name : str
        Name on the command line and in the results.
    description : str
        What runs, with the settings that differ from the defaults.
    make : callable
        ``make(seed, device)`` returns an unfitted estimator.
    uses_device : bool
        Whether the estimator trains on ``device`` (a torch estimator);
        peak GPU memory is reported only for these.
    """

    name: str
    description: str
    make: object
    uses_device: bool


def _deep(class_name, **params):
    """Factory of a ``deepcluster_sk`` estimator with its defaults."""

    def make(seed, device):
        cls = getattr(deepcluster_sk, class_name)
        return cls(n_clusters=N_CLUSTERS, device=device, random_state=seed, **params)

    return make


def available_methods(autoencoder_params=None):
    """Every method this installation can run, in the order of the table.

    ``IMSATClusterer`` and ``DACClusterer`` are included when the installed
    ``deepcluster_sk`` exports them. ``autoencoder_params`` (e.g. a smaller
    ``hidden_dims`` for a CPU run) override the defaults of the
    autoencoder-based methods.
    """
    ae = dict(autoencoder_params or {})
    methods = [
        Method(
            "kmeans",
            "sklearn KMeans(n_init=20) on pixels",
            lambda seed, device: KMeans(N_CLUSTERS, n_init=20, random_state=seed),
            False,
        ),
        Method(
            "gmm-diag",
            "sklearn GaussianMixture(covariance_type='diag') on pixels",
            lambda seed, device: GaussianMixture(
                N_CLUSTERS, covariance_type="diag", random_state=seed
            ),
            False,
        ),
        Method(
            "gmm-pca50",
            "PCA(50) then GaussianMixture(covariance_type='full')",
            lambda seed, device: make_pipeline(
                PCA(50, random_state=seed),
                GaussianMixture(N_CLUSTERS, covariance_type="full", random_state=seed),
            ),
            False,
        ),
        Method(
            "ae-kmeans",
            f"AutoencoderKMeans({_call(ae)})",
            _deep("AutoencoderKMeans", **ae),
            True,
        ),
        Method(
            "ae-kmeans-layerwise",
            f"AutoencoderKMeans({_call(ae, pretrain='layerwise')})",
            _deep("AutoencoderKMeans", **ae, pretrain="layerwise"),
            True,
        ),
        Method("dec", f"DECClusterer({_call(ae)})", _deep("DECClusterer", **ae), True),
        Method(
            "dec-layerwise",
            f"DECClusterer({_call(ae, pretrain='layerwise')})",
            _deep("DECClusterer", **ae, pretrain="layerwise"),
            True,
        ),
        Method(
            "idec",
            f"DECClusterer({_call(ae, reconstruction_weight=IDEC_RECONSTRUCTION_WEIGHT)})",
            _deep("DECClusterer", **ae, reconstruction_weight=IDEC_RECONSTRUCTION_WEIGHT),
            True,
        ),
    ]
    for name, class_name in [("n2d", "N2DClusterer"), ("imsat", "IMSATClusterer"),
                             ("dac", "DACClusterer")]:
        if getattr(deepcluster_sk, class_name, None) is not None:
            methods.append(
                Method(name, f"{class_name}, defaults", _deep(class_name), True)
            )
    return {method.name: method for method in methods}


def _call(params, **extra):
    """``name=value, ...`` of the non-default parameters, for the table."""
    return ", ".join(f"{k}={v!r}" for k, v in {**params, **extra}.items()) or "defaults"


def parse_args(argv, method_names):
    """The command line, checked."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data-dir",
        required=True,
        type=Path,
        help="folder with the four MNIST IDX files (plain or .gz)",
    )
    parser.add_argument(
        "--device",
        choices=["auto", "cuda", "cpu"],
        default="auto",
        help="where the torch estimators train; auto: CUDA when available",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="random_state values"
    )
    parser.add_argument(
        "--subset",
        type=int,
        default=None,
        help="cluster only this many samples instead of all 70 000",
    )
    parser.add_argument(
        "--subset-method",
        choices=["stratified", "random"],
        default="stratified",
        help="how --subset draws its samples",
    )
    parser.add_argument(
        "--subset-seed",
        type=int,
        default=0,
        help="seed of the subset draw; the same subset serves every method and seed",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=method_names,
        default=method_names,
        metavar="METHOD",
        help=f"any of {', '.join(method_names)}",
    )
    parser.add_argument(
        "--hidden-dims",
        type=int,
        nargs="+",
        default=None,
        help="encoder widths of the autoencoder methods (default: theirs)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="mini-batch size of the autoencoder methods (default: theirs)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks") / "results")
    args = parser.parse_args(argv)
    if args.subset is not None and not N_CLUSTERS <= args.subset <= 70000:
        parser.error(f"--subset must be between {N_CLUSTERS} and 70000.")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was requested but CUDA is not available.")
    return args


def resolve_device(name):
    """``"auto"`` becomes CUDA when available, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def take_subset(X, y, n, method, seed):
    """``n`` samples drawn with ``seed``, stratified by label or at random."""
    if n is None or n == X.shape[0]:
        return X, y
    stratify = y if method == "stratified" else None
    X_sub, _, y_sub, _ = train_test_split(
        X, y, train_size=n, stratify=stratify, random_state=seed
    )
    return X_sub, y_sub


def _git(*args):
    """Output of a git command in this repository, or None without git."""
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device):
    """Hardware, library versions and settings the results depend on."""
    env = {
        "device_type": device.type,
        "device_name": (
            torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else _cpu_model()
        ),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "load_average_at_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "deepcluster_sk": deepcluster_sk.__version__,
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        # Uncommitted changes mean the results are not of that commit alone.
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "platform": platform.platform(),
    }
    if device.type == "cuda":
        env["tf32_matmul"] = _tf32_state()
    return env


def _tf32_state():
    """The CUDA matmul TF32 setting, by whichever interface this PyTorch has."""
    matmul = torch.backends.cuda.matmul
    for name in ("fp32_precision", "allow_tf32"):
        try:
            return f"{name}={getattr(matmul, name)}"
        except (AttributeError, AssertionError, RuntimeError):
            continue
    return None


def fit_once(method, X, y, seed, device):
    """Fit one method with one seed; return its scores, time and memory."""
    estimator = method.make(seed, str(device))
    track_memory = method.uses_device and device.type == "cuda"
    if track_memory:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    labels = estimator.fit_predict(X)
    if track_memory:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) if track_memory else None
    return {
        "method": method.name,
        "seed": seed,
        "acc": cluster_accuracy(y, labels),
        "nmi": float(normalized_mutual_info_score(y, labels)),
        "ari": float(adjusted_rand_score(y, labels)),
        "fit_seconds": seconds,
        "peak_gpu_memory_bytes": peak,
    }


def summarise(method, runs):
    """Mean and standard deviation over seeds of one method's runs."""
    summary = {"method": method.name, "description": method.description}
    summary["n_seeds"] = len(runs)
    for key in ("acc", "nmi", "ari"):
        values = np.array([run[key] for run in runs])
        summary[f"{key}_mean"] = float(values.mean())
        summary[f"{key}_std"] = float(values.std())
    summary["fit_seconds_mean"] = float(np.mean([run["fit_seconds"] for run in runs]))
    peaks = [run["peak_gpu_memory_bytes"] for run in runs]
    summary["peak_gpu_memory_bytes"] = None if None in peaks else max(peaks)
    return summary


def summarise_all(methods, names, runs):
    """Summaries of the methods ``names`` that have runs, in that order."""
    summaries = []
    for name in names:
        own = [run for run in runs if run["method"] == name]
        if own:
            summaries.append(summarise(methods[name], own))
    return summaries


def _memory(n_bytes):
    return "n/a" if n_bytes is None else f"{n_bytes / 2**20:.0f} MiB"


def markdown_table(summaries):
    """The summaries as a Markdown table, one row per method."""
    header = ["method", "seeds", "ACC", "NMI", "ARI", "fit s (mean)"]
    header += ["peak GPU memory", "what runs"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for s in summaries:
        cells = [s["method"], str(s["n_seeds"])]
        cells += [
            f"{s[k + '_mean']:.4f} ± {s[k + '_std']:.4f}" for k in ("acc", "nmi", "ari")
        ]
        cells += [f"{s['fit_seconds_mean']:.1f}", _memory(s["peak_gpu_memory_bytes"])]
        cells.append(s["description"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(report):
    """The whole report as Markdown: setting, environment and table."""
    env, config = report["environment"], report["config"]
    lines = [
        f"# MNIST clustering benchmark ({env['device_type']}, "
        f"{config['n_samples']} samples)",
        "",
        f"- command: `{report['command']}`",
        f"- finished: {report['finished_utc']}",
        f"- samples: {config['n_samples']} "
        f"({_subset_text(config)}); "
        f"seeds: {config['seeds']}; scores are mean ± std over seeds",
        f"- device: {env['device_name']} ({env['device_type']}); CPU: "
        f"{env['cpu_model']}, {env['cpu_count']} cores, torch threads "
        f"{env['torch_threads']}; load average at start {env['load_average_at_start']}",
        f"- versions: python {env['python']}, torch {env['torch']} (CUDA "
        f"{env['cuda']}), scikit-learn {env['sklearn']}, numpy {env['numpy']}, "
        f"deepcluster_sk {env['deepcluster_sk']} (git {env['git_commit']}"
        f"{', uncommitted changes' if env.get('git_dirty') else ''})",
        "- fit s: wall-clock seconds of `fit_predict`; peak GPU memory: "
        "`torch.cuda.max_memory_allocated` during the fit, reset per fit "
        "(n/a on the CPU and for the scikit-learn baselines)",
        "",
        markdown_table(report["summary"]),
        "",
    ]
    return "\n".join(lines)


def _subset_text(config):
    if not config["subset"]:
        return "all samples"
    return f"{config['subset_method']} subset, seed {config['subset_seed']}"


def write_report(report, out_dir):
    """Write the report as JSON and Markdown; return the two paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    config = report["config"]
    size = config["subset"] if config["subset"] else "full"
    stem = out_dir / f"mnist_{report['environment']['device_type']}_{size}"
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(markdown_report(report))
    return json_path, md_path


def main(argv=None):
    """Run the benchmark from the command line."""
    args = parse_args(argv, list(available_methods()))
    autoencoder_params = {}
    if args.hidden_dims is not None:
        autoencoder_params["hidden_dims"] = tuple(args.hidden_dims)
    if args.batch_size is not None:
        autoencoder_params["batch_size"] = args.batch_size
    methods = available_methods(autoencoder_params)
    device = resolve_device(args.device)
    X, y = load_mnist(args.data_dir)
    X, y = take_subset(X, y, args.subset, args.subset_method, args.subset_seed)
    command = shlex.join(["python", *sys.argv]) if argv is None else shlex.join(argv)
    report = {
        "command": command,
        "environment": environment(device),
        "config": {
            "n_samples": int(X.shape[0]),
            "subset": args.subset,
            "subset_method": args.subset_method,
            "subset_seed": args.subset_seed,
            "seeds": args.seeds,
            "methods": args.methods,
            "autoencoder_params": {k: list(v) if isinstance(v, tuple) else v for k, v in autoencoder_params.items()},
        },
        "runs": [],
        "summary": [],
    }
    print(
        f"MNIST: {X.shape[0]} samples on {device} "
        f"({report['environment']['device_name']})"
    )
    # Seed by seed, every method, writing after each fit: a run stopped early
    # still leaves complete comparisons for the seeds it finished.
    for seed in args.seeds:
        for name in args.methods:
            run = fit_once(methods[name], X, y, seed, device)
            report["runs"].append(run)
            print(
                f"  {name} seed {seed}: ACC {run['acc']:.4f} NMI {run['nmi']:.4f} "
                f"ARI {run['ari']:.4f} in {run['fit_seconds']:.1f} s",
                flush=True,
            )
            report["summary"] = summarise_all(methods, args.methods, report["runs"])
            report["finished_utc"] = datetime.now(timezone.utc).isoformat(
                timespec="seconds"
            )
            report["environment"]["load_average_at_end"] = list(os.getloadavg())
            paths = write_report(report, args.out)
    print()
    print(markdown_table(report["summary"]))
    print(f"\nwrote {paths[0]} and {paths[1]}")


if __name__ == "__main__":
    main()
