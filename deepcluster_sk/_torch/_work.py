"""The work of a forward pass, measured by running it.

The thread rule and the ``"auto"`` training budgets need the multiply-adds
of a network, whatever its layers: they are counted here by forward hooks on
its linear and convolutional layers during one real forward pass, so a
user's convolutional network is measured as exactly as the package's MLP.
"""

import math

from torch import nn

_CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def layer_multiply_adds(layer, inputs, output):
    """Multiply-adds of one call of a linear or convolutional ``layer``; else 0.

    Biases, activations and normalisations are left out: they cost one
    operation per output element, against ``fan_in`` for the layers counted.
    """
    if isinstance(layer, nn.Linear):
        return output.numel() * layer.in_features
    if isinstance(layer, _CONVOLUTIONS):
        per_output = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
        return output.numel() * per_output
    if isinstance(layer, _TRANSPOSED):
        per_input = layer.out_channels // layer.groups * math.prod(layer.kernel_size)
        return inputs[0].numel() * per_input
    return 0


class WorkCounter:
    """Count the multiply-adds of the layers of ``modules`` while active.

    A context manager: every forward call of a linear or convolutional layer
    inside the modules, made within the ``with`` block, adds to
    :attr:`multiply_adds`.

    Parameters
    ----------
    *modules : torch.nn.Module

    Attributes
    ----------
    multiply_adds : int
    """

    def __init__(self, *modules):
        self.modules = modules
        self.multiply_adds = 0
        self._handles = []

    def _count(self, layer, inputs, output):
        self.multiply_adds += layer_multiply_adds(layer, inputs, output)

    def __enter__(self):
        layers = {id(m): m for module in self.modules for m in module.modules()}
        self._handles = [
            layer.register_forward_hook(self._count) for layer in layers.values()
        ]
        return self

    def __exit__(self, *exc_info):
        for handle in self._handles:
            handle.remove()
        self._handles = []
