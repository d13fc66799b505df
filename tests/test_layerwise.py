"""Greedy layer-wise pretraining (the DEC paper's schedule) and its wiring."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs

from deepcluster_sk import AutoencoderKMeans, DECClusterer
from deepcluster_sk._torch._data import TrainingData
from deepcluster_sk._torch._init import init_weights
from deepcluster_sk._training._engine import run_phase
from deepcluster_sk._training._pretraining import (
    LayerPairStage,
    LayerwisePretraining,
    layer_pairs,
)
from deepcluster_sk._training._progress import ProgressPrinter
from deepcluster_sk._training._sampler import RowSampler
from deepcluster_sk.nn import ConvAutoencoder, MLPAutoencoder


def _data(n_samples=200, n_features=12, seed=0):
    X, _ = make_blobs(n_samples, n_features, centers=3, random_state=seed)
    X = (X - X.min()) / (X.max() - X.min())
    return TrainingData(X.astype(np.float32), torch.device("cpu"))


def _autoencoder(n_features=12, seed=0):
    generator = torch.Generator().manual_seed(seed)
    autoencoder = MLPAutoencoder(n_features, (16, 8), 3, generator=generator)
    init_weights(autoencoder, generator, std=0.1)
    return autoencoder


def _pretrain(autoencoder, data, seed=0, iterations=60, verbose=0, **kwargs):
    params = dict(learning_rate=0.05, lr_step=40, dropout=0.2)
    params.update(kwargs)
    schedule = LayerwisePretraining(iterations, 32, "scale the data", **params)
    generator = torch.Generator().manual_seed(seed)
    return schedule.run(autoencoder, data, generator, ProgressPrinter(verbose, "Test"))


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


def test_progress_counts_epochs_across_stages(capsys):
    losses = _pretrain(_autoencoder(), _data(), verbose=2)
    lines = capsys.readouterr().out.splitlines()
    n_epochs = len(losses)
    assert lines == [
        f"[Test] layer-wise pretraining epoch {i}/{n_epochs}: loss {loss:.5f}"
        for i, loss in enumerate(losses, start=1)
    ]


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
    data, autoencoder = _data(), _autoencoder()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    _pretrain(autoencoder, data, iterations=5)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_a_layer_pair_trains_only_its_own_weights(depth):
    data = _data()
    autoencoder = _autoencoder()
    enc, _, dec, _ = layer_pairs(autoencoder)[depth]
    own = {id(p) for p in (*enc.parameters(), *dec.parameters())}
    before = {id(p): p.detach().clone() for p in autoencoder.parameters()}
    generator = torch.Generator().manual_seed(0)
    stage = LayerPairStage(
        autoencoder,
        depth,
        data,
        RowSampler(data.n_samples, 32, generator, data.device),
        generator,
        0.2,
        iterations=20,
        learning_rate=0.05,
        lr_step=10,
        momentum=0.9,
        epoch_offset=0,
        advice="scale the data",
    )
    assert len(run_phase(stage)) == 3  # 20 steps in epochs of 7
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
    _pretrain(_autoencoder(), _data(), iterations=5, learning_rate=0.1, lr_step=2)
    expected_stage = [0.1, 0.1, 0.01, 0.01, 0.001]
    assert np.allclose(seen, expected_stage * 4)


def test_zero_iterations_leave_the_weights_alone():
    autoencoder = _autoencoder()
    before = _snapshot(autoencoder)
    assert _pretrain(autoencoder, _data(), iterations=0) == []
    assert all(torch.equal(a, b) for a, b in zip(before, autoencoder.parameters()))


def test_a_network_that_is_not_a_stack_of_linear_layers_is_refused():
    with pytest.raises(ValueError, match="encoder of ConvAutoencoder holds Unflatten, "
                       "Conv2d"):
        layer_pairs(ConvAutoencoder(64, channels=(4,), kernel_sizes=(3,)))
    X, _ = make_blobs(30, 64, random_state=0)
    model = DECClusterer(2, autoencoder=ConvAutoencoder, autoencoder__channels=(4,),
                         autoencoder__kernel_sizes=(3,), pretrain="layerwise")
    with pytest.raises(ValueError, match="pretrain='end_to_end'"):
        model.fit(X)
    assert not hasattr(model, "labels_")


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
