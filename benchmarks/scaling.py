"""Fit time of every estimator against the number of rows: is it linear?

Ten Gaussian blobs in 64 dimensions (float32, in memory), n rows for each
of ``--sizes``; every estimator with its defaults except one pass over the
data where the schedule is counted in passes (``pretrain_epochs=1``, DEC's
``max_iter`` one epoch of its batches, IMSAT's ``n_epochs=1``; DAC's
schedule is counted in steps and kept). Each fit runs in a fresh process
after a small fit that compiles umap-learn and pynndescent, so imports and
compilation are not timed. The slope of log(seconds) against log(n) over
the sizes is the growth exponent: 1 is linear.

Run alone on the machine::

    python benchmarks/scaling.py --sizes 10000 100000 400000 1000000 \\
        --out benchmarks/results/scaling
"""

import argparse
import json
import platform
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

ESTIMATORS = ("AutoencoderKMeans", "DECClusterer", "N2DClusterer", "IMSATClusterer",
              "DACClusterer")
#: UMAP of every row: DEC's default start from 1 000 rows, and N2D.
MANIFOLD_ESTIMATORS = ("DECClusterer", "N2DClusterer")

_CASE = textwrap.dedent(
    """
    import json, sys, time, warnings
    import numpy as np
    from sklearn.datasets import make_blobs
    import deepcluster_sk
    from deepcluster_sk.metrics import cluster_accuracy

    name, n = sys.argv[1], int(sys.argv[2])
    warnings.filterwarnings("ignore")

    def blobs(n_rows, seed):
        X, y = make_blobs(n_rows, 64, centers=10, cluster_std=2.0, random_state=seed)
        return X.astype(np.float32), y

    def one_pass(name, n):
        if name in ("AutoencoderKMeans", "N2DClusterer"):
            return dict(pretrain_epochs=1)
        if name == "DECClusterer":
            return dict(pretrain_epochs=1, max_iter=-(-n // 64))
        if name == "IMSATClusterer":
            return dict(n_epochs=1)
        return {}

    Est = getattr(deepcluster_sk, name)
    X_small, _ = blobs(25_000, 1)  # compiles umap-learn and pynndescent
    Est(n_clusters=10, random_state=0, **one_pass(name, 25_000)).fit(X_small)
    X, y = blobs(n, 0)
    model = Est(n_clusters=10, random_state=0, **one_pass(name, n))
    start = time.perf_counter()
    model.fit(X)
    seconds = time.perf_counter() - start
    print(json.dumps({"estimator": name, "n": n, "seconds": seconds,
                      "acc": cluster_accuracy(y, model.labels_),
                      "batch_size": getattr(model, "batch_size_", None)}))
    """
)


def slope(sizes, seconds):
    """Least-squares slope of log(seconds) on log(n)."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[10_000, 100_000, 400_000, 1_000_000])
    parser.add_argument("--estimators", nargs="+", default=list(ESTIMATORS))
    parser.add_argument("--out", default="benchmarks/results/scaling")
    parser.add_argument("--largest-manifold", type=int, default=None,
                        help="skip DEC and N2D (UMAP on every row) above this many rows")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in the output's .json")
    args = parser.parse_args()

    out_json = Path(args.out).with_suffix(".json")
    runs = []
    if args.resume and out_json.exists():
        runs = [run for run in json.loads(out_json.read_text())["runs"] if "seconds" in run]
    for name in args.estimators:
        for n in args.sizes:
            if any(run["estimator"] == name and run["n"] == n for run in runs):
                continue
            if (args.largest_manifold is not None and n > args.largest_manifold
                    and name in MANIFOLD_ESTIMATORS):
                continue
            done = subprocess.run([sys.executable, "-c", _CASE, name, str(n)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                run = {"estimator": name, "n": n, "error": done.stderr.strip()[-2000:]}
            else:
                run = json.loads(done.stdout.strip().splitlines()[-1])
            runs.append(run)
            print(json.dumps(run), flush=True)
            out_json.write_text(json.dumps({"runs": runs}, indent=2) + "\n")

    lines = [
        "# Fit time against the number of rows",
        "",
        f"Command: `python {' '.join(sys.argv)}`  ",
        f"Machine: {platform.processor() or platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}; 10 Gaussian blobs in 64 dimensions, one "
        "pass over the data where the schedule counts passes, otherwise defaults; "
        "each fit in a fresh process after a compiling fit.",
        "",
        "| estimator | " + " | ".join(f"n = {n:,}" for n in args.sizes)
        + " | slope of log t on log n |",
        "| --- | " + " | ".join("---" for _ in args.sizes) + " | --- |",
    ]
    slopes = {}
    for name in args.estimators:
        mine = {run["n"]: run for run in runs if run["estimator"] == name}
        cells, ok = [], []
        for n in args.sizes:
            run = mine.get(n, {})
            if "seconds" in run:
                cells.append(f"{run['seconds']:.1f} s (ACC {run['acc']:.2f})")
                ok.append(n)
            elif "error" in run:
                cells.append("failed")
            else:
                cells.append("not run")
        fitted = slope(ok, [mine[n]["seconds"] for n in ok]) if len(ok) > 1 else float("nan")
        slopes[name] = fitted
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {fitted:.2f} |")
    lines.append("")
    Path(args.out).with_suffix(".md").write_text("\n".join(lines))
    out_json.write_text(json.dumps({"runs": runs, "slopes": slopes,
                                    "command": " ".join(sys.argv)}, indent=2) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in args.estimators:
        points = sorted((run["n"], run["seconds"]) for run in runs
                        if run["estimator"] == name and "seconds" in run)
        if points:
            ax.loglog(*zip(*points), marker="o",
                      label=f"{name} (slope {slopes[name]:.2f})")
    ax.set_xlabel("rows")
    ax.set_ylabel("fit seconds")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(args.out).with_suffix(".png"), dpi=120)


if __name__ == "__main__":
    main()
