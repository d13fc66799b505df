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
from deepcluster_sk._torch._work import WorkCounter
from deepcluster_sk.nn import ClusterMLP, ConvAutoencoder, MLPAutoencoder

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
    tiny = DECClusterer()._planned_settings(30, 3)
    digits = DECClusterer()._planned_settings(1797, 64)
    steps = {
        name: s["pretrain_epochs"] * _auto.steps_per_epoch(n, s["batch_size"])
        for name, s, n in [("tiny", tiny, 30), ("digits", digits, 1797)]
    }
    assert tiny["hidden_dims"][0] < digits["hidden_dims"][0]
    assert steps["tiny"] < steps["digits"] / 5


def test_explicit_values_win_over_the_rule():
    model = DECClusterer(
        hidden_dims=[7, 5], batch_size=33, pretrain_epochs=4, update_interval=9,
        max_iter=11, precision="bfloat16", init="manifold", n_neighbors=7,
        umap_components=3,
    )
    settings = model._planned_settings(1000, 20)
    assert settings == {
        "batch_size": 33, "hidden_dims": (7, 5), "update_interval": 9,
        "max_iter": 11, "pretrain_epochs": 4, "precision": "bfloat16",
        "init": "manifold", "n_neighbors": 7, "umap_components": 3,
        "umap_epochs": _auto._UMAP_EPOCHS,
    }


def test_layerwise_pretraining_resolves_its_iterations_not_epochs():
    settings = DECClusterer(pretrain="layerwise")._planned_settings(1000, 20)
    assert "pretrain_epochs" not in settings
    assert settings["pretrain_iterations"] == _auto.auto_layerwise_iterations(
        1000, settings["batch_size"]
    )


def test_auto_layerwise_iterations_are_about_twenty_epochs_within_bounds():
    assert _auto.auto_layerwise_iterations(100, 256) == 1000
    assert _auto.auto_layerwise_iterations(70000, 256) == 20 * 274
    assert _auto.auto_layerwise_iterations(10**7, 256) == 50000


def test_the_budget_follows_the_measured_work_of_the_network():
    # On 10 000 images the compute cap binds: a network of a third of the
    # work per sample (1.66 M and 0.52 M multiply-adds through the encoder)
    # gets about three times the pretraining epochs.
    n, d = 10000, 784
    for precision in ("float32", "bfloat16"):
        wide = DECClusterer(hidden_dims=(500, 500, 2000), precision=precision)
        narrow = DECClusterer(hidden_dims=(250, 250, 1000), precision=precision)
        epochs = [m._planned_settings(n, d)["pretrain_epochs"] for m in (narrow, wide)]
        assert 2.9 < epochs[0] / epochs[1] < 3.5


def test_bfloat16_budget_on_larger_batches():
    assert _auto.bfloat16_batch_size(70000) == _auto.bfloat16_batch_size(10000) == 256
    # n / 8, but never below the small-data rule.
    assert _auto.bfloat16_batch_size(1000) == 64
    assert _auto.bfloat16_batch_size(100) == _auto.auto_batch_size(100) == 16
    assert _auto.max_training_work(10000, "bfloat16") == pytest.approx(
        1.5 * _auto.max_training_work(10000)
    )
    # It grows more slowly with n: the manifold step needs fewer epochs on
    # more data (about 67 on the MNIST test split, 35 on all of MNIST).
    growth = _auto.max_training_work(70000, "bfloat16") / _auto.max_training_work(
        10000, "bfloat16"
    )
    assert growth == pytest.approx(7**0.65)
    settings = {
        p: DECClusterer(precision=p)._planned_settings(70000, 784)
        for p in ("float32", "bfloat16")
    }
    assert settings["float32"]["batch_size"] == 64
    assert settings["bfloat16"]["batch_size"] == 256


def test_target_updates_come_after_at_most_51200_rows():
    assert _auto.auto_update_interval(1797, 64) == 140
    assert _auto.auto_update_interval(70000, 256) == 140
    assert _auto.auto_update_interval(10000, 1024) == 50
    assert _auto.auto_update_interval(70000, 2048) == 25
    assert _auto.auto_update_interval(100, 64) == 10  # five epochs of two steps


def _measured(module, x):
    with WorkCounter(module) as counter, torch.no_grad():
        module(x)
    return counter.multiply_adds / x.shape[0]


def test_measured_work_of_the_mlps_is_the_sum_of_their_layer_products():
    dims = [64, 128, 128, 256, 10]
    products = sum(a * b for a, b in zip(dims[:-1], dims[1:]))
    autoencoder = MLPAutoencoder(64, dims[1:-1], 10)
    assert _measured(autoencoder, torch.zeros(3, 64)) == 2 * products
    network = ClusterMLP(64, 10, (128, 128)).eval()
    assert _measured(network, torch.zeros(3, 64)) == 64 * 128 + 128 * 128 + 128 * 10


def test_measured_work_of_a_convolution_counts_every_output():
    autoencoder = ConvAutoencoder((1, 8, 8), n_components=4, channels=(2,),
                                  kernel_sizes=(3,))
    # Conv: 2 x 4 x 4 outputs of 1 x 3 x 3; linear 32 -> 4 and 4 -> 32;
    # transposed conv: 2 x 4 x 4 inputs, each spread over 1 x 3 x 3 outputs.
    expected = 32 * 9 + 32 * 4 + 4 * 32 + 32 * 9
    assert _measured(autoencoder, torch.zeros(2, 1, 8, 8)) == expected


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


def test_imsat_takes_the_papers_radius_on_images_and_a_wider_one_on_tables():
    assert _auto.auto_eps_scale(784) == 0.25
    assert _auto.auto_eps_scale(64) == 1.0


def test_imsat_stores_the_settings_it_used(blobs):
    X, _ = blobs
    model = IMSATClusterer(n_clusters=3, n_epochs=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    width = _auto.auto_width(X.shape[1], _auto._NETWORK_WIDTH_RANGE)
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


def test_imsat_takes_the_papers_epochs_unless_they_are_few_steps():
    # 10 000 rows at batch 250: 40 steps an epoch, 50 epochs are 2 000 steps.
    assert _auto.auto_imsat_epochs(10_000, 250) == 50
    # 150 rows fit in one batch: an epoch is one step.
    assert _auto.auto_imsat_epochs(150, 250) == _auto._IMSAT_MIN_STEPS
    # 569 rows: two steps an epoch (the incomplete batch dropped).
    epochs = _auto.auto_imsat_epochs(569, 250)
    assert epochs * 2 >= _auto._IMSAT_MIN_STEPS > (epochs - 1) * 2


def test_imsat_resolves_auto_epochs_and_keeps_explicit_ones(blobs):
    X, _ = blobs
    settings = IMSATClusterer(n_clusters=3)._planned_settings(*X.shape)
    assert settings["n_epochs"] == _auto.auto_imsat_epochs(
        X.shape[0], settings["batch_size"]
    )
    assert IMSATClusterer(n_clusters=3, n_epochs=7)._planned_settings(
        *X.shape)["n_epochs"] == 7
