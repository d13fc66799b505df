"""Training that goes wrong says so, for every estimator.

The cases of issue 10, tried on three well-separated blobs (180 x 5): a
learning rate too large by orders of magnitude raises
TrainingDivergedError naming the learning rate and leaves the estimator
unfitted; data that float32 cannot hold is reported as such, never as NaN
in the input; a fit that uses fewer clusters than n_clusters, or
self-training stopped by max_iter, warns with ConvergenceWarning; a healthy
fit warns about nothing; history_["stop_reason"] says why training stopped.
"""

import re
import warnings

import numpy as np
import pytest
import torch
from conftest import FAST_DEC
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

import deepcluster_sk._training._pretraining as pretraining_module
from deepcluster_sk import (
    AutoencoderKMeans,
    DACClusterer,
    DECClusterer,
    IMSATClusterer,
)
from deepcluster_sk._diagnostics import GROWTH_FACTOR, DivergenceMonitor
from deepcluster_sk._torch._data import TrainingData
from deepcluster_sk._training._pretraining import (
    EndToEndPretraining,
    LayerwisePretraining,
)
from deepcluster_sk._training._progress import ProgressPrinter
from deepcluster_sk.exceptions import TrainingDivergedError
from deepcluster_sk.nn import MLPAutoencoder

_SELF_TRAINING = ("max_iter", "update_interval")

#: Small, fast settings under which every estimator separates the blobs.
ESTIMATORS = {
    "DECClusterer": DECClusterer(n_clusters=3, **FAST_DEC),
    "AutoencoderKMeans": AutoencoderKMeans(
        n_clusters=3, **{k: v for k, v in FAST_DEC.items() if k not in _SELF_TRAINING}
    ),
    "IMSATClusterer": IMSATClusterer(
        n_clusters=3, hidden_dims=(32,), n_epochs=10, batch_size=60, random_state=0
    ),
    "DACClusterer": DACClusterer(
        n_clusters=3,
        hidden_dims=(32, 32),
        steps_per_stage=5,
        threshold_rate=0.03,
        batch_size=60,
        random_state=0,
    ),
}
each_estimator = pytest.mark.parametrize("name", list(ESTIMATORS))

#: Learning rates too large by orders of magnitude (the issue's table), the
#: estimators that have them, and the phase each one drives.
DIVERGING = [
    ("DECClusterer", "pretrain_learning_rate", 1e3, "pretraining", "epoch"),
    ("DECClusterer", "learning_rate", 1e6, "self-training", "iteration"),
    ("AutoencoderKMeans", "pretrain_learning_rate", 1e3, "pretraining", "epoch"),
    ("AutoencoderKMeans", "pretrain_learning_rate", 1e6, "pretraining", "epoch"),
    ("IMSATClusterer", "learning_rate", 1e6, "training", "epoch"),
    ("DACClusterer", "learning_rate", 1e6, "training", "stage"),
]

#: What each estimator's collapse warning suggests changing.
COLLAPSE_ADVICE = {
    "DECClusterer": "lower learning_rate (now 0.01)",
    "AutoencoderKMeans": "lower pretrain_learning_rate (now 0.001)",
    "IMSATClusterer": "larger marginal_weight (now 4.0)",
    "DACClusterer": "lower learning_rate (now 0.001)",
}


@pytest.fixture(scope="module")
def X():
    X, _ = make_blobs(n_samples=180, centers=3, n_features=5, random_state=0)
    return X


def _make(name, **params):
    return ESTIMATORS[name].__class__(**{**ESTIMATORS[name].get_params(), **params})


def _fitted_attributes(model):
    return [k for k in vars(model) if k.endswith("_") and not k.startswith("__")]


def _assert_unfitted(model):
    assert not _fitted_attributes(model)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


# -- a healthy fit -------------------------------------------------------------


@pytest.mark.parametrize(
    "name, reason",
    [
        ("DECClusterer", "converged"),
        ("AutoencoderKMeans", "completed"),
        ("IMSATClusterer", "completed"),
        ("DACClusterer", "completed"),
    ],
)
def test_a_healthy_fit_warns_about_nothing_and_says_why_it_stopped(name, reason, X):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = _make(name).fit(X)
    assert np.unique(model.labels_).size == 3
    assert model.history_["stop_reason"] == reason


