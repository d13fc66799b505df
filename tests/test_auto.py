"""The "auto" defaults: the rules themselves and how the estimators use them."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from deepcluster_sk import AutoencoderKMeans, DACClusterer, DECClusterer, IMSATClusterer
from deepcluster_sk import _auto
from deepcluster_sk._threads import training_threads

sizes = st.integers(min_value=2, max_value=10**7)
features = st.integers(min_value=1, max_value=10**5)


@given(sizes, sizes)
def test_batch_size_is_a_bounded_power_of_two_that_grows_with_the_data(n, m):
    small, large = sorted((n, m))
    batch = _auto.auto_batch_size(small)
    assert _auto._BATCH_RANGE[0] <= batch <= _auto._BATCH_RANGE[1]
    assert batch & (batch - 1) == 0
    assert _auto.auto_batch_size(large) >= batch


@given(features, features)
def test_hidden_width_grows_with_the_features_within_bounds(d, e):
    narrow, wide = sorted((d, e))
    dims = _auto.auto_hidden_dims(narrow)
    low, high = _auto._WIDTH_RANGE
    if narrow >= _auto._PAPER_WIDTH_FEATURES:
        assert dims == _auto.PAPER_HIDDEN_DIMS
    else:
        assert len(dims) == 3 and low <= dims[0] == dims[1] <= high
        assert dims[2] == 2 * dims[0]
    assert _auto.auto_hidden_dims(wide)[0] >= dims[0]


@given(sizes, features, st.integers(1, 512), st.integers(1, 10**7))
def test_training_steps_stay_within_the_step_and_compute_budget(n, d, batch, work):
    steps = _auto.auto_training_steps(n, d, batch, work)
    assert 1 <= steps <= _auto._STEP_RANGE[1]
    # Never more compute than the cap, unless one step alone exceeds it.
    assert steps * batch * work <= max(_auto.max_training_work(n), batch * work)


def test_tiny_data_gets_a_small_network_and_a_short_budget():
    tiny = _auto.autoencoder_settings(
        30, 3, hidden_dims="auto", n_components=10, batch_size="auto",
        pretrain="end_to_end", pretrain_epochs="auto", pretrain_iterations="auto",
    )
    digits = _auto.autoencoder_settings(
        1797, 64, hidden_dims="auto", n_components=10, batch_size="auto",
        pretrain="end_to_end", pretrain_epochs="auto", pretrain_iterations="auto",
    )
    steps = {
        name: s["pretrain_epochs"] * _auto.steps_per_epoch(n, s["batch_size"])
        for name, s, n in [("tiny", tiny, 30), ("digits", digits, 1797)]
    }
    assert tiny["hidden_dims"][0] < digits["hidden_dims"][0]
    assert steps["tiny"] < steps["digits"] / 5


def test_explicit_values_win_over_the_rule():
    settings = _auto.autoencoder_settings(
        1000, 20, hidden_dims=[7, 5], n_components=3, batch_size=33,
        pretrain="end_to_end", pretrain_epochs=4, pretrain_iterations="auto",
    )
    assert settings == {"hidden_dims": (7, 5), "batch_size": 33, "pretrain_epochs": 4}
    settings = _auto.self_training_settings(
        settings, 1000, update_interval=9, max_iter=11
    )
    assert settings["update_interval"] == 9 and settings["max_iter"] == 11


def test_layerwise_pretraining_resolves_its_iterations_not_epochs():
    settings = _auto.autoencoder_settings(
        1000, 20, hidden_dims="auto", n_components=10, batch_size="auto",
        pretrain="layerwise", pretrain_epochs="auto", pretrain_iterations="auto",
    )
    assert "pretrain_epochs" not in settings
    assert settings["pretrain_iterations"] >= 1


@pytest.mark.parametrize("Estimator", [DECClusterer, AutoencoderKMeans])
def test_fitted_estimator_stores_the_settings_it_used(Estimator, blobs):
    X, _ = blobs
    model = Estimator(n_clusters=3, pretrain_epochs=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    expected = _auto.auto_hidden_dims(X.shape[1])
    assert model.hidden_dims_ == expected
    assert model.batch_size_ == _auto.auto_batch_size(X.shape[0])
    assert model.pretrain_epochs_ == 3
    widths = [layer.out_features for layer in model.autoencoder_.encoder[::2]]
    assert widths == [*expected, model.n_components]
    # The parameters themselves are untouched, as scikit-learn requires.
    assert model.hidden_dims == "auto" and model.batch_size == "auto"
    if Estimator is DECClusterer:
        interval = _auto.auto_update_interval(X.shape[0], model.batch_size_)
        assert model.update_interval_ == interval
        assert model.max_iter_ == _auto._MAX_UPDATES * interval


def test_verbose_prints_the_settings(blobs, capsys):
    X, _ = blobs
    AutoencoderKMeans(n_clusters=3, pretrain_epochs=1, verbose=2, random_state=0).fit(X)
    out = capsys.readouterr().out
    assert "settings for 300 samples x 6 features" in out
    assert f"hidden_dims={_auto.auto_hidden_dims(6)!r}" in out


def test_settings_of_a_failed_fit_are_removed(blobs):
    X, _ = blobs
    model = AutoencoderKMeans(n_clusters=3, pretrain_epochs=1, random_state=0).fit(X)
    with pytest.raises(ValueError):
        model.fit(np.full_like(X, np.nan))
    assert not hasattr(model, "hidden_dims_") and not hasattr(model, "batch_size_")


@pytest.mark.parametrize("work, expected", [(10, 1), (10**12, None)])
def test_small_steps_train_on_one_thread_and_the_setting_is_restored(work, expected):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with training_threads(torch.device("cpu"), work) as inside:
            assert torch.get_num_threads() == inside == (expected or 2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_imsat_takes_the_papers_radius_on_images_and_a_wider_one_on_tables():
    assert _auto.auto_eps_scale(784) == 0.25
    assert _auto.auto_eps_scale(64) == 1.0


def test_imsat_stores_the_settings_it_used(blobs):
    X, _ = blobs
    model = IMSATClusterer(n_clusters=3, n_epochs=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    width = _auto.auto_width(X.shape[1], _auto._SOFTMAX_WIDTH_RANGE)
    assert model.hidden_dims_ == (width, width)
    assert model.eps_scale_ == _auto.auto_eps_scale(X.shape[1])
    # An explicit eps_scale wins and scales the same neighbour distances.
    halved = IMSATClusterer(n_clusters=3, n_epochs=2, eps_scale=0.5, random_state=0)
    halved.fit(X)
    assert halved.eps_scale_ == 0.5
    expected = model.eps_ / model.eps_scale_ * 0.5
    np.testing.assert_allclose(halved.eps_, expected, rtol=1e-5)


@pytest.mark.parametrize(
    "n_samples, batch_size, expected",
    [(30, 30, 10), (569, 128, 16), (1797, 128, 50), (70000, 128, 50)],
)
def test_dac_stages_are_four_passes_within_bounds(n_samples, batch_size, expected):
    assert _auto.auto_steps_per_stage(n_samples, batch_size) == expected


def test_dac_stores_the_steps_per_stage_it_used(blobs):
    X, _ = blobs
    model = DACClusterer(n_clusters=3, threshold_rate=0.1, random_state=0).fit(X)
    assert model.steps_per_stage_ == _auto.auto_steps_per_stage(X.shape[0], 128)
    assert model.n_iter_ == len(model.history_["loss"]) * model.steps_per_stage_
    epoch = DACClusterer(n_clusters=3, steps_per_stage="epoch", threshold_rate=0.1)
    assert epoch.fit(X).steps_per_stage_ == X.shape[0] // 128
