"""Whole fits with subnormal floats flushed to zero and kept, interleaved.

``run_phase`` flushes subnormal floats to zero on every torch thread while a
CPU trains (``deepcluster_sk/_torch/_denormals.py``). This fits each case
with that and with it replaced by a no-op, alternately, three times each
(seed 0, defaults), so that the machine's drift falls on both alike.

Run alone on the machine:  python benchmarks/tuning/subnormals.py
Writes benchmarks/results/tuning/subnormals.md.
"""

import contextlib
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from auto_defaults import datasets, fit_and_score, warm_up  # noqa: E402
from imbalance import environment  # noqa: E402

import deepcluster_sk._training._engine as engine  # noqa: E402
from deepcluster_sk import (  # noqa: E402
    AutoencoderKMeans,
    DACClusterer,
    DECClusterer,
    IMSATClusterer,
)

CASES = (
    (AutoencoderKMeans, "digits"),
    (DACClusterer, "digits"),
    (IMSATClusterer, "digits"),
    (DECClusterer, "breast_cancer"),
    (DECClusterer, "digits_pca20"),
)
REPEATS = 3
RESULT = Path(__file__).resolve().parents[1] / "results" / "tuning" / "subnormals.md"


def main():
    warm_up()
    data = {**datasets("tabular", None), **datasets("digits", None)}
    flushing = engine.denormals_flushed
    modes = {"flushed": flushing, "kept": lambda device: contextlib.nullcontext()}
    rows = []
    try:
        for cls, name in CASES:
            X, y, standardise = data[name]
            seconds = {mode: [] for mode in modes}
            labels = {}
            for _ in range(REPEATS):
                for mode, context in modes.items():
                    engine.denormals_flushed = context
                    est = cls(len(np.unique(y)), random_state=0, device="cpu")
                    fitted = fit_and_score(est, X, y, standardise)
                    seconds[mode].append(fitted["seconds"])
                    labels[mode] = fitted["labels_sha1"]
            same = labels["flushed"] == labels["kept"]
            row = (cls.__name__, name, statistics.median(seconds["flushed"]),
                   statistics.median(seconds["kept"]), same)
            print(row, flush=True)
            rows.append(row)
    finally:
        engine.denormals_flushed = flushing
    env = environment()
    lines = [
        "# Subnormal floats flushed or kept: whole fits",
        "",
        "Command: `python benchmarks/tuning/subnormals.py`  ",
        f"Machine: {env['cpu_model']}, {env['torch_threads']} torch threads, "
        f"torch {env['torch']}; defaults, seed 0; median of {REPEATS} fits each, "
        "the two modes alternating.",
        "",
        "| estimator | data | s flushed | s kept | same labels |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c:.2f} | {d:.2f} | {'yes' if e else 'no'} |"
              for a, b, c, d, e in rows]
    RESULT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
