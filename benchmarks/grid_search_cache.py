"""A grid search over n_clusters for DECClusterer, with and without ``memory``.

Run:  python benchmarks/grid_search_cache.py [--n-jobs 1 2] [--seed 0]

The measurement of issue 11:
``GridSearchCV(DECClusterer(memory=...), {"n_clusters": [6, 8, 10, 12, 14]},
cv=3)`` on scikit-learn's digits (X / 16), with DECClusterer's own defaults
plus ``device`` and ``random_state``. For each ``--n-jobs`` the search runs
once without a cache and once with a cold cache in a fresh temporary
directory. The script prints the wall time of each, checks that
``best_params_`` and every ``cv_results_["mean_test_score"]`` are identical
with and without the cache (exit status 1 if not), and writes
``benchmarks/results/grid_search_cache.md`` and ``.json``. Target: the cached
search at least 3x faster.

A smoke test of the script with a tiny network (seconds; not a
measurement, so write it elsewhere)::

    python benchmarks/grid_search_cache.py --hidden-dims 16 --pretrain-epochs 2 \\
        --max-iter 20 --out /tmp/grid_search_cache
"""

import argparse
import json
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from imbalance import environment
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from deepcluster_sk import DECClusterer

GRID = {"n_clusters": [6, 8, 10, 12, 14]}
CV = 3


def estimator_params(args):
    """DECClusterer's parameters: its defaults, the device, seed and overrides."""
    params = dict(device=args.device, random_state=args.seed)
    overrides = dict(
        hidden_dims=None if args.hidden_dims is None else tuple(args.hidden_dims),
        pretrain_epochs=args.pretrain_epochs,
        max_iter=args.max_iter,
        batch_size=args.batch_size,
    )
    params.update({k: v for k, v in overrides.items() if v is not None})
    return params


def warm_up(X, n_jobs):
    """Run a tiny search first, so that no timed search pays for the start.

    Starting the workers (loky reuses them in the next search) and torch's
    lazy imports on the first fit take seconds.
    """
    tiny = DECClusterer(hidden_dims=(8,), pretrain_epochs=1, max_iter=1, n_init=1)
    GridSearchCV(tiny, {"n_clusters": [2, 3]}, cv=2, n_jobs=n_jobs).fit(X[:200])


def run_search(X, params, n_jobs, memory):
    """Fit the grid search; return its wall time, results and cache entries."""
    model = DECClusterer(**params, memory=memory)
    search = GridSearchCV(model, GRID, cv=CV, n_jobs=n_jobs)
    start = time.perf_counter()
    search.fit(X)
    seconds = time.perf_counter() - start
    return dict(
        seconds=seconds,
        best_params=search.best_params_,
        mean_test_score=search.cv_results_["mean_test_score"].tolist(),
        cache_entries=None if memory is None else len(list(Path(memory).rglob("*.pt"))),
    )


def compare(n_jobs, plain, cached):
    """The row of one n_jobs: timings, speed-up and whether results agree."""
    return dict(
        n_jobs=n_jobs,
        seconds_without_cache=plain["seconds"],
        seconds_with_cache=cached["seconds"],
        speedup=plain["seconds"] / cached["seconds"],
        pretrainings_without_cache=len(GRID["n_clusters"]) * CV + 1,
        pretrainings_with_cache=cached["cache_entries"],
        same_best_params=plain["best_params"] == cached["best_params"],
        same_mean_test_score=plain["mean_test_score"] == cached["mean_test_score"],
        best_n_clusters=cached["best_params"]["n_clusters"],
        without_cache=plain,
        with_cache=cached,
    )


def markdown(report):
    """The Markdown report: configuration and one row per n_jobs."""
    env = report["environment"]
    lines = [
        "# GridSearchCV over n_clusters on digits, with and without `memory`",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}  ",
        f"Estimator: `DECClusterer(**{report['params']}, memory=...)`, grid "
        f"{GRID}, cv={CV}, refit on all of X  ",
        f"Machine: {env['cpu_count']} CPU cores, torch threads "
        f"{env['torch_threads']}, load average at start "
        f"{env['load_average_at_start']}, torch {env['torch']}, scikit-learn "
        f"{env['sklearn']}",
        "",
        "| n_jobs | no cache s | cache s | speed-up | pretrainings (no cache / cache) "
        "| same best_params_ | same mean_test_score | best n_clusters |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['n_jobs']} | {row['seconds_without_cache']:.1f} "
            f"| {row['seconds_with_cache']:.1f} | {row['speedup']:.2f}x "
            f"| {row['pretrainings_without_cache']} / {row['pretrainings_with_cache']} "
            f"| {row['same_best_params']} | {row['same_mean_test_score']} "
            f"| {row['best_n_clusters']} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv):
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=0, help="random_state")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--hidden-dims", type=int, nargs="+", default=None,
                        help="override hidden_dims (default: DECClusterer's own)")
    parser.add_argument("--pretrain-epochs", type=int, default=None,
                        help="override pretrain_epochs (default: DECClusterer's own)")
    parser.add_argument("--max-iter", type=int, default=None,
                        help="override max_iter (default: DECClusterer's own)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="override batch_size (default: DECClusterer's own)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    return parser.parse_args(argv)


def main(argv=None):
    """Run the searches, write the report; exit with 1 if results differ."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    X = load_digits().data / 16.0
    params = estimator_params(args)
    report = dict(
        command=shlex.join(
            ["python", "benchmarks/grid_search_cache.py", *(argv or sys.argv[1:])]
        ),
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        params=params,
        environment=environment(),
        rows=[],
    )
    for n_jobs in args.n_jobs:
        warm_up(X, n_jobs)
        print(f"n_jobs={n_jobs}: without cache ...", flush=True)
        plain = run_search(X, params, n_jobs, memory=None)
        print(f"  {plain['seconds']:.1f} s; with a cold cache ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="grid_search_cache-") as directory:
            cached = run_search(X, params, n_jobs, memory=directory)
        print(f"  {cached['seconds']:.1f} s", flush=True)
        report["rows"].append(compare(n_jobs, plain, cached))
    table = markdown(report)
    print("\n" + table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "grid_search_cache.md").write_text(table)
    (args.out / "grid_search_cache.json").write_text(json.dumps(report, indent=2))
    identical = all(
        row["same_best_params"] and row["same_mean_test_score"]
        for row in report["rows"]
    )
    if not identical:
        print("The cached search did not reproduce the search without cache.")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
