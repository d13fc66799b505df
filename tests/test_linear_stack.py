"""Training steps of plain linear/ReLU stacks run by hand, against autograd.

Pretraining, and DEC's and IDEC's self-training.
"""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from deepcluster_sk._torch._data import TrainingData
from deepcluster_sk._training._linear_stack import (
    LinearReLUStack,
    by_hand_possible,
    reconstruction_step_by_hand,
)
from deepcluster_sk._training._optim import make_adam
from deepcluster_sk._training._pretraining import EndToEndPhase, EndToEndPretraining
from deepcluster_sk._training._progress import ProgressPrinter
from deepcluster_sk.nn import ConvAutoencoder, MLPAutoencoder


class _Halves(nn.Module):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder


def _autoencoder(kind="mlp", seed=0):
    torch.manual_seed(seed)
    if kind == "mlp":
        return MLPAutoencoder(12, hidden_dims=(16, 24), n_components=3)
    if kind == "no_bias":
        return _Halves(
            nn.Sequential(nn.Linear(12, 16, bias=False), nn.ReLU(), nn.Linear(16, 3)),
            nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 12, bias=False),
                          nn.ReLU()),
        )
    raise ValueError(kind)


def _data(n=40, d=12, seed=1):
    rng = np.random.default_rng(seed)
    return TrainingData(rng.normal(size=(n, d)).astype(np.float32), torch.device("cpu"))


@pytest.mark.parametrize("kind", ["mlp", "no_bias"])
def test_a_step_by_hand_is_the_autograd_step(kind):
    by_hand = _autoencoder(kind)
    reference = copy.deepcopy(by_hand)
    x = _data().take(torch.arange(16))
    optimizer = make_adam(by_hand.parameters(), 1e-2, "cpu", gathered=True)
    step = reconstruction_step_by_hand(by_hand, optimizer)
    reference_optimizer = torch.optim.Adam(reference.parameters(), lr=1e-2)
    for _ in range(5):
        loss = step(x)
        assert not loss.requires_grad
        gradients = [g.clone() for g in optimizer.gradient_views().values()]
        reference_optimizer.zero_grad()
        reference_loss = nn.functional.mse_loss(
            reference.decoder(reference.encoder(x)), x
        )
        reference_loss.backward()
        reference_optimizer.step()
        torch.testing.assert_close(loss, reference_loss.detach())
        for gradient, weight in zip(gradients, reference.parameters()):
            torch.testing.assert_close(gradient.view_as(weight), weight.grad)
    for weight, reference_weight in zip(by_hand.parameters(), reference.parameters()):
        torch.testing.assert_close(weight, reference_weight)


def test_the_default_pretraining_steps_by_hand_and_learns_as_autograd():
    data = _data(n=64)
    losses = {}
    for by_hand in (True, False):
        autoencoder = _autoencoder()
        generator = torch.Generator().manual_seed(0)
        schedule = EndToEndPretraining(3, 16, 1e-2, advice="lower learning_rate")
        if not by_hand:
            # A plain nn.Sequential subclass keeps the network and takes autograd's path.
            autoencoder.encoder.__class__ = type("Encoder", (nn.Sequential,), {})
        phase = EndToEndPhase(autoencoder, data, data.sampler(16, generator), 3, 1e-2,
                              advice="")
        assert (phase._step_by_hand is not None) is by_hand
        generator = torch.Generator().manual_seed(0)
        losses[by_hand] = schedule.run(autoencoder, data, generator,
                                       ProgressPrinter(0, "test"))
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-5)
    assert losses[True][-1] < losses[True][0]


def _hooked():
    autoencoder = _autoencoder()
    autoencoder.encoder[0].register_forward_hook(lambda *args: None)
    return autoencoder


@pytest.mark.parametrize("case", ["tanh", "subclass", "hook", "conv", "bfloat16",
                                  "frozen", "images", "relu_relu", "tied", "extra"])
