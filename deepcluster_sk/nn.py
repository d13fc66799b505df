"""Networks for the estimators, and the contract a network of your own meets.

The estimators build one of these by default; pass another class or an
instance as their ``autoencoder`` parameter
(:class:`~deepcluster_sk.DECClusterer`,
:class:`~deepcluster_sk.AutoencoderKMeans`) or ``network`` parameter
(:class:`~deepcluster_sk.IMSATClusterer`, :class:`~deepcluster_sk.DACClusterer`)
to train your own.

- :class:`MLPAutoencoder`, the fully connected autoencoder of DEC, the
  default of the autoencoder estimators;
- :class:`ConvAutoencoder`, a convolutional autoencoder for images (the
  shape of DCEC's);
- :class:`ClusterMLP`, the fully connected network of IMSAT and DAC, whose
  outputs are the logits of the cluster assignment.

An autoencoder has two submodules, ``encoder`` and ``decoder``:
``encoder(x)`` maps a batch of samples, shaped as the rows of ``X`` (or as
its samples, for arrays of images), to a ``(batch, n_components)``
embedding, and ``decoder(z)`` maps the embedding back to the batch's shape.
A network for IMSAT or DAC maps a batch to ``(batch, n_clusters)`` logits.
The user guide's page "Bring your own network" gives the whole contract.

Every module here takes ``generator``, a :class:`torch.Generator` its
weights are drawn from; the estimators pass one seeded from their
``random_state``.
"""

import math

import torch
from torch import nn
from torch.nn.utils import skip_init

from ._torch._init import init_weights

__all__ = ["ClusterMLP", "ConvAutoencoder", "MLPAutoencoder"]


def _sample_shape(input_shape):
    """``input_shape`` as a tuple: an int is the number of features."""
    if isinstance(input_shape, int):
        return (input_shape,)
    return tuple(int(size) for size in input_shape)


def _mlp(dims):
    """Linear layers ``dims[0] -> ... -> dims[-1]``, ReLU between them.

    The last layer is linear, as DEC's embedding and reconstruction layers.
    Weights are left for :func:`~deepcluster_sk._torch._init.init_weights`.
    """
    layers = []
    for i, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(skip_init(nn.Linear, n_in, n_out))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return layers


class _Autoencoder(nn.Module):
    """An ``encoder`` and a ``decoder``; ``forward`` returns both outputs."""

    def forward(self, x):
        """Embed ``x`` and reconstruct it.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, *input_shape)
            A batch of samples.

        Returns
        -------
        z : torch.Tensor of shape (batch, n_components)
            The embedding, ``encoder(x)``.
        reconstruction : torch.Tensor of the shape of ``x``
            ``decoder(z)``.
        """
        z = self.encoder(x)
        return z, self.decoder(z)


class MLPAutoencoder(_Autoencoder):
    """Fully connected autoencoder ``d-h1-...-hL-m`` with a mirrored decoder.

    DEC's network (Xie et al., 2016): ReLU after every layer but the
    embedding and the reconstruction layers, which are linear.

    Parameters
    ----------
    input_shape : int or tuple of int
        The shape of one sample: the number of features ``d``, or a shape
        such as ``(channels, height, width)``, which the encoder flattens
        and the decoder restores.
    hidden_dims : sequence of int, default=(500, 500, 2000)
        Widths of the encoder's hidden layers; the decoder mirrors them.
    n_components : int, default=10
        Embedding dimension ``m``.
    generator : torch.Generator or None, default=None
        CPU generator of the initial weights (uniform in ``+-1/sqrt(fan_in)``,
        PyTorch's default for linear layers); ``None`` uses the global RNG.

    Attributes
    ----------
    encoder, decoder : torch.nn.Sequential
        ``encoder(x)`` is the embedding of ``x``, ``decoder(z)`` its
        reconstruction.

    Examples
    --------
    >>> import torch
    >>> from deepcluster_sk.nn import MLPAutoencoder
    >>> autoencoder = MLPAutoencoder(64, hidden_dims=(32,), n_components=4)
    >>> z, reconstruction = autoencoder(torch.zeros(5, 64))
    >>> z.shape, reconstruction.shape
    (torch.Size([5, 4]), torch.Size([5, 64]))
    """

    def __init__(
        self, input_shape, hidden_dims=(500, 500, 2000), n_components=10, *,
        generator=None,
    ):
        super().__init__()
        shape = _sample_shape(input_shape)
        dims = [math.prod(shape), *hidden_dims, n_components]
        encoder, decoder = _mlp(dims), _mlp(dims[::-1])
        if len(shape) > 1:
            encoder.insert(0, nn.Flatten())
            decoder.append(nn.Unflatten(1, shape))
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)
        init_weights(self, generator)


