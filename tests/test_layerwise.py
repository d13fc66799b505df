"""Greedy layer-wise pretraining (the DEC paper's schedule) and its wiring."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs

from deepcluster_sk import AutoencoderKMeans, DECClusterer
from deepcluster_sk._data import TrainingData
from deepcluster_sk._layerwise import (
    _EpochReporter,
    auto_layerwise_iterations,
    layer_pairs,
    pretrain_layerwise,
    train_layer_pair,
)
from deepcluster_sk._nn import Autoencoder, reset_parameters
from deepcluster_sk._train import endless_index_batches


def _data(n_samples=200, n_features=12, seed=0):
    X, _ = make_blobs(n_samples, n_features, centers=3, random_state=seed)
    X = (X - X.min()) / (X.max() - X.min())
    return TrainingData(X.astype(np.float32), torch.device("cpu"))


def _autoencoder(n_features=12, seed=0):
    autoencoder = Autoencoder(n_features, (16, 8), 3)
    reset_parameters(autoencoder, torch.Generator().manual_seed(seed), std=0.1)
    return autoencoder


def _pretrain(autoencoder, data, seed=0, **kwargs):
    params = dict(
        layer_iterations=60,
        finetune_iterations=60,
        batch_size=32,
        learning_rate=0.05,
        lr_step=40,
        dropout=0.2,
        generator=torch.Generator().manual_seed(seed),
    )
    params.update(kwargs)
    return pretrain_layerwise(autoencoder, data, **params)


def _snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def test_layer_pairs_mirror_the_stack_with_linear_ends():
    pairs = layer_pairs(_autoencoder())
    assert len(pairs) == 3
    for depth, (enc, enc_act, dec, dec_act) in enumerate(pairs):
        assert enc.in_features == dec.out_features
        assert enc.out_features == dec.in_features
        # ReLU except the embedding layer (last encoder) and the
        # reconstruction layer (the decoder of the first pair).
        assert isinstance(enc_act, torch.nn.ReLU) == (depth < 2)
        assert isinstance(dec_act, torch.nn.ReLU) == (depth > 0)


def test_pretraining_lowers_the_finetuning_loss():
    data = _data()
    steps_per_epoch = -(-data.n_samples // 32)
    autoencoder = _autoencoder()
    x = data.take(torch.arange(data.n_samples))
    before = torch.nn.functional.mse_loss(autoencoder(x)[1], x).item()
    losses = _pretrain(autoencoder, data)
    after = torch.nn.functional.mse_loss(autoencoder(x)[1], x).item()
    assert after < 0.5 * before
    # 4 stages (3 pairs + fine-tuning) of 60 steps, reported per epoch.
    assert len(losses) == 4 * -(-60 // steps_per_epoch)
    assert all(np.isfinite(losses))
    # The first pair's denoising loss falls during its stage.
    per_stage = len(losses) // 4
    assert losses[per_stage - 1] < 0.5 * losses[0]
    assert not autoencoder.training


def test_on_epoch_counts_epochs_across_stages():
    calls = []
    data = _data()
    _pretrain(_autoencoder(), data, on_epoch=lambda *args: calls.append(args))
    n_epochs = calls[0][1]
    assert [c[0] for c in calls] == list(range(n_epochs))
    assert all(c[1] == n_epochs for c in calls)


def test_same_generator_same_weights_other_generator_other_weights():
    data = _data()
    first, second, other = _autoencoder(), _autoencoder(), _autoencoder()
    losses_1 = _pretrain(first, data, seed=3)
    losses_2 = _pretrain(second, data, seed=3)
    _pretrain(other, data, seed=4)
    assert losses_1 == losses_2
    for a, b, c in zip(first.parameters(), second.parameters(), other.parameters()):
        assert torch.equal(a, b)
    assert not all(
        torch.equal(a, c) for a, c in zip(first.parameters(), other.parameters())
    )


def test_global_rng_is_not_used():
    data = _data()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    _pretrain(_autoencoder(), data, layer_iterations=5, finetune_iterations=5)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_a_layer_pair_trains_only_its_own_weights(depth):
    data = _data()
    autoencoder = _autoencoder()
    enc, _, dec, _ = layer_pairs(autoencoder)[depth]
    own = {id(p) for p in (*enc.parameters(), *dec.parameters())}
    before = {id(p): p.detach().clone() for p in autoencoder.parameters()}
    generator = torch.Generator().manual_seed(0)
    train_layer_pair(
        autoencoder,
        depth,
        data,
        endless_index_batches(data.n_samples, 32, generator, data.device),
        iterations=20,
        learning_rate=0.05,
        lr_step=10,
        momentum=0.9,
        dropout=0.2,
        generator=generator,
        reporter=_EpochReporter(7, 3, None),
    )
    for param in autoencoder.parameters():
        changed = not torch.equal(param, before[id(param)])
        assert changed == (id(param) in own)


def test_learning_rate_is_divided_by_ten_every_lr_step(monkeypatch):
    seen = []
    original = torch.optim.SGD.step

    def recording_step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", recording_step)
    _pretrain(
        _autoencoder(),
        _data(),
        layer_iterations=5,
        finetune_iterations=5,
        learning_rate=0.1,
        lr_step=2,
    )
    expected_stage = [0.1, 0.1, 0.01, 0.01, 0.001]
    assert np.allclose(seen, expected_stage * 4)


def test_zero_iterations_leave_the_weights_alone():
    autoencoder = _autoencoder()
    before = _snapshot(autoencoder)
    assert _pretrain(autoencoder, _data(), layer_iterations=0, finetune_iterations=0) == []
    assert all(torch.equal(a, b) for a, b in zip(before, autoencoder.parameters()))


def test_auto_iterations_are_about_twenty_epochs_within_bounds():
    assert auto_layerwise_iterations(100, 256) == 1000
    assert auto_layerwise_iterations(70000, 256) == 20 * 274
    assert auto_layerwise_iterations(10**7, 256) == 50000


FAST = dict(hidden_dims=(16,), n_components=2, batch_size=32, n_init=2)


def test_dec_fits_with_layerwise_pretraining():
    X, y = make_blobs(150, 6, centers=3, random_state=0)
    X = (X - X.min()) / (X.max() - X.min())
    dec = DECClusterer(
        3,
        **FAST,
        pretrain="layerwise",
        pretrain_iterations=40,
        max_iter=20,
        update_interval=10,
        random_state=0,
    ).fit(X)
    # 2 pairs + fine-tuning, 40 steps each, 5 steps per epoch.
    assert len(dec.history_["pretrain_loss"]) == 3 * 8
    assert dec.labels_.shape == (150,)
    assert np.isfinite(dec.cluster_centers_).all()


def test_layerwise_starts_from_the_papers_gaussian_initialisation():
    X, _ = make_blobs(100, 50, centers=2, random_state=0)
    model = AutoencoderKMeans(
        2, **{**FAST, "hidden_dims": (200,)}, pretrain="layerwise",
        pretrain_iterations=0, random_state=0,
    ).fit(X)
    layer = model.autoencoder_.encoder[0]
    assert layer.weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert torch.count_nonzero(layer.bias) == 0


def test_layerwise_is_reproducible_through_the_estimator():
    X, _ = make_blobs(100, 5, centers=2, random_state=1)
    params = dict(**FAST, pretrain="layerwise", pretrain_iterations=20, random_state=0)
    a = AutoencoderKMeans(2, **params).fit(X)
    b = AutoencoderKMeans(2, **params).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert a.history_["pretrain_loss"] == b.history_["pretrain_loss"]


@pytest.mark.parametrize(
    "params",
    [{"pretrain": "greedy"}, {"pretrain_iterations": -1}, {"pretrain_iterations": "x"}],
)
def test_invalid_pretrain_parameters_are_rejected(params):
    X, _ = make_blobs(30, 3, random_state=0)
    with pytest.raises(ValueError, match="pretrain"):
        DECClusterer(2, **FAST, **params).fit(X)