def test_anything_but_a_plain_stack_keeps_autograd(case):
    data = _data()
    autoencoder = _autoencoder()
    if case == "tanh":
        autoencoder.encoder[1] = nn.Tanh()
    elif case == "subclass":
        autoencoder.decoder.__class__ = type("Decoder", (nn.Sequential,), {})
    elif case == "hook":
        autoencoder = _hooked()
    elif case == "conv":
        autoencoder = ConvAutoencoder((1, 8, 8), n_components=3)
        data = TrainingData(np.zeros((4, 1, 8, 8), np.float32), torch.device("cpu"))
    elif case == "bfloat16":
        data.precision = "bfloat16"
    elif case == "frozen":
        autoencoder.encoder[0].weight.requires_grad_(False)
    elif case == "tied":
        # One layer in both halves: autograd sums its two gradients.
        shared = nn.Linear(3, 3)
        autoencoder = _Halves(nn.Sequential(nn.Linear(12, 3), shared),
                              nn.Sequential(shared, nn.Linear(3, 12)))
    elif case == "extra":
        # A weight outside both halves gets no gradient from the loss.
        autoencoder.scale = nn.Parameter(torch.ones(()))
    elif case == "images":
        data = TrainingData(np.zeros((4, 3, 4), np.float32), torch.device("cpu"))
    elif case == "relu_relu":
        autoencoder.encoder.insert(2, nn.ReLU())
        optimizer = make_adam(autoencoder.parameters(), 1e-3, "cpu", gathered=True)
        assert by_hand_possible(data, [autoencoder.encoder, autoencoder.decoder],
                                list(autoencoder.parameters()))
        assert reconstruction_step_by_hand(autoencoder, optimizer) is None
        return
    assert not by_hand_possible(data, [autoencoder.encoder, autoencoder.decoder],
                                list(autoencoder.parameters()))


def test_the_stack_backward_gives_the_input_gradient():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2))
    gradients = {id(p): torch.empty_like(p) for p in module.parameters()}
    stack = LinearReLUStack.of(module, gradients)
    x = torch.randn(6, 5, requires_grad=True)
    with torch.no_grad():
        out = stack.forward(x.detach())
    grad_output = torch.randn_like(out)
    grad_input = stack.backward(grad_output.clone())
    module(x).backward(grad_output)
    torch.testing.assert_close(grad_input, x.grad)
    for p in module.parameters():
        torch.testing.assert_close(gradients[id(p)], p.grad)


@pytest.mark.parametrize("reconstruction_weight", [0.0, 0.1])
def test_dec_and_idec_fit_by_hand_as_through_autograd(monkeypatch, reconstruction_weight):
    from deepcluster_sk import DECClusterer
    from deepcluster_sk._training import _linear_stack, _self_training

    steps_by_hand = []
    closed_form = _self_training.kl_loss_and_gradients
    monkeypatch.setattr(_self_training, "kl_loss_and_gradients",
                        lambda *args: (steps_by_hand.append(1), closed_form(*args))[1])
    X = np.random.default_rng(0).normal(size=(120, 6)).astype(np.float32)
    X[:60] += 3
    fitted = {}
    for by_hand in (True, False):
        monkeypatch.setattr(_linear_stack, "STEPS_BY_HAND", by_hand)
        fitted[by_hand] = DECClusterer(
            n_clusters=2, hidden_dims=(16, 16), pretrain_epochs=4, batch_size=16,
            update_interval=10, max_iter=40, tol=0.0, init="kmeans",
            reconstruction_weight=reconstruction_weight, random_state=0,
        ).fit(X)
        assert len(steps_by_hand) == (40 if by_hand else 0)
        steps_by_hand.clear()
    np.testing.assert_array_equal(fitted[True].labels_, fitted[False].labels_)
    np.testing.assert_allclose(fitted[True].cluster_centers_,
                               fitted[False].cluster_centers_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fitted[True].history_["pretrain_loss"],
                               fitted[False].history_["pretrain_loss"], rtol=1e-5)