def _image_shape(input_shape):
    """``(channels, height, width)`` from a shape or a number of pixels.

    A single number of features is read as one channel of a square image.
    """
    shape = _sample_shape(input_shape)
    if len(shape) == 3:
        return shape
    if len(shape) == 2:
        return (1, *shape)
    side = math.isqrt(shape[0]) if len(shape) == 1 else 0
    if len(shape) == 1 and side * side == shape[0]:
        return (1, side, side)
    raise ValueError(
        f"ConvAutoencoder cannot read samples of shape {shape} as images: give "
        "input_shape=(channels, height, width) (autoencoder__input_shape in an "
        "estimator), or pass X as an array of shape (n_samples, channels, "
        "height, width). Rows of a square number of pixels are read as one "
        "channel."
    )


class ConvAutoencoder(_Autoencoder):
    """Convolutional autoencoder for images: strided convolutions, a dense embedding.

    The shape of DCEC's autoencoder (Guo et al., 2017): convolutions of
    stride 2, each followed by ReLU, halve the image (rounding up) layer
    after layer; a linear layer maps the last feature map to the embedding;
    the decoder mirrors the encoder with a linear layer (and ReLU), then
    transposed convolutions of stride 2 back to the input's size, the last
    one linear. DCEC's MNIST network is the default: 32, 64 and 128
    channels with kernels of 5, 5 and 3, an embedding of 10.

    Parameters
    ----------
    input_shape : int or tuple of int
        The shape of one sample: ``(channels, height, width)`` (or
        ``(height, width)`` for one channel), or the number of pixels of a
        flattened square one-channel image (784 is read as 28 x 28). The
        samples may come as rows of pixels or as arrays of this shape;
        the reconstruction has the shape of the input.
    n_components : int, default=10
        Embedding dimension.
    channels : sequence of int, default=(32, 64, 128)
        Output channels of each convolution.
    kernel_sizes : sequence of int, default=(5, 5, 3)
        Kernel size of each convolution, odd numbers; the same length as
        ``channels``.
    generator : torch.Generator or None, default=None
        CPU generator of the initial weights (PyTorch's default
        distributions); ``None`` uses the global RNG.

    Attributes
    ----------
    encoder, decoder : torch.nn.Sequential
        ``encoder(x)`` is the embedding of ``x``, ``decoder(z)`` its
        reconstruction.
    image_shape : tuple of int
        ``(channels, height, width)`` of the images.

    References
    ----------
    .. [1] X. Guo, X. Liu, E. Zhu, J. Yin. "Deep Clustering with
       Convolutional Autoencoders". ICONIP 2017.

    Examples
    --------
    >>> import torch
    >>> from deepcluster_sk.nn import ConvAutoencoder
    >>> autoencoder = ConvAutoencoder(64, channels=(8, 16), kernel_sizes=(3, 3))
    >>> autoencoder.image_shape
    (1, 8, 8)
    >>> z, reconstruction = autoencoder(torch.zeros(5, 64))
    >>> z.shape, reconstruction.shape
    (torch.Size([5, 10]), torch.Size([5, 64]))
    """

    def __init__(
        self, input_shape, n_components=10, channels=(32, 64, 128),
        kernel_sizes=(5, 5, 3), *, generator=None,
    ):
        super().__init__()
        if len(channels) != len(kernel_sizes) or not channels:
            raise ValueError(
                f"channels={tuple(channels)} and kernel_sizes={tuple(kernel_sizes)} "
                "must be non-empty and of the same length."
            )
        if any(k % 2 == 0 for k in kernel_sizes):
            raise ValueError(
                f"kernel_sizes={tuple(kernel_sizes)} must be odd, so that each "
                "convolution halves the image exactly (rounding up)."
            )
        sample_shape = _sample_shape(input_shape)
        self.image_shape = _image_shape(sample_shape)
        n_channels, height, width = self.image_shape
        sizes = [(height, width)]
        for _ in channels:
            h, w = sizes[-1]
            sizes.append((-(-h // 2), -(-w // 2)))
        flat = channels[-1] * sizes[-1][0] * sizes[-1][1]

        encoder = [nn.Unflatten(1, self.image_shape)] if len(sample_shape) == 1 else []
        for c_in, c_out, k in zip((n_channels, *channels), channels, kernel_sizes):
            encoder += [nn.Conv2d(c_in, c_out, k, stride=2, padding=k // 2), nn.ReLU()]
        encoder += [nn.Flatten(), nn.Linear(flat, n_components)]

        decoder = [
            nn.Linear(n_components, flat),
            nn.ReLU(),
            nn.Unflatten(1, (channels[-1], *sizes[-1])),
        ]
        outputs = (n_channels, *channels[:-1])
        for i in reversed(range(len(channels))):
            target = sizes[i]
            padding = tuple(
                target[axis] - (2 * sizes[i + 1][axis] - 1) for axis in range(2)
            )
            decoder.append(
                nn.ConvTranspose2d(
                    channels[i], outputs[i], kernel_sizes[i], stride=2,
                    padding=kernel_sizes[i] // 2, output_padding=padding,
                )
            )
            if i > 0:
                decoder.append(nn.ReLU())
        if len(sample_shape) == 1:
            decoder.append(nn.Flatten())
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)
        init_weights(self, generator)


class ClusterMLP(nn.Module):
    """Fully connected network ``d-h1-...-hL-k`` returning cluster logits.

    The network of IMSAT and DAC: every hidden layer is Linear, then
    (optionally) batch normalisation, then ReLU; the output layer is linear
    (optionally followed by batch normalisation and ReLU, DAC's output
    block), and the softmax of its output is ``p(y|x)``.

    Parameters
    ----------
    input_shape : int or tuple of int
        The shape of one sample, or the number of features ``d``; samples
        of more than one dimension are flattened.
    n_clusters : int
        Output dimension ``k``.
    hidden_dims : sequence of int, default=(1200, 1200)
        Widths of the hidden layers (IMSAT's MNIST network by default).
    batch_norm : bool, default=True
        Normalise every hidden layer over the mini-batch.
    output_batch_norm : bool, default=False
        Follow the output layer by batch normalisation, as DAC's network
        does: every cluster's logit then varies across a batch, so the
        outputs do not start as the same distribution for every sample.
    output_relu : bool, default=False
        With ``output_batch_norm``, a ReLU after it, as in DAC's network.
    generator : torch.Generator or None, default=None
        CPU generator of the initial weights of the linear layers (uniform
        in ``+-1/sqrt(fan_in)``); ``None`` uses the global RNG.

    Examples
    --------
    >>> import torch
    >>> from deepcluster_sk.nn import ClusterMLP
    >>> network = ClusterMLP(64, 10, hidden_dims=(32,)).eval()
    >>> network(torch.zeros(5, 64)).shape
    torch.Size([5, 10])
    """

    def __init__(
        self, input_shape, n_clusters, hidden_dims=(1200, 1200), batch_norm=True,
        output_batch_norm=False, output_relu=False, *, generator=None,
    ):
        super().__init__()
        shape = _sample_shape(input_shape)
        dims = [math.prod(shape), *hidden_dims]
        self.flatten = nn.Flatten() if len(shape) > 1 else nn.Identity()
        self.hidden = nn.ModuleList(
            skip_init(nn.Linear, n_in, n_out) for n_in, n_out in zip(dims[:-1], dims[1:])
        )
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(n_out) if batch_norm else nn.Identity()
            for n_out in hidden_dims
        )
        self.output = skip_init(nn.Linear, dims[-1], n_clusters)
        self.output_norm = (
            nn.BatchNorm1d(n_clusters) if output_batch_norm else nn.Identity()
        )
        self.output_relu = output_batch_norm and output_relu
        init_weights(self, generator)

    def forward(self, x):
        """The logits of the cluster assignment of ``x``.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, *input_shape)
            A batch of samples.

        Returns
        -------
        logits : torch.Tensor of shape (batch, n_clusters)
            Their softmax is ``p(y|x)``.
        """
        h = self.flatten(x)
        for linear, norm in zip(self.hidden, self.norms):
            h = torch.relu(norm(linear(h)))
        logits = self.output_norm(self.output(h))
        if self.output_relu:
            logits = torch.relu(logits)
        return logits
