"""Sphinx configuration of the deepcluster_sk documentation.

Build (from the repository root, with the ``docs`` extra installed)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The gallery (``examples/``) is executed on every build, so every figure and
printed output on the site comes from the current code.
"""

import os
import re
import sys
import warnings
from pathlib import Path

import deepcluster_sk

ROOT = Path(__file__).resolve().parents[1]
# _gallery_order.py, named by its module path in sphinx_gallery_conf.
sys.path.insert(0, str(Path(__file__).resolve().parent))

project = "deepcluster_sk"
author = "the deepcluster_sk developers"
copyright = "2026, the deepcluster_sk developers"
release = deepcluster_sk.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
root_doc = "index"

# -- API reference ----------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
# numpydoc writes the member tables; autodoc's own would list everything twice.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# Every public docstring is validated; a missing or malformed section is a
# warning, and the build runs with -W, so it fails. Left out: "See Also"
# (SA01), extended summaries (ES01) and examples (EX01) on methods and small
# helpers, which would add words without adding meaning; GL08 for members
# that scikit-learn's base classes document; and RT02, because we name
# returned values (``labels : ndarray of shape (n_samples,)``) as
# scikit-learn does.
numpydoc_validation_checks = {"all", "SA01", "ES01", "EX01", "GL08", "RT02"}
numpydoc_validation_exclude = {
    # Inherited from scikit-learn, documented there in its own style.
    r"\.get_metadata_routing$",
    r"\.get_params$",
    r"\.set_params$",
    r"\.set_output$",
    r"\.set_\w+_request$",
    r"\.fit_predict$",
    r"\.__init__$",
    # Python's own BaseException methods, inherited by TrainingDivergedError.
    r"\.add_note$",
    r"\.with_traceback$",
}



def _unlink_scikit_learn_refs(app, what, name, obj, options, lines):
    """Turn scikit-learn's own cross-references into plain text.

    Methods inherited from scikit-learn (``set_output``,
    ``get_metadata_routing``) link to labels of scikit-learn's documentation,
    which this site cannot resolve without network access (intersphinx).
    """
    if not getattr(obj, "__module__", "").startswith("sklearn."):
        return
    for i, line in enumerate(lines):
        line = re.sub(r":ref:`([^`<]+?)\s*<[^`>]+>`", r"\1", line)
        lines[i] = re.sub(r":ref:`([^`]+)`", r"``\1``", line)


def setup(app):
    """Register the docstring hook above."""
    app.connect("autodoc-process-docstring", _unlink_scikit_learn_refs)


# -- Generated tables --------------------------------------------------------
#: Data shapes for the table of what the "auto" defaults choose
#: (user_guide/performance.rst): name, n_samples, n_features.
AUTO_TABLE_SHAPES = (
    ("iris", 150, 4),
    ("wine", 178, 13),
    ("breast cancer", 569, 30),
    ("digits", 1797, 64),
    ("a table", 20000, 20),
    ("text vectors", 10000, 2000),
    ("MNIST test set", 10000, 784),
    ("MNIST", 70000, 784),
)


def write_auto_settings_table(path):
    """Write the RST table of the settings the "auto" defaults resolve to.

    The values come from the estimators' own ``_planned_settings``: the
    rules ``fit`` applies, with the default network built and its work
    measured, so the table cannot drift from the code. DEC's settings are
    given for a device without bfloat16 units (float32) and, where they
    differ, after a slash for one with them, whatever machine builds the
    documentation.
    """
    from unittest import mock

    import deepcluster_sk._torch._precision as precision_rule
    from deepcluster_sk import DACClusterer, DECClusterer, IMSATClusterer
    from deepcluster_sk._training._sampler import steps_per_epoch

    header = (
        "data", "n_samples x n_features", "DEC ``hidden_dims_``",
        "``precision_`` with bfloat16 units", "``batch_size_``",
        "``pretrain_epochs_`` (steps)", "``update_interval_``", "``max_iter_``",
        "DEC ``init_`` (N2D ``manifold_``)", "IMSAT ``hidden_dims_``", "IMSAT ``eps_scale_``",
        "IMSAT ``n_epochs_``", "DAC ``steps_per_stage_``",
    )

    def both(values):
        return values[0] if values[0] == values[1] else " / ".join(values)

    rows = []
    for name, n, d in AUTO_TABLE_SHAPES:
        with mock.patch.object(precision_rule, "native_bfloat16", lambda device: False):
            plain = DECClusterer()._planned_settings(n, d)
        with mock.patch.object(precision_rule, "native_bfloat16", lambda device: True):
            units = DECClusterer()._planned_settings(n, d)
        imsat = IMSATClusterer(precision="float32")._planned_settings(n, d)
        dac = DACClusterer(precision="float32")._planned_settings(n, d)

        def epochs(dec):
            steps = dec["pretrain_epochs"] * steps_per_epoch(n, dec["batch_size"])
            return f"{dec['pretrain_epochs']} ({steps:,})"

        rows.append((
            name, f"{n:,} x {d:,}", str(plain["hidden_dims"]), units["precision"],
            both([str(plain["batch_size"]), str(units["batch_size"])]),
            both([epochs(plain), epochs(units)]),
            both([str(plain["update_interval"]), str(units["update_interval"])]),
            both([str(plain["max_iter"]), str(units["max_iter"])]),
            plain["init"], str(imsat["hidden_dims"]), str(imsat["eps_scale"]),
            str(imsat["n_epochs"]), str(dac["steps_per_stage"]),
        ))
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in (header, *rows):
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}" for cell in row[1:])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


# Not an .rst file, so Sphinx reads it only where it is included.
write_auto_settings_table(Path(__file__).resolve().parent / "generated" / "auto_settings.rst.inc")

# -- Gallery ----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # Every script in examples/ is run, not only plot_*.py.
    "filename_pattern": r".*\.py$",
    "ignore_pattern": r"__init__\.py$",
    "within_subsection_order": "_gallery_order.ReadingOrder",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "doc_module": ("deepcluster_sk",),
    "backreferences_dir": "generated/backreferences",
}

# -- HTML -------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"deepcluster_sk {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_prev_next": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path = []
html_show_sourcelink = False

# Headless builds (CI) have no display; the examples draw with Agg.
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings(
    "ignore",
    category=UserWarning,
    message="Matplotlib is currently using agg",
)
