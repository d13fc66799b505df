"""The estimators with their defaults, from 150-row tables to 70 000 images.

Every estimator is built as ``Est(n_clusters=k, random_state=seed,
device=...)`` and nothing else: this measures what a user who passes only
``n_clusters`` gets. Scores are set against what users run instead:
``KMeans(n_clusters=k, random_state=seed)`` (scikit-learn's defaults),
``GaussianMixture(k, covariance_type="full")`` (``gmm``, by default on the
tables and digits only: on MNIST's pixels its covariances are singular),
PCA keeping 90% of the variance then that mixture (``pca-gmm``) and
``UMAP(n_neighbors=20, min_dist=0, n_components=10)`` then that mixture
(``umap-gmm``, umap-learn's advice for clustering), all seeded. Each row
records the settings the ``"auto"`` rules chose.

Suites (``--suite``):

``tabular``
    Small standardised tables that scikit-learn ships or generates: iris,
    wine, breast cancer, two blob sets, and 20 principal components of 1 000
    digits. Each goes through ``StandardScaler`` in a ``Pipeline``.
``digits``
    scikit-learn's digits, ``X / 16``.
``mnist-test``
    The 10 000 MNIST test images, ``/ 255`` (needs ``--mnist-dir``).
``mnist``
    All 70 000 MNIST images (needs ``--mnist-dir``).
``check-estimator``
    Wall time of ``check_estimator(Est())`` with default parameters.

Run from the repository root, one suite at a time on an otherwise idle
machine, e.g.::

    python benchmarks/auto_defaults.py --suite tabular
    python benchmarks/auto_defaults.py --suite digits --methods dec ae-kmeans
    python benchmarks/auto_defaults.py --suite mnist-test --seeds 0 1 2 \\
        --mnist-dir ../shared/data/mnist --methods dec kmeans

Results go to ``benchmarks/results/auto_defaults_<suite>.md`` and ``.json``;
runs are appended to the JSON, so a suite can be run in parts.
"""

import argparse
import hashlib
import json
import os
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.metrics import normalized_mutual_info_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import deepcluster_sk
from deepcluster_sk import (
    AutoencoderKMeans,
    DACClusterer,
    DECClusterer,
    IMSATClusterer,
    N2DClusterer,
)
from deepcluster_sk.datasets import load_mnist
from deepcluster_sk.metrics import cluster_accuracy
from imbalance import cpu_description, environment

def _umap_gmm(k, seed):
    """What users run today: UMAP as umap-learn's clustering page advises, then a GMM."""
    from umap import UMAP

    return make_pipeline(
        UMAP(n_neighbors=20, min_dist=0.0, n_components=10, random_state=seed),
        GaussianMixture(k, covariance_type="full", random_state=seed),
    )


METHODS = {
    "kmeans": lambda k, seed, device: KMeans(n_clusters=k, random_state=seed),
    # The baselines a user would try: a full-covariance mixture (on the
    # tables; on pixels its covariances are singular), PCA keeping 90% of
    # the variance then the mixture, UMAP then the mixture.
    "gmm": lambda k, seed, device: GaussianMixture(
        k, covariance_type="full", random_state=seed
    ),
    "pca-gmm": lambda k, seed, device: make_pipeline(
        PCA(n_components=0.9, svd_solver="full", random_state=seed),
        GaussianMixture(k, covariance_type="full", random_state=seed),
    ),
    "umap-gmm": lambda k, seed, device: _umap_gmm(k, seed),
    "n2d": lambda k, seed, device: N2DClusterer(k, random_state=seed, device=device),
    "dec": lambda k, seed, device: DECClusterer(k, random_state=seed, device=device),
    "idec": lambda k, seed, device: DECClusterer(
        k, reconstruction_weight=1.0, random_state=seed, device=device
    ),
    "ae-kmeans": lambda k, seed, device: AutoencoderKMeans(
        k, random_state=seed, device=device
    ),
    "imsat": lambda k, seed, device: IMSATClusterer(
        k, random_state=seed, device=device
    ),
    "dac": lambda k, seed, device: DACClusterer(k, random_state=seed, device=device),
    # Not defaults: the float32 comparison of a fit whose "auto" precision
    # is bfloat16.
    "imsat-float32": lambda k, seed, device: IMSATClusterer(
        k, precision="float32", random_state=seed, device=device
    ),
    "dec-float32": lambda k, seed, device: DECClusterer(
        k, precision="float32", random_state=seed, device=device
    ),
}

#: The settings an estimator chose, read from its fitted attributes.
SETTING_ATTRIBUTES = (
    "hidden_dims_",
    "batch_size_",
    "pretrain_epochs_",
    "update_interval_",
    "max_iter_",
    "n_epochs_",
    "steps_per_stage_",
    "eps_scale_",
    "init_",
    "manifold_",
    "n_neighbors_",
    "umap_components_",
    "precision_",
    "n_iter_",
)


def _blobs():
    return make_blobs(
        500, 10, centers=5, cluster_std=[1, 2, 3, 1.5, 2.5], random_state=0
    )


