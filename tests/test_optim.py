"""The optimizers in their fastest measured form, per device."""

import pytest
import torch

from deepcluster_sk._training._optim import make_optimizer


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
