"""The ``precision`` parameter: bfloat16 autocast, its "auto" rule, its guards."""

import warnings

import numpy as np
import pytest
import torch
from conftest import FAST_DEC
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError
from test_common import ESTIMATORS, IDS

import deepcluster_sk._estimators._base as base_module
import deepcluster_sk._torch._precision as precision_module
from deepcluster_sk import AutoencoderKMeans, DECClusterer
from deepcluster_sk._estimators._dac import dac_pair_loss, normalized_outputs
from deepcluster_sk._torch._dec_math import log_soft_assignment, target_distribution
from deepcluster_sk._torch._information import conditional_entropy, kl_divergence
from deepcluster_sk._torch._precision import (
    BFLOAT16_MIN_WORK,
    autocast,
    full_precision,
    resolve_precision,
)

CPU = torch.device("cpu")
each_estimator = pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)


@pytest.fixture
def no_bfloat16_units(monkeypatch):
    """A CPU without AVX-512 BF16 or AMX, as PyTorch's checks would report."""
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)


@pytest.fixture
def bfloat16_units(monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_has_bfloat16_units", lambda: True)


@pytest.fixture
def any_step_gains(monkeypatch):
    """"auto" picks bfloat16 for every network, where the device has units."""
    monkeypatch.setattr(precision_module, "BFLOAT16_MIN_WORK", 0)


# -- the rule ------------------------------------------------------------------


def test_auto_is_bfloat16_for_large_steps_on_a_cpu_with_bfloat16_units(bfloat16_units):
    assert resolve_precision("auto", CPU, BFLOAT16_MIN_WORK) == "bfloat16"
    assert resolve_precision("auto", CPU, BFLOAT16_MIN_WORK - 1) == "float32"


def test_auto_is_float32_without_bfloat16_units(no_bfloat16_units):
    assert not precision_module.cpu_has_bfloat16_units()
    assert resolve_precision("auto", CPU, 100 * BFLOAT16_MIN_WORK) == "float32"


def test_an_explicit_precision_is_used_as_given(no_bfloat16_units):
    # A CPU emulates bfloat16 where it has no units: far slower, but it runs.
    with pytest.warns(UserWarning, match="no bfloat16 units.*precision='auto'"):
        assert resolve_precision("bfloat16", CPU, 1) == "bfloat16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("float32", CPU, 10**12) == "float32"


def test_explicit_bfloat16_warns_only_without_bfloat16_units(bfloat16_units):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bfloat16", CPU, 1) == "bfloat16"


def test_bfloat16_on_a_gpu_without_it_is_refused(monkeypatch):
    monkeypatch.setattr(precision_module, "native_bfloat16", lambda device: False)
    with pytest.raises(ValueError, match="precision='float32'.*'auto'.*'bfloat16'"):
        resolve_precision("bfloat16", torch.device("cuda"), 10**12)


def test_an_unknown_precision_names_the_choices(blobs):
    with pytest.raises(InvalidParameterError, match="precision.*must be a str among"):
        clone(ESTIMATORS[0]).set_params(precision="float16").fit(blobs[0])


def test_auto_falls_back_to_float32_on_a_fit_without_bfloat16_units(
    no_bfloat16_units, any_step_gains, blobs
):
    model = clone(ESTIMATORS[0]).fit(blobs[0])
    assert model.precision_ == "float32"


def test_auto_picks_bfloat16_for_a_fit_whose_step_gains(bfloat16_units, any_step_gains,
                                                        blobs):
    model = clone(ESTIMATORS[0]).fit(blobs[0])
    assert model.precision_ == "bfloat16"


def test_auto_weighs_the_step_at_the_batch_bfloat16_would_train_on(bfloat16_units):
    # At the small-data batch (64) a step of this network is below the
    # threshold; at the batch bfloat16 trains on (256) it is above.
    model = DECClusterer(10, hidden_dims=(250, 250, 1000))
    settings = model._planned_settings(10000, 784)
    assert (settings["precision"], settings["batch_size"]) == ("bfloat16", 256)
    digits = DECClusterer(10)._planned_settings(1797, 64)
    assert (digits["precision"], digits["batch_size"]) == ("float32", 64)


def test_small_tables_stay_float32_by_default(blobs):
    assert DECClusterer(3, random_state=0, max_iter=20).fit(blobs[0]).precision_ == (
        "float32"
    )


# -- fits in bfloat16 ------------------------------------------------------------


@each_estimator
def test_a_bfloat16_fit_trains_and_returns_float32(estimator, blobs):
    X, y = blobs
    model = clone(estimator).set_params(precision="bfloat16").fit(X)
    assert model.precision_ == "bfloat16"
    assert not torch.is_autocast_enabled("cpu")
    outputs = [model.transform(X)]
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
        outputs.append(proba)
    if hasattr(model, "cluster_centers_"):
        outputs.append(model.cluster_centers_)
    for output in outputs:
        assert output.dtype == np.float32
        assert np.isfinite(output).all()
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    assert len(np.unique(model.labels_)) == 3


@pytest.mark.parametrize("units", [True, False], ids=["units", "no-units"])
def test_a_bfloat16_model_predicts_in_bfloat16_only_where_the_device_has_units(
    monkeypatch, blobs, units
):
    X, _ = blobs
    monkeypatch.setattr(precision_module, "cpu_has_bfloat16_units", lambda: True)
    model = DECClusterer(3, precision="bfloat16", **FAST_DEC).fit(X)
    # Unpickled on another CPU: with or without bfloat16 units.
    monkeypatch.setattr(precision_module, "cpu_has_bfloat16_units", lambda: units)
    used = []
    real_autocast = base_module.autocast
    monkeypatch.setattr(base_module, "autocast", lambda precision, device: (
        used.append(precision) or real_autocast(precision, device)))
    labels = model.predict(X)
    assert used == ["bfloat16" if units else "float32"]
    assert model.precision_ == "bfloat16"
    # The same float32 weights either way: the labels of well-separated blobs agree.
    np.testing.assert_array_equal(labels, model.labels_)


def test_bfloat16_pretraining_reaches_the_float32_reconstruction_error(digits):
    X, _ = digits
    params = dict(hidden_dims=(64, 64, 128), batch_size=256, pretrain_epochs=30,
                  random_state=0)
    losses = {
        precision: AutoencoderKMeans(10, precision=precision, **params)
        .fit(X)
        .history_["pretrain_loss"]
        for precision in ("float32", "bfloat16")
    }
    # The weights update: the loss falls step after step in bfloat16 too.
    assert losses["bfloat16"][-1] < 0.5 * losses["bfloat16"][0]
    assert losses["bfloat16"][-1] == pytest.approx(losses["float32"][-1], rel=0.05)


class _Float32Only(torch.nn.Module):
    """A user's autoencoder that refuses to run under autocast."""

    def __init__(self, input_shape, n_components):
        super().__init__()
        (n_features,) = input_shape
        self.encoder = _Refuses(torch.nn.Linear(n_features, n_components))
        self.decoder = torch.nn.Linear(n_components, n_features)


class _Refuses(torch.nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        if torch.is_autocast_enabled("cpu"):
            raise RuntimeError("this layer has no bfloat16 kernel")
        return self.layer(x)


def test_a_network_that_fails_under_bfloat16(bfloat16_units, any_step_gains, blobs):
    X, _ = blobs
    params = {**FAST_DEC, "hidden_dims": "auto", "autoencoder": _Float32Only}
    model = DECClusterer(3, **params).fit(X)
    assert model.precision_ == "float32"
    with pytest.raises(ValueError, match="no bfloat16 kernel.*precision='float32'"):
        DECClusterer(3, precision="bfloat16", **params).fit(X)


# -- the math stays float32 --------------------------------------------------------


def test_the_losses_are_float32_under_autocast():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(16, 4, generator=generator).bfloat16()
    centers = torch.randn(3, 4, generator=generator)
    logits = torch.randn(16, 3, generator=generator).bfloat16()
    with autocast("bfloat16", CPU):
        log_q = log_soft_assignment(z, centers, 1.0)
        p = target_distribution(log_q.exp())
        loss, _, _ = dac_pair_loss(normalized_outputs(logits), 0.9, 0.1)
        values = [log_q, p, kl_divergence(p, log_q), conditional_entropy(p), loss]
    assert all(v.dtype == torch.float32 for v in values)
    reference = log_soft_assignment(z.float(), centers, 1.0)
    torch.testing.assert_close(log_q, reference)


def test_full_precision_turns_autocast_off_inside():
    @full_precision
    def product(a, b):
        return a @ b

    a, b = torch.ones(4, 4), torch.ones(4, 4)
    with autocast("bfloat16", CPU):
        assert (a @ b).dtype == torch.bfloat16
        assert product(a, b).dtype == torch.float32
    assert product(a, b).dtype == torch.float32
