"""Seeded initialisation of the weights of linear and convolutional layers."""

import math

import torch
from torch import nn

#: The layers whose weights :func:`init_weights` draws.
WEIGHTED_LAYERS = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


def weighted_layers(module):
    """The linear and convolutional layers of ``module``, in order."""
    return [layer for layer in module.modules() if isinstance(layer, WEIGHTED_LAYERS)]


def init_weights(module, generator=None, std=None):
    """Draw the weights of every linear and convolutional layer of ``module``.

    Parameters
    ----------
    module : torch.nn.Module
    generator : torch.Generator or None, default=None
        A CPU generator; drawing from it instead of the global RNG keeps
        ``random_state`` the only source of randomness. ``None`` draws from
        the global RNG.
    std : float or None, default=None
        ``None`` draws weights and biases as PyTorch's default
        initialisation of these layers does: uniform in ``+-1/sqrt(fan_in)``,
        ``fan_in`` the inputs that feed one output (for a transposed
        convolution, PyTorch's convention: output channels times kernel
        size). A float draws weights from N(0, std^2) and sets biases to
        zero, the DEC paper's scheme.

    Notes
    -----
    Layers are drawn in the order of ``module.modules()``, weight then bias.
    """
    with torch.no_grad():
        for layer in weighted_layers(module):
            weight = layer.weight
            if std is None:
                fan_in = weight.shape[1] * math.prod(weight.shape[2:])
                bound = 1.0 / math.sqrt(fan_in)
                weight.uniform_(-bound, bound, generator=generator)
                if layer.bias is not None:
                    layer.bias.uniform_(-bound, bound, generator=generator)
            else:
                weight.normal_(0.0, std, generator=generator)
                if layer.bias is not None:
                    layer.bias.zero_()
