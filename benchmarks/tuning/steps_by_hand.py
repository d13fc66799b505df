"""Training steps of plain MLPs by hand against autograd's, and whole fits.

A phase whose networks are plain stacks of ``nn.Linear`` and ``nn.ReLU``
(the default autoencoder) runs its step on a CPU in float32 without
autograd (``deepcluster_sk/_training/_linear_stack.py``): forward and
backward as matrix products, the gradients written into one flat buffer,
and the fused optimizer kernel called directly on it. This script times
both forms in one process, one after the other:

* the pretraining step (mean squared error, Adam) of the "auto" autoencoder
  of data of 20, 64 and 128 features and of the paper's network in float32,
  at the "auto" batch, on one fixed batch (median of 5 runs);
* with ``--fits``, whole fits with the defaults, each seed by hand and then
  through autograd (``_linear_stack.STEPS_BY_HAND`` switched off), so that
  the machine's drift hits both alike; their ACC too.

Run alone on the machine:
    python benchmarks/tuning/steps_by_hand.py
    python benchmarks/tuning/steps_by_hand.py --fits
Writes benchmarks/results/tuning/steps_by_hand.json (steps),
steps_by_hand_fits.jsonl (fits, appended) and steps_by_hand.md (both).
"""

import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from imbalance import environment  # noqa: E402
from levers import phase_on_random_rows, seconds_per_step  # noqa: E402
from paired_fits import attribute_set, command_line, record_cases  # noqa: E402

import deepcluster_sk._training._linear_stack as linear_stack  # noqa: E402
from deepcluster_sk._auto import auto_batch_size, auto_hidden_dims  # noqa: E402
from deepcluster_sk._torch._denormals import denormals_flushed  # noqa: E402
from deepcluster_sk._training._pretraining import EndToEndPhase  # noqa: E402
from deepcluster_sk.nn import MLPAutoencoder  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results" / "tuning"

#: (label, features, rows the batch size is chosen for, steps per run)
CASES = (
    ("table, 20 features", 20, 1000, 600),
    ("breast cancer, 30 features", 30, 569, 600),
    ("digits, 64 features", 64, 1797, 400),
    ("128 features", 128, 10000, 300),
    ("paper network, 784 features, float32", 784, 10000, 40),
)

#: Whole fits of ``--fits``: every estimator that trains an autoencoder.
FITS = [f"{method}:{data}"
        for data in ("breast_cancer", "wine", "iris", "blobs", "anisotropic_blobs",
                     "digits_pca20", "digits")
        for method in ("ae-kmeans", "dec", "idec", "n2d")]

FORMS = ("by hand", "autograd")


def step_timings():
    rows = []
    for label, d, n_rows, n_steps in CASES:
        batch = auto_batch_size(n_rows)
        row = {"case": label, "batch": batch, "hidden_dims": list(auto_hidden_dims(d))}
        for form in FORMS:
            with _steps_by_hand(form == "by hand"):
                torch.manual_seed(0)
                network = MLPAutoencoder(d, auto_hidden_dims(d), 10)
                phase, x = phase_on_random_rows(network, d, batch, "float32",
                                                EndToEndPhase)
            phase.lr_schedule = None
            assert (phase._step_by_hand is not None) == (form == "by hand")
            with denormals_flushed(x.device):
                seconds = seconds_per_step(phase.step, x, phase.data, n_steps)
            row[f"{form} ms"] = 1e3 * seconds
        row["speed-up"] = row["autograd ms"] / row["by hand ms"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "steps_by_hand.json").write_text(
        json.dumps({"environment": environment(), "rows": rows}, indent=1))
    render()


def _steps_by_hand(enabled):
    return attribute_set(linear_stack, "STEPS_BY_HAND", enabled)


def fits(cases, seeds):
    forms = {form: (lambda by_hand=form == "by hand": _steps_by_hand(by_hand))
             for form in FORMS}
    record_cases(cases, seeds, forms, RESULTS / "steps_by_hand_fits.jsonl", _fit_line)
    render()