def _anisotropic_blobs():
    X, y = make_blobs(600, 6, centers=4, random_state=3)
    return X @ np.random.RandomState(0).randn(6, 6), y


def _digits_pca20():
    X, y = load_digits(return_X_y=True)
    return PCA(20, random_state=0).fit_transform(X[:1000]), y[:1000]


TABULAR = {
    "iris": lambda: load_iris(return_X_y=True),
    "wine": lambda: load_wine(return_X_y=True),
    "breast_cancer": lambda: load_breast_cancer(return_X_y=True),
    "blobs": _blobs,
    "anisotropic_blobs": _anisotropic_blobs,
    "digits_pca20": _digits_pca20,
}


def datasets(suite, mnist_dir):
    """``{name: (X, y, standardise)}`` of a suite."""
    if suite == "tabular":
        return {name: (*load(), True) for name, load in TABULAR.items()}
    if suite == "digits":
        X, y = load_digits(return_X_y=True)
        return {"digits": (X / 16.0, y, False)}
    if mnist_dir is None:
        raise SystemExit(f"--suite {suite} needs --mnist-dir")
    X, y = load_mnist(mnist_dir)
    if suite == "mnist-test":
        return {"mnist_test": (X[60000:], y[60000:], False)}
    return {"mnist": (X, y, False)}


def fit_once(method, X, y, seed, device, standardise):
    """Fit one estimator of ``METHODS``; return scores, seconds and settings."""
    estimator = METHODS[method](len(np.unique(y)), seed, device)
    return {"method": method, "seed": seed, **fit_and_score(estimator, X, y, standardise)}


def fit_and_score(estimator, X, y, standardise):
    """Fit ``estimator`` (after ``StandardScaler`` if ``standardise``).

    Returns
    -------
    row : dict
        ACC, NMI, clusters used, fit seconds, the settings the estimator
        chose (its fitted ``*_`` attributes of ``SETTING_ATTRIBUTES``) and
        the warnings it raised.
    """
    model = make_pipeline(StandardScaler(), estimator) if standardise else estimator
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        labels = model.fit_predict(X)
        seconds = time.perf_counter() - start
    settings = {
        name.rstrip("_"): _plain(getattr(estimator, name))
        for name in SETTING_ATTRIBUTES
        if hasattr(estimator, name)
    }
    return {
        "acc": cluster_accuracy(y, labels),
        "labels_sha1": labels_fingerprint(labels),
        "nmi": float(normalized_mutual_info_score(y, labels)),
        "clusters_used": int(len(np.unique(labels))),
        "seconds": seconds,
        "settings": settings,
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    }


def labels_fingerprint(labels):
    """SHA-1 of the labels as int64: equal fingerprints, identical labels."""
    return hashlib.sha1(np.asarray(labels, dtype=np.int64).tobytes()).hexdigest()


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _is_package_estimator(method):
    """Whether ``method`` is one of this package's estimators, not a baseline."""
    estimator = METHODS[method](8, None, "cpu")
    return type(estimator).__module__.startswith("deepcluster_sk")


def time_check_estimator(method):
    """Seconds of ``check_estimator`` on the default estimator."""
    from sklearn.utils.estimator_checks import check_estimator

    estimator = METHODS[method](8, None, "cpu")
    estimator = type(estimator)()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, on_fail=None)
    seconds = time.perf_counter() - start
    failed = sorted(
        r["check_name"] for r in results if r["status"] not in ("passed", "skipped")
    )
    return {"method": method, "seconds": seconds, "not_passed": failed}


def warm_up():
    """Seconds of a first tiny fit: PyTorch's one-time imports in a process.

    The first fit of a process pays a few seconds of PyTorch importing its
    optimiser machinery; every later fit does not. It is timed here once so
    that the per-fit figures are those of a warm process.
    """
    X = np.random.RandomState(0).rand(40, 3)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        DECClusterer(2, pretrain_epochs=1, max_iter=2, random_state=0).fit(X)
    return time.perf_counter() - start


def warm_up_umap():
    """Seconds of a first tiny UMAP fit: umap-learn's numba compilation.

    Paid once per process (and cached on disk by numba for some of its
    functions); timed here so that the first UMAP-based fit of a suite is
    not charged for it. None where umap-learn is not installed.
    """
    try:
        from umap import UMAP
    except ImportError:
        return None
    X = np.random.RandomState(0).rand(60, 4)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        UMAP(n_neighbors=5, n_components=2, random_state=0).fit(X).transform(X[:5])
    return time.perf_counter() - start