# -- divergence ------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("name, parameter, value, phase, unit", DIVERGING)
def test_a_diverging_fit_names_the_learning_rate_and_leaves_no_model(
    name, parameter, value, phase, unit, precision, X
):
    model = _make(name, precision=precision).fit(X)
    model.set_params(**{parameter: value})
    expected = (
        rf"^{phase} diverged at {unit} \d+ \(.+\); "
        rf"lower {parameter} \(now {re.escape(str(value))}\)\.$"
    )
    with pytest.raises(TrainingDivergedError, match=expected):
        model.fit(X)
    _assert_unfitted(model)


def test_a_diverged_fit_is_a_value_error(X):
    with pytest.raises(ValueError, match="diverged"):
        _make("IMSATClusterer", learning_rate=1e6).fit(X)


def test_pretraining_that_diverges_at_its_last_step_is_reported_before_kmeans(
    X, monkeypatch
):
    # Weights that turn NaN after the last check of pretraining reach
    # k-means as a NaN embedding: the error is about the training, not
    # "Input X contains NaN".
    def nan_weights(self, autoencoder, *args):
        for param in autoencoder.parameters():
            param.data.fill_(float("nan"))
        return []

    monkeypatch.setattr(EndToEndPretraining, "run", nan_weights)
    for name in ("DECClusterer", "AutoencoderKMeans"):
        model = _make(name)
        with pytest.raises(TrainingDivergedError) as error:
            model.fit(X)
        assert "embedding of the training data is not finite" in str(error.value)
        assert "lower pretrain_learning_rate (now 0.001)" in str(error.value)
        assert "Input X" not in str(error.value)
        _assert_unfitted(model)


def test_layerwise_pretraining_names_what_the_user_can_change(X, monkeypatch):
    # Its learning rate is fixed; at a thousand times the usual rate the
    # first layer pair diverges, and the advice is not to lower a parameter
    # that does not exist.
    monkeypatch.setattr(pretraining_module, "LAYERWISE_LEARNING_RATE", 1e4)
    model = _make("AutoencoderKMeans", pretrain="layerwise", pretrain_iterations=20)
    with pytest.raises(
        TrainingDivergedError,
        match=r"^layer-wise pretraining of layer pair 1 diverged at epoch \d+ .*"
        r"fixed learning rate: scale the data.*pretrain=\"end_to_end\"\.$",
    ):
        model.fit(X)
    _assert_unfitted(model)


# -- data that float32 cannot hold -----------------------------------------------


@pytest.mark.parametrize("scale", [1e30, 1e39])
@each_estimator
def test_values_too_large_for_float32_are_reported_as_such(name, scale, X):
    model = _make(name)
    with pytest.raises(ValueError) as error:
        model.fit(X * scale)
    message = str(error.value)
    assert "values too large for float32" in message
    assert "StandardScaler" in message
    assert "NaN" not in message and "infinity" not in message
    assert not isinstance(error.value, TrainingDivergedError)
    _assert_unfitted(model)


def test_predicting_on_values_too_large_for_float32(X):
    model = _make("AutoencoderKMeans").fit(X)
    with pytest.raises(ValueError, match="values too large for float32"):
        model.predict(X * 1e30)


@pytest.mark.parametrize("name", ["DECClusterer", "AutoencoderKMeans"])
def test_data_that_overflow_the_first_loss_are_blamed_not_the_learning_rate(
    name, X
):
    # 1e18 fits float32 and squares below its maximum, but the squared
    # error summed over a batch overflows before any update: no learning
    # rate can help.
    model = _make(name)
    with pytest.raises(ValueError) as error:
        model.fit(X * 1e18)
    message = str(error.value)
    assert message.startswith("pretraining failed before its first update")
    assert "whatever the learning rate; scale the data" in message
    assert "lower" not in message
    assert not isinstance(error.value, TrainingDivergedError)
    _assert_unfitted(model)


# -- collapse ----------------------------------------------------------------------


@each_estimator
def test_fewer_distinct_clusters_than_asked_for_warns(name, X):
    # Two distinct samples cannot fill three clusters, whatever the model.
    X_two = np.repeat(X[:2], 90, axis=0)
    with pytest.warns(ConvergenceWarning) as record:
        model = _make(name).fit(X_two)
    messages = [str(w.message) for w in record if w.category is ConvergenceWarning]
    n_used = np.unique(model.labels_).size
    assert n_used < 3
    # One warning, the estimator's: scikit-learn's own about the embedding
    # ("duplicate points in X") would not be about the user's X.
    assert len(messages) == 1
    assert messages[0].startswith(
        f"Number of distinct clusters ({n_used}) found smaller than n_clusters (3). "
    )
    assert COLLAPSE_ADVICE[name] in messages[0]
    assert messages[0].endswith("Duplicate points in X can also cause this.")


