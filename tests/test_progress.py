"""Progress output: silent at verbose=0, tqdm bars or plain lines at 1."""

import sys

import pytest
from sklearn.datasets import make_blobs

from deepcluster_sk import DECClusterer
from deepcluster_sk._progress import ProgressPrinter


def _drive(printer):
    for epoch in range(20):
        printer.epoch(epoch, 20, 1.0 / (epoch + 1))
    for iteration in (0, 10, 20):
        printer.update(iteration, 100, 0.5, 0.01)
    printer.close()
    printer.message("done")


@pytest.fixture
def no_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)


def test_verbose_zero_prints_nothing(capsys):
    _drive(ProgressPrinter(0, "Model"))
    assert capsys.readouterr() == ("", "")


def test_verbose_one_shows_progress_bars_with_the_loss(capsys):
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
    assert len(epochs) == 10  # about ten lines per phase
    assert epochs[-1] == "[Model] pretraining epoch 20/20: reconstruction loss 0.05000"
    assert sum("self-training iteration" in line for line in lines) == 3
    assert lines[-1] == "[Model] done"


def test_verbose_two_prints_every_epoch_without_bars(capsys):
    _drive(ProgressPrinter(2, "Model"))
    out, err = capsys.readouterr()
    assert err == ""
    assert sum("pretraining epoch" in line for line in out.splitlines()) == 20


def test_close_is_idempotent_and_a_context_manager(capsys):
    with ProgressPrinter(1, "Model") as printer:
        printer.epoch(0, 5, 1.0)
    printer.close()
    printer.close()


@pytest.mark.parametrize("verbose", [0, 1])
def test_estimator_output_follows_verbose(capsys, verbose):
    X, _ = make_blobs(60, 4, random_state=0)
    DECClusterer(
        2,
        hidden_dims=(8,),
        n_components=2,
        pretrain_epochs=3,
        max_iter=10,
        update_interval=5,
        n_init=1,
        random_state=0,
        verbose=verbose,
    ).fit(X)
    out, err = capsys.readouterr()
    if verbose == 0:
        assert out == err == ""
    else:
        assert "DECClusterer" in out + err
        assert "pretraining" in out + err and "self-training" in out + err