def summary_table(runs):
    """Markdown rows: per data set and method, mean and worst over seeds."""
    lines = [
        "| data | method | seeds | ACC mean | ACC worst | NMI mean | clusters used (min) "
        "| fit s mean | fit s max | settings (seed 0) | warnings |",
        "|" + " --- |" * 11,
    ]
    keys = sorted({(r["data"], r["method"]) for r in runs}, key=_order)
    for data, method in keys:
        own = [r for r in runs if r["data"] == data and r["method"] == method]
        acc = np.array([r["acc"] for r in own])
        nmi = np.array([r["nmi"] for r in own])
        secs = np.array([r["seconds"] for r in own])
        settings = min(own, key=lambda r: r["seed"])["settings"]
        n_warn = sum(len(r["warnings"]) for r in own)
        lines.append(
            f"| {data} | {method} | {len(own)} | {acc.mean():.3f} | {acc.min():.3f} "
            f"| {nmi.mean():.3f} | {min(r['clusters_used'] for r in own)} "
            f"| {secs.mean():.2f} | {secs.max():.2f} | {_settings_text(settings)} "
            f"| {n_warn} |"
        )
    return "\n".join(lines)


def _order(key):
    data, method = key
    return (data, list(METHODS).index(method))


def _settings_text(settings):
    return ", ".join(f"{k}={v}" for k, v in settings.items()) or "-"


def _check_estimator_table(runs):
    table = "| estimator | check_estimator s | checks not passed |\n| --- | --- | --- |\n"
    return table + "\n".join(
        f"| {r['method']} | {r['seconds']:.1f} | {', '.join(r['not_passed']) or '-'} |"
        for r in runs
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--suite",
        required=True,
        choices=["tabular", "digits", "mnist-test", "mnist", "check-estimator"],
    )
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--data", nargs="+", default=None, help="only these data sets")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mnist-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--report-only", action="store_true",
        help="rewrite the .md from the .json; fit nothing, record no command",
    )
    args = parser.parse_args(argv)
    methods = args.methods or [
        m for m in METHODS
        if not m.endswith("-float32")
        and not (m == "gmm" and args.suite.startswith("mnist"))
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"auto_defaults_{args.suite}"
    json_path = stem.with_suffix(".json")
    report = json.loads(json_path.read_text()) if json_path.exists() else {"runs": []}
    if not args.report_only:
        report.setdefault("commands", []).append(shlex.join(["python", *sys.argv]))
        report["environment"] = {
            **environment(),
            "deepcluster_sk": deepcluster_sk.__version__,
            "platform": platform.platform(),
        }
        report["environment"]["first_fit_seconds"] = warm_up()
        report["environment"]["umap_compile_seconds"] = warm_up_umap()

    if args.report_only:
        table = (
            _check_estimator_table(report["runs"])
            if args.suite == "check-estimator"
            else summary_table(report["runs"])
        )
    elif args.suite == "check-estimator":
        for method in [m for m in methods if _is_package_estimator(m)]:
            row = time_check_estimator(method)
            print(f"{method}: {row['seconds']:.1f} s, not passed: {row['not_passed']}")
            report["runs"] = [r for r in report["runs"] if r["method"] != method]
            report["runs"].append(row)
        table = _check_estimator_table(report["runs"])
    else:
        for data, (X, y, standardise) in datasets(args.suite, args.mnist_dir).items():
            if args.data and data not in args.data:
                continue
            for seed in args.seeds:
                for method in methods:
                    row = fit_once(method, X, y, seed, args.device, standardise)
                    row["data"] = data
                    print(
                        f"{data} {method} seed {seed}: ACC {row['acc']:.3f} NMI "
                        f"{row['nmi']:.3f} in {row['seconds']:.2f} s "
                        f"{_settings_text(row['settings'])} {row['warnings'] or ''}",
                        flush=True,
                    )
                    report["runs"] = [
                        r
                        for r in report["runs"]
                        if (r["data"], r["method"], r["seed"]) != (data, method, seed)
                    ]
                    report["runs"].append(row)
                    json_path.write_text(json.dumps(report, indent=1))
        table = summary_table(report["runs"])
    json_path.write_text(json.dumps(report, indent=1))
    env = report["environment"]
    text = [
        f"# Defaults only: `{args.suite}`",
        "",
        "Every estimator as `Est(n_clusters=k, random_state=seed, device=...)`; "
        "generated by `benchmarks/auto_defaults.py`.",
        "",
        "Commands:",
        *[f"- `{c}`" for c in report["commands"]],
        "",
        f"Machine: {cpu_description(env)}, "
        f"{env['cpu_count']} CPU cores, torch threads {env['torch_threads']}, "
        f"load average at the last "
        f"start {[round(x, 2) for x in env['load_average_at_start']]}; torch "
        f"{env['torch']}, scikit-learn {env['sklearn']}, Python {env['python']}. "
        f"The fits are timed in a warm process: the first fit of the last run "
        f"took {env['first_fit_seconds']:.1f} s more for PyTorch's one-time imports"
        + (
            f", and a first UMAP fit {env['umap_compile_seconds']:.1f} s for "
            "umap-learn's compilation."
            if env.get("umap_compile_seconds") is not None
            else (
                "; umap-learn's compilation (about 40 s) was not timed apart in "
                "this run and is in the first UMAP-based fit."
            )
        ),
        "",
        table,
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(text))
    print("\n" + table)


if __name__ == "__main__":
    main()
