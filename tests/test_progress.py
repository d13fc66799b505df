"""Progress output: silent at verbose=0, tqdm bars or plain lines at 1."""

import sys

import pytest
from conftest import FAST_DEC
from sklearn.datasets import make_blobs

from deepcluster_sk import AutoencoderKMeans, DACClusterer, DECClusterer, IMSATClusterer
from deepcluster_sk._training._progress import ProgressPrinter


def _drive(printer):
    with printer.track("pretraining", 20, "epoch") as track:
        for epoch in range(1, 21):
            track.advance(epoch, {"loss": f"{1.0 / epoch:.5f}"})
    track = printer.track("self-training", 100, "step")
    for iteration in (0, 10, 20):
        track.advance(iteration, {"kl": "0.50000", "changed": "1.0000%"})
    printer.close()
    printer.message("done")


@pytest.fixture
def no_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)


def test_verbose_zero_prints_nothing(capsys):
    _drive(ProgressPrinter(0, "Model"))
    assert capsys.readouterr() == ("", "")


def test_verbose_one_shows_progress_bars_with_the_values(capsys):
    pytest.importorskip("tqdm")
    _drive(ProgressPrinter(1, "Model"))
    out, err = capsys.readouterr()
    assert "[Model] pretraining" in err
    assert "20/20" in err and "loss=0.05000" in err
    assert "[Model] self-training" in err and "kl=0.50000" in err
    # The bars replace the plain lines; the one-off message stays a line.
    assert out == "[Model] done\n"


def test_plain_lines_when_tqdm_cannot_be_imported(capsys, no_tqdm):
    _drive(ProgressPrinter(1, "Model"))
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    epochs = [line for line in lines if "pretraining epoch" in line]
    # One line for each tenth of the phase reached: about ten per phase.
    assert len(epochs) == 11
    assert epochs[-1] == "[Model] pretraining epoch 20/20: loss 0.05000"
    assert sum("self-training step" in line for line in lines) == 3
    assert lines[-1] == "[Model] done"


def test_verbose_two_prints_every_report_without_bars(capsys):
    _drive(ProgressPrinter(2, "Model"))
    out, err = capsys.readouterr()
    assert err == ""
    assert sum("pretraining epoch" in line for line in out.splitlines()) == 20


def test_close_is_idempotent_and_a_context_manager(capsys):
    with ProgressPrinter(1, "Model") as printer:
        printer.track("pretraining", 5, "epoch").advance(1, {})
    printer.close()
    printer.close()


ESTIMATORS = {
    "DECClusterer": (
        DECClusterer(2, **{**FAST_DEC, "pretrain_epochs": 3, "max_iter": 10,
                           "update_interval": 5}),
        ("pretraining", "self-training"),
    ),
    "AutoencoderKMeans": (
        AutoencoderKMeans(2, hidden_dims=(8,), pretrain_epochs=3, n_init=1,
                          random_state=0),
        ("pretraining",),
    ),
    "IMSATClusterer": (
        IMSATClusterer(2, hidden_dims=(8,), n_epochs=3, batch_size=20, random_state=0),
        ("training",),
    ),
    "DACClusterer": (
        DACClusterer(2, hidden_dims=(8,), steps_per_stage=2, threshold_rate=0.1,
                     batch_size=20, random_state=0),
        ("training",),
    ),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", list(ESTIMATORS))
@pytest.mark.parametrize("verbose", [0, 1])
def test_every_estimator_shows_a_bar_per_phase(capsys, name, verbose):
    pytest.importorskip("tqdm")
    estimator, phases = ESTIMATORS[name]
    X, _ = make_blobs(60, 4, random_state=0)
    estimator.set_params(verbose=verbose).fit(X)
    out, err = capsys.readouterr()
    if verbose == 0:
        assert out == err == ""
    else:
        assert f"[{name}] settings for 60 samples x 4 features" in out
        for phase in phases:
            assert f"[{name}] {phase}" in err
