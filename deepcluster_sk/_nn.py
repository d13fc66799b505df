"""Torch modules: the fully connected autoencoder behind every estimator.

Nothing here knows about scikit-learn: modules take tensors, return tensors.
"""

import math

import torch
from torch import nn
from torch.nn.utils import skip_init


def mlp(dims):
    """A fully connected stack ``dims[0] -> ... -> dims[-1]``.

    ReLU follows every layer except the last, which is linear, as in DEC for
    both the embedding layer and the reconstruction layer. The weights are
    left uninitialised, so building a network never draws from the global
    RNG: call :func:`reset_parameters` with a seeded generator.
    """
    layers = []
    for i, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(skip_init(nn.Linear, n_in, n_out))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """Encoder ``d-h1-...-hL-m`` with a mirrored decoder.

    Parameters
    ----------
    n_features : int
        Input dimension ``d``.
    hidden_dims : sequence of int
        Widths of the encoder's hidden layers; the decoder mirrors them.
    n_components : int
        Embedding dimension ``m``.

    Notes
    -----
    The weights start uninitialised; see :func:`reset_parameters`.
    """

    def __init__(self, n_features, hidden_dims, n_components):
        super().__init__()
        dims = [n_features, *hidden_dims, n_components]
        self.encoder = mlp(dims)
        self.decoder = mlp(dims[::-1])

    def forward(self, x):
        """Return the embedding and the reconstruction of ``x``."""
        z = self.encoder(x)
        return z, self.decoder(z)


def linear_layers(module):
    """The ``nn.Linear`` layers of ``module`` in order."""
    return [layer for layer in module.modules() if isinstance(layer, nn.Linear)]


def reset_parameters(module, generator, std=None):
    """Re-initialise every linear layer of ``module`` from ``generator``.

    Parameters
    ----------
    module : nn.Module
    generator : torch.Generator
        A CPU generator; drawing from it instead of the global RNG keeps
        ``random_state`` the only source of randomness.
    std : float or None
        ``None`` draws weights and biases as PyTorch's default ``nn.Linear``
        initialisation does (uniform in +-1/sqrt(fan_in)). A float draws
        weights from N(0, std^2) and sets biases to zero, the DEC paper's
        scheme.
    """
    with torch.no_grad():
        for layer in linear_layers(module):
            if std is None:
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)
            else:
                layer.weight.normal_(0.0, std, generator=generator)
                layer.bias.zero_()
