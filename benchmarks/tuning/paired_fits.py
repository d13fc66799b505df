"""Whole fits of one estimator in two forms, seed by seed, for a fair timing.

The speed of the 2-core machines drifts by up to 2x from minute to minute,
so a comparison of two forms of the training code (the flat optimizer
update against the per-tensor one, steps by hand against autograd) fits
each seed in every form one right after the other, in one warm process.
"""

import argparse
import contextlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from auto_defaults import METHODS, datasets, fit_and_score, warm_up, warm_up_umap  # noqa: E402
from imbalance import environment  # noqa: E402


@contextlib.contextmanager
def attribute_set(owner, name, value):
    """``owner.name = value`` inside the block, the previous value restored after."""
    saved = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)


def fit_data():
    """``{name: (X, y, standardise)}`` of the tables and digits, after the warm-ups."""
    warm_up()
    warm_up_umap()
    return {**datasets("tabular", None), **datasets("digits", None)}


def paired_fits(case, seeds, forms, data):
    """Fit ``case`` (``"method:data"``) once per seed and form.

    Parameters
    ----------
    case : str
    seeds : list of int
    forms : dict
        ``{name: factory}``; ``factory()`` is the context manager under which
        a fit of that form runs.
    data : dict
        :func:`fit_data`'s.

    Returns
    -------
    runs : dict
        ``{name: [(row, model), ...]}``, one per seed: ``fit_and_score``'s
        row (``seconds``, ``acc``, ...) and the fitted estimator.
    """
    method, name = case.split(":")
    X, y, standardise = data[name]
    k = len(set(y))
    runs = {form: [] for form in forms}
    for seed in seeds:
        for form, factory in forms.items():
            model = METHODS[method](k, seed, "cpu")
            with factory():
                row = fit_and_score(model, X, y, standardise)
            runs[form].append((row, model))
    return runs


def record_cases(cases, seeds, forms, path, summary, extra=None):
    """:func:`paired_fits` of every case, one JSON line per case appended to ``path``.

    Parameters
    ----------
    cases : list of str
        ``"method:data"``.
    seeds : list of int
    forms : dict
        As in :func:`paired_fits`.
    path : pathlib.Path
    summary : callable
        ``summary(record)``: the line printed once a case is done.
    extra : callable or None, default=None
        ``extra(form, fitted)``: more fields of a form's runs for the record.

    Each record holds the case, the seeds, the machine, and per form the fit
    seconds (``"<form> s"``) and ACC (``"<form> ACC"``) of every seed.
    """
    data = fit_data()
    for case in cases:
        method, name = case.split(":")
        runs = paired_fits(case, seeds, forms, data)
        record = {"method": method, "data": name, "seeds": list(seeds),
                  "environment": environment()}
        for form, fitted in runs.items():
            record[f"{form} s"] = [round(row["seconds"], 3) for row, _ in fitted]
            record[f"{form} ACC"] = [round(row["acc"], 4) for row, _ in fitted]
            if extra is not None:
                record.update(extra(form, fitted))
        with path.open("a") as out:
            out.write(json.dumps(record) + "\n")
        print(summary(record), flush=True)


def command_line(description, steps, fits, default_cases):
    """Run ``steps()``, or ``fits(cases, seeds)`` with ``--fits [method:data ...]``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--fits", nargs="*", default=None,
                        help="method:data pairs to fit (none given: the script's list)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    if args.fits is None:
        steps()
    else:
        fits(args.fits or default_cases, args.seeds)
