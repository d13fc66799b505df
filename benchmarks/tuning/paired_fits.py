"""Whole fits of one estimator in two forms, seed by seed, for a fair timing.

The speed of the 2-core machines drifts by up to 2x from minute to minute,
so a comparison of two forms of the training code (the flat optimizer
update against the per-tensor one, steps by hand against autograd) fits
each seed in every form one right after the other, in one warm process.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from auto_defaults import METHODS, datasets, fit_and_score, warm_up, warm_up_umap  # noqa: E402


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
