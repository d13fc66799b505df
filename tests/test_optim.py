"""The optimizers in their fastest measured form, per device."""

import pytest
import torch

from deepcluster_sk._training._flat import FLAT_MAX_PARAMETERS, FlatOptimizer
from deepcluster_sk._training._optim import (
    CosineSchedule,
    make_optimizer,
    per_tensor_optimizer,
    release_weights,
)


def _weights():
    return [torch.nn.Parameter(torch.randn(4, 3))]


def _supports_fused_sgd_on_cpu():
    try:
        torch.optim.SGD(_weights(), lr=0.1, momentum=0.9, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


@pytest.mark.skipif(not _supports_fused_sgd_on_cpu(), reason="no fused SGD on CPU")
def test_sgd_on_a_cpu_is_fused_and_steps_as_the_plain_one():
    torch.manual_seed(0)
    plain_weights, fused_weights = _weights(), None
    fused_weights = [torch.nn.Parameter(plain_weights[0].detach().clone())]
    plain = torch.optim.SGD(plain_weights, lr=0.1, momentum=0.9)
    fused = make_optimizer("sgd", fused_weights, 0.1, "cpu", momentum=0.9)
    assert fused.defaults["fused"]
    for _ in range(3):
        for weights, optimizer in ((plain_weights, plain), (fused_weights, fused)):
            optimizer.zero_grad()
            (weights[0] ** 2).sum().backward()
            optimizer.step()
    torch.testing.assert_close(fused_weights[0], plain_weights[0])


@pytest.mark.parametrize("device", [None, "cuda"])
def test_sgd_keeps_its_plain_form_off_a_named_cpu(device):
    # The optimizer is built without touching the device, so "cuda" works here.
    optimizer = make_optimizer("sgd", _weights(), 0.1, device, momentum=0.9)
    assert not optimizer.defaults.get("fused")
    assert optimizer.defaults["momentum"] == 0.9


def test_adam_on_a_cpu_is_fused():
    optimizer = make_optimizer("adam", _weights(), 1e-3, "cpu")
    assert optimizer.defaults["fused"]


# -- one flat update for small networks (FlatOptimizer) -------------------------


def _network(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
    )


def _train(network, optimizer, n_steps, seed=1, schedule=None):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(n_steps):
        x = torch.randn(16, 5, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        (network(x) ** 2).mean().backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()


OPTIONS = {"adam": {}, "sgd": {"momentum": 0.9}, "rmsprop": {}}


@pytest.mark.parametrize("algorithm", sorted(OPTIONS))
def test_a_small_network_steps_flat_as_per_tensor(algorithm):
    flat_net, plain_net = _network(), _network()
    flat = FlatOptimizer(per_tensor_optimizer(algorithm, 1e-2, "cpu", **OPTIONS[algorithm]),
                         list(flat_net.parameters()))
    plain = per_tensor_optimizer(algorithm, 1e-2, "cpu", **OPTIONS[algorithm])(
        list(plain_net.parameters()))
    assert isinstance(flat, FlatOptimizer) and flat.flat
    _train(flat_net, flat, 5)
    _train(plain_net, plain, 5)
    _assert_same_weights(flat_net, plain_net)
    initial = _network().state_dict()
    for name, p in flat_net.named_parameters():
        assert not torch.equal(p, initial[name])


def _assert_same_weights(network, other):
    for a, b in zip(network.parameters(), other.parameters()):
        torch.testing.assert_close(a, b)


def test_the_weights_are_views_of_one_buffer_until_released():
    network = _network()
    optimizer = make_optimizer("adam", network.parameters(), 1e-2, "cpu")
    pointers = {p.untyped_storage().data_ptr() for p in network.parameters()}
    assert len(pointers) == 1
    _train(network, optimizer, 2)
    values = [p.detach().clone() for p in network.parameters()]
    release_weights(optimizer)
    for p, value in zip(network.parameters(), values):
        assert p.untyped_storage().nbytes() == p.numel() * p.element_size()
        torch.testing.assert_close(p.detach(), value)
    # The next step binds them again and trains on as if never released.
    twin = _network()
    twin_optimizer = make_optimizer("adam", twin.parameters(), 1e-2, "cpu")
    _train(twin, twin_optimizer, 2)
    _train(network, optimizer, 3, seed=2)
    _train(twin, twin_optimizer, 3, seed=2)
    _assert_same_weights(network, twin)


def test_a_weight_without_gradient_hands_over_to_per_tensor_steps():
    flat_net, plain_net = _network(), _network()
    flat = make_optimizer("adam", flat_net.parameters(), 1e-2, "cpu")
    plain = torch.optim.Adam(plain_net.parameters(), lr=1e-2)
    _train(flat_net, flat, 2)
    _train(plain_net, plain, 2)
    # The last layer takes no part: PyTorch skips weights without gradients.
    for network in (flat_net, plain_net):
        network[2].requires_grad_(False)
    frozen = flat_net[2].weight.detach().clone()
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(16, 5, generator=generator)
    for network, optimizer in ((flat_net, flat), (plain_net, plain)):
        optimizer.zero_grad()
        network[0](x).pow(2).mean().backward()
        optimizer.step()
    assert isinstance(flat, FlatOptimizer) and not flat.flat
    torch.testing.assert_close(flat_net[2].weight.detach(), frozen)
    for network in (flat_net, plain_net):
        network[2].requires_grad_(True)
    _train(flat_net, flat, 2, seed=4)
    _train(plain_net, plain, 2, seed=4)
    _assert_same_weights(flat_net, plain_net)


def test_a_schedule_sets_the_rate_of_the_flat_update():
    flat_net, plain_net = _network(), _network()
    flat = make_optimizer("adam", flat_net.parameters(), 1e-2, "cpu")
    plain = per_tensor_optimizer("adam", 1e-2, "cpu")(list(plain_net.parameters()))
    _train(flat_net, flat, 4, schedule=CosineSchedule(flat, 4, 0.05))
    _train(plain_net, plain, 4, schedule=CosineSchedule(plain, 4, 0.05))
    assert flat.param_groups[0]["lr"] == pytest.approx(0.05 * 1e-2)
    _assert_same_weights(flat_net, plain_net)


def test_adam_and_rmsprop_on_a_cpu_update_small_networks_flat_and_sgd_does_not():
    for algorithm, flat in (("adam", True), ("rmsprop", True), ("sgd", False)):
        optimizer = make_optimizer(algorithm, _network().parameters(), 1e-2, "cpu")
        assert isinstance(optimizer, FlatOptimizer) is flat


@pytest.mark.parametrize("case", ["replicated", "large", "float64", "cuda", "unnamed"])
def test_the_flat_update_only_for_small_float32_weights_of_one_cpu_process(case):
    weights = _weights()
    kwargs = {"device": "cpu"}
    if case == "replicated":
        kwargs["replicated"] = True
    elif case == "large":
        weights = [torch.nn.Parameter(torch.zeros(FLAT_MAX_PARAMETERS + 1))]
    elif case == "float64":
        weights = [torch.nn.Parameter(torch.zeros(4, 3, dtype=torch.float64))]
    else:
        # The optimizer is built without touching the device.
        kwargs["device"] = "cuda" if case == "cuda" else None
    optimizer = make_optimizer("rmsprop", weights, 0.1, **kwargs)
    assert isinstance(optimizer, torch.optim.RMSprop)


def test_a_fitted_network_holds_no_views_into_the_flat_buffer():
    from sklearn.datasets import make_blobs

    from deepcluster_sk import DECClusterer

    X, _ = make_blobs(120, n_features=4, centers=3, random_state=0)
    model = DECClusterer(3, hidden_dims=(8,), pretrain_epochs=2, max_iter=20,
                         random_state=0).fit(X)
    for p in model.autoencoder_.parameters():
        assert p.untyped_storage().nbytes() == p.numel() * p.element_size()


@pytest.mark.parametrize("gathered", [True, False])
@pytest.mark.parametrize("algorithm", ["adam", "sgd", "rmsprop"])
def test_flat_updates_after_the_first_skip_torch_optim_and_match_it(algorithm, gathered):
    # The first step goes through torch.optim, the others update the flat
    # tensor directly; the rate changes as a schedule changes it. Gradients
    # are written into the flat buffer (gathered) or copied from .grad.
    options = {"sgd": {"momentum": 0.9, "weight_decay": 1e-3}, "adam": {},
               "rmsprop": {}}[algorithm]
    weights = [p for p in _network(seed=3).parameters()]
    reference = [torch.nn.Parameter(w.detach().clone()) for w in weights]
    flat = make_optimizer(algorithm, weights, 1e-2, "cpu", gathered=gathered, **options)
    if algorithm == "sgd" and not gathered:
        # Gathered by a copy, fused SGD gained nothing flat (flat_optimizer.md).
        assert not isinstance(flat, FlatOptimizer)
        return
    assert isinstance(flat, FlatOptimizer)
    cls = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD,
           "rmsprop": torch.optim.RMSprop}[algorithm]
    plain = cls(reference, lr=1e-2, **options)
    gradients = flat.gradient_views()
    wrapper_calls = []
    inner_step = flat._inner.step
    flat._inner.step = lambda: (wrapper_calls.append(1), inner_step())[1]
    for step in range(4):
        for optimizer in (flat, plain):
            optimizer.param_groups[0]["lr"] = 1e-2 / (step + 1)
        for w, r in zip(weights, reference):
            gradient = torch.sin(r.detach() * (step + 1))
            if gathered:
                gradients[id(w)].copy_(gradient)
            else:
                w.grad = gradient.clone()
            r.grad = gradient.clone()
        if gathered:
            flat.step_gathered()
        else:
            flat.step()
        plain.step()
    for w, r in zip(weights, reference):
        torch.testing.assert_close(w, r)
    if algorithm == "rmsprop" or flat.defaults.get("fused"):
        assert len(wrapper_calls) == 1