def _fit_line(r):
    hand, auto = (statistics.mean(r[f"{form} s"]) for form in FORMS)
    return (
        f"| {r['method']} | {r['data']} | {len(r['seeds'])} | {hand:.2f} | "
        f"{max(r['by hand s']):.2f} | {auto:.2f} | {max(r['autograd s']):.2f} | "
        f"{auto / hand:.2f}x | {statistics.mean(r['by hand ACC']):.4f} | "
        f"{statistics.mean(r['autograd ACC']):.4f} |"
    )


CONCLUSION = """\
Adopted (2026-12-08) for every phase whose networks are plain stacks:
autoencoder pretraining (end to end) and DEC's and IDEC's self-training,
on a CPU in float32 in one process. Anything else (another layer, a
subclass of `nn.Sequential`, a hook, images as samples, bfloat16, a GPU,
several processes, a frozen encoder) keeps the autograd step. The steps
compute the same values: the tests compare losses, gradients and weights
with autograd's and `torch.optim`'s (`tests/test_linear_stack.py`,
`tests/test_optim.py`); labels of a fit move only where rounding moves
them. The first 28 fit rows ran at commit 7b56568, whose self-training
still took the KL loss's gradient through autograd; the last six (DEC and
IDEC again) with its closed form and the direct SGD update. Their first
fit, DEC on digits' principal components with seed 0, took 2.79 s either
way; re-fitted in a warm process it took 1.88 s."""


def render():
    """Write steps_by_hand.md from the step timings and the fits recorded."""
    lines = ["# Training steps by hand against autograd", ""]
    steps_path = RESULTS / "steps_by_hand.json"
    if steps_path.exists():
        steps = json.loads(steps_path.read_text())
        env = steps["environment"]
        lines += [
            "Command: `python benchmarks/tuning/steps_by_hand.py`  ",
            f"Machine: {env['cpu_model']}, {env['torch_threads']} torch threads, "
            f"torch {env['torch']}.",
            "",
            "## Pretraining steps",
            "",
            "Median of 5 runs of `EndToEndPhase.step` (forward, mean squared error, "
            "backward, Adam) of the \"auto\" autoencoder on one fixed batch of the "
            "\"auto\" size, float32, subnormals flushed as in a fit. \"by hand\" is "
            "the step of `_training/_linear_stack.py` with the fused kernel called "
            "on one flat buffer; \"autograd\" the step the phase takes otherwise.",
            "",
            "| network | hidden | batch | by hand ms / step | autograd ms / step | "
            "speed-up |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in steps["rows"]:
            lines.append(
                f"| {r['case']} | {'-'.join(map(str, r['hidden_dims']))} | "
                f"{r['batch']} | {r['by hand ms']:.3f} | {r['autograd ms']:.3f} | "
                f"{r['speed-up']:.2f}x |")
    fits_path = RESULTS / "steps_by_hand_fits.jsonl"
    if fits_path.exists():
        records = [json.loads(line) for line in fits_path.read_text().splitlines()]
        env = records[-1]["environment"]
        lines += [
            "",
            "## Whole fits",
            "",
            "Command: `python benchmarks/tuning/steps_by_hand.py --fits`; machine "
            f"{env['cpu_model']}, {env['torch_threads']} torch threads. Defaults "
            "(`Est(n_clusters=k, random_state=seed, device=\"cpu\")`, the tables "
            "after `StandardScaler`, digits / 16), each seed by hand and then "
            "through autograd; fit seconds (mean and max over the seeds) and mean "
            "ACC.",
            "",
            "| method | data | seeds | by hand s | max | autograd s | max | "
            "speed-up | by hand ACC | autograd ACC |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        lines += [_fit_line(r) for r in records]
    lines += ["", CONCLUSION]
    (RESULTS / "steps_by_hand.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    command_line(__doc__.splitlines()[0], step_timings, fits, FITS)