@pytest.mark.parametrize(
    "name, learning_rate",
    [("IMSATClusterer", 10.0), ("DACClusterer", 100.0)],
)
def test_a_learning_rate_that_merges_clusters_warns(name, learning_rate, X):
    with pytest.warns(
        ConvergenceWarning,
        match=r"Number of distinct clusters \([12]\) found smaller than n_clusters "
        rf"\(3\)\. Try a lower learning_rate \(now {learning_rate}\)",
    ):
        model = _make(name, learning_rate=learning_rate).fit(X)
    assert np.unique(model.labels_).size < 3


# -- non-convergence -----------------------------------------------------------------


def test_self_training_stopped_by_max_iter_warns_naming_max_iter_and_tol():
    # Uniform noise has no clusters; at a large step the labels keep moving.
    noise = np.random.RandomState(0).uniform(size=(180, 5))
    model = _make("DECClusterer", max_iter=20, update_interval=5, learning_rate=1.0)
    with pytest.warns(
        ConvergenceWarning,
        match=r"Self-training stopped at max_iter=20 steps and has not "
        r"converged: .*% of the labels changed .* more than tol=0\.001\. "
        r"Increase max_iter",
    ):
        model.fit(noise)
    assert model.history_["stop_reason"] == "max_iter"
    assert model.history_["label_change"][-1] > model.tol


def test_no_self_training_is_a_choice_not_a_failure(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = _make("DECClusterer", max_iter=0).fit(X)
    assert model.n_iter_ == 0
    assert model.history_["stop_reason"] == "max_iter"


# -- the monitor itself --------------------------------------------------------------


def _monitor(params=(), loss_growth=True):
    return DivergenceMonitor(
        "pretraining", "lower lr (now 1)", params, loss_growth=loss_growth
    )


def test_the_monitor_stops_a_loss_grown_by_the_growth_factor():
    monitor = _monitor()
    monitor.record_start(torch.tensor(2.0))
    monitor.record_start(torch.tensor(1e9))  # only the first step counts
    monitor.check(1, 2.0 * GROWTH_FACTOR * 0.99)
    with pytest.raises(
        TrainingDivergedError,
        match=r"^pretraining diverged at epoch 2 \(loss 2\.02e\+04, more than "
        r"10000 times its first value 2\); lower lr \(now 1\)\.$",
    ):
        monitor.check(2, 2.0 * GROWTH_FACTOR * 1.01)


def test_a_loss_starting_at_zero_may_grow_a_little():
    monitor = _monitor()
    monitor.record_start(torch.tensor(0.0))
    monitor.check(1, 1.0)
    with pytest.raises(TrainingDivergedError):
        monitor.check(2, 100.0)


def test_without_loss_growth_only_non_finite_losses_stop():
    monitor = _monitor(loss_growth=False)
    monitor.check(0, 1e-6)
    monitor.check(1, 1e6)
    with pytest.raises(TrainingDivergedError, match=r"at epoch 2 \(loss nan\)"):
        monitor.check(2, [0.5, float("nan")])


def test_the_monitor_stops_weights_that_run_away():
    weight = torch.nn.Parameter(torch.ones(4))
    monitor = _monitor([weight])
    monitor.check(1, 1.0)
    weight.data.mul_(GROWTH_FACTOR * 1.01)
    with pytest.raises(
        TrainingDivergedError, match=r"norm of the weights grew from 2 to 2\.02e\+04"
    ):
        monitor.check(2, 1.0)
    weight.data.fill_(float("inf"))
    with pytest.raises(TrainingDivergedError, match="weights are no longer finite"):
        monitor.check(3, 1.0)


def test_a_first_loss_that_is_not_finite_blames_the_data():
    monitor = _monitor()
    monitor.record_start(torch.tensor(float("inf")))
    with pytest.raises(ValueError, match="before its first update") as error:
        monitor.check(1, float("inf"))
    assert not isinstance(error.value, TrainingDivergedError)


def test_layerwise_pretraining_passes_its_advice_on():
    rows = np.random.RandomState(0).normal(size=(64, 5)).astype(np.float32)
    data = TrainingData(rows, torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    autoencoder = MLPAutoencoder(5, (8,), 2, generator=generator)
    schedule = LayerwisePretraining(
        10, 16, "do something else", learning_rate=1e6, lr_step=5
    )
    schedule.prepare(autoencoder, generator)
    with pytest.raises(TrainingDivergedError, match="; do something else\\.$"):
        schedule.run(autoencoder, data, generator, ProgressPrinter(0, "Test"))
