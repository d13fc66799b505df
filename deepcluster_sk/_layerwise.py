"""The DEC paper's autoencoder pretraining: greedy layer-wise, then fine-tuning.

Xie et al. (2016) initialise DEC's autoencoder as a stack of denoising
autoencoders. Layer pair ``i`` (encoder layer ``i`` and its mirror in the
decoder) is trained alone to reconstruct the output of the frozen layers
below it, from a copy corrupted by dropout; then the stacked autoencoder is
fine-tuned end to end on the reconstruction error of the input. Every stage
runs SGD with momentum whose learning rate is divided by 10 every
``lr_step`` iterations. See ``ALGORITHMS.md`` section 1.

Like :mod:`._train`, this module knows nothing of scikit-learn.
"""

import torch
from torch import nn

from ._diagnostics import DivergenceMonitor
from ._train import endless_index_batches, steps_per_epoch

#: The paper's schedule: N(0, 0.01^2) weights, SGD divided by 10 after 40%
#: of each stage (20 000 of 50 000 steps). The estimators start SGD at 0.01,
#: not the paper's 0.1: on a 2 000-digit MNIST subset (128-128-256-10 net,
#: 1 000 steps per stage, batch 64) 0.1 collapsed the embedding to 3
#: distinct points (autoencoder + k-means ACC 0.11), 0.03 gave 0.53, 0.01
#: 0.56 and 0.55 (two seeds), 0.001 0.50.
LAYERWISE_INIT_STD = 0.01
LAYERWISE_LEARNING_RATE = 0.01
LAYERWISE_LR_STEP_FRACTION = 0.4

#: Gradients are clipped to this norm. At the paper's learning rate and loss
#: scale, fine-tuning the 784-500-500-2000-10 stack from N(0, 0.01^2)
#: diverged to NaN within a few hundred steps on a 3 000-digit MNIST subset
#: without clipping; the paper does not clip.
MAX_GRAD_NORM = 10.0

#: Epochs per stage that ``pretrain_iterations="auto"`` aims for, and the
#: bounds on the resulting step count.
_AUTO_EPOCHS = 20
_AUTO_RANGE = (1000, 50000)


def auto_layerwise_iterations(n_samples, batch_size):
    """Steps per stage for ``pretrain_iterations="auto"``.

    About 20 epochs, at least 1000 and at most 50 000 steps. The paper runs
    50 000 steps per stage on MNIST (about 180 epochs); 20 epochs keeps the
    greedy schedule affordable on a CPU.

    Parameters
    ----------
    n_samples, batch_size : int

    Returns
    -------
    iterations : int
    """
    low, high = _AUTO_RANGE
    epoch = steps_per_epoch(n_samples, batch_size)
    return int(min(max(_AUTO_EPOCHS * epoch, low), high))


def layer_pairs(autoencoder):
    """The trainable layer pairs of ``autoencoder``, from the input inwards.

    Parameters
    ----------
    autoencoder : Autoencoder
        A module with ``encoder`` and ``decoder``, each an ``nn.Sequential``
        of ``nn.Linear`` layers, some followed by an activation.

    Returns
    -------
    pairs : list of tuple
        ``(encoder_layer, encoder_activation, decoder_layer,
        decoder_activation)`` per depth; depth ``i`` pairs encoder layer
        ``i`` with decoder layer ``L - 1 - i``. An activation is
        ``nn.Identity()`` where the stacked network has none (the embedding
        and the reconstruction layers).
    """
    encoder = _linear_with_activation(autoencoder.encoder)
    decoder = _linear_with_activation(autoencoder.decoder)
    if len(encoder) != len(decoder):
        raise ValueError(
            f"The encoder has {len(encoder)} linear layers and the decoder "
            f"{len(decoder)}; layer-wise pretraining needs a mirrored decoder."
        )
    return [(*encoder[i], *decoder[-1 - i]) for i in range(len(encoder))]


def _linear_with_activation(sequential):
    children = list(sequential)
    pairs = []
    for i, layer in enumerate(children):
        if isinstance(layer, nn.Linear):
            following = children[i + 1] if i + 1 < len(children) else None
            is_activation = following is not None and not isinstance(
                following, nn.Linear
            )
            pairs.append((layer, following if is_activation else nn.Identity()))
    return pairs


def _dropout(x, rate, generator):
    """Inverted dropout with a mask drawn on the CPU from ``generator``."""
    if rate == 0:
        return x
    keep = torch.rand(x.shape, generator=generator).to(x.device) >= rate
    return x * keep / (1.0 - rate)


def _half_sum_squared_error(reconstruction, target):
    """Caffe's Euclidean loss: half the squared error summed over features.

    The paper's learning rate of 0.1 is tuned for this scale; the mean
    squared error per element would shrink the gradient by ``d / 2``.
    """
    diff = reconstruction - target
    return 0.5 * diff.pow(2).sum(dim=1).mean()


def _make_sgd_step(batch_loss, params, learning_rate, momentum, lr_step):
    """A step function: SGD on ``batch_loss(index)``, lr / 10 every ``lr_step``.

    Gradients are clipped to norm ``MAX_GRAD_NORM``; the step returns the
    loss as a tensor, so the loop synchronises only once per epoch.
    """
    optimizer = torch.optim.SGD(params, lr=learning_rate, momentum=momentum)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, lr_step, gamma=0.1)

    def step(index):
        loss = batch_loss(index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
        optimizer.step()
        scheduler.step()
        return loss.detach()

    return step


class _EpochReporter:
    """Average step losses over epochs counted across every stage.

    Every stage is watched by its own
    :class:`~deepcluster_sk._diagnostics.DivergenceMonitor`, whose error
    gives ``advice``.
    """

    def __init__(self, steps_per_epoch, n_epochs, on_epoch, advice="scale the data"):
        self.steps_per_epoch = steps_per_epoch
        self.n_epochs = n_epochs
        self.on_epoch = on_epoch
        self.advice = advice
        self.losses = []

    def run(self, step, batches, iterations, phase, params):
        """Take ``iterations`` steps, one per batch, reporting every epoch.

        ``phase`` names the stage in errors; ``params`` are the weights it
        trains.
        """
        monitor = DivergenceMonitor(phase, self.advice, params)
        for start in range(0, iterations, self.steps_per_epoch):
            n_steps = min(self.steps_per_epoch, iterations - start)
            total = None
            for _ in range(n_steps):
                loss = step(next(batches))
                monitor.record_start(loss)
                total = loss if total is None else total + loss
            self.losses.append(total.item() / n_steps)
            if self.on_epoch is not None:
                self.on_epoch(len(self.losses) - 1, self.n_epochs, self.losses[-1])
            monitor.check(len(self.losses), self.losses[-1])


def _epochs(iterations, steps_per_epoch):
    return -(-iterations // steps_per_epoch)


def train_layer_pair(
    autoencoder,
    depth,
    data,
    batches,
    *,
    iterations,
    learning_rate,
    lr_step,
    momentum,
    dropout,
    generator,
    reporter,
):
    """Train layer pair ``depth`` as a denoising autoencoder; others stay fixed.

    The pair reconstructs ``h``, the output of the (frozen) encoder layers
    below it on clean input, from ``h`` with dropout applied, and applies
    dropout again to its own hidden layer, as in the paper.

    Parameters
    ----------
    autoencoder : Autoencoder
    depth : int
        Index of the pair, 0 for the pair next to the input.
    data : TrainingData
    batches : iterator of torch.Tensor
        Endless mini-batch row indices on ``data.device``.
    iterations, lr_step : int
    learning_rate, momentum, dropout : float
    generator : torch.Generator
        CPU generator for the dropout masks.
    reporter : _EpochReporter
        Collects the loss (half the squared error summed over features).
    """
    pairs = layer_pairs(autoencoder)
    below = [module for pair in pairs[:depth] for module in pair[:2]]
    prefix = nn.Sequential(*below)
    enc_layer, enc_act, dec_layer, dec_act = pairs[depth]

    def denoising_loss(index):
        with torch.no_grad():
            target = prefix(data.take(index))
        hidden = enc_act(enc_layer(_dropout(target, dropout, generator)))
        reconstruction = dec_act(dec_layer(_dropout(hidden, dropout, generator)))
        return _half_sum_squared_error(reconstruction, target)

    params = [*enc_layer.parameters(), *dec_layer.parameters()]
    step = _make_sgd_step(denoising_loss, params, learning_rate, momentum, lr_step)
    phase = f"layer-wise pretraining of layer pair {depth + 1}"
    reporter.run(step, batches, iterations, phase, params)


def finetune(
    autoencoder,
    data,
    batches,
    *,
    iterations,
    learning_rate,
    lr_step,
    momentum,
    reporter,
):
    """Fine-tune the stacked autoencoder end to end, without dropout.

    Parameters
    ----------
    autoencoder : Autoencoder
    data : TrainingData
    batches : iterator of torch.Tensor
        Endless mini-batch row indices on ``data.device``.
    iterations, lr_step : int
    learning_rate, momentum : float
    reporter : _EpochReporter
        Collects the loss (half the squared error summed over features).
    """

    def reconstruction_loss(index):
        x = data.take(index)
        return _half_sum_squared_error(autoencoder(x)[1], x)

    params = list(autoencoder.parameters())
    step = _make_sgd_step(
        reconstruction_loss, params, learning_rate, momentum, lr_step
    )
    reporter.run(step, batches, iterations, "layer-wise fine-tuning", params)


def pretrain_layerwise(
    autoencoder,
    data,
    *,
    layer_iterations,
    finetune_iterations,
    batch_size,
    learning_rate=0.1,
    lr_step,
    dropout=0.2,
    momentum=0.9,
    generator,
    on_epoch=None,
    advice="scale the data",
):
    """Greedy layer-wise denoising pretraining, then end-to-end fine-tuning.

    The DEC paper's schedule (Xie et al., 2016): each layer pair is a
    denoising autoencoder trained for ``layer_iterations`` mini-batch steps
    on the frozen output of the layers below it, with dropout on its input
    and on its hidden layer; then the whole stack is fine-tuned for
    ``finetune_iterations`` steps on the reconstruction of the input. Each
    stage runs SGD with momentum from ``learning_rate``, divided by 10 every
    ``lr_step`` steps. The loss is half the squared error summed over
    features, averaged over the batch (Caffe's Euclidean loss, the scale the
    paper's learning rate is tuned for). Unlike the paper, gradients are
    clipped to norm ``MAX_GRAD_NORM`` (10), which keeps fine-tuning from
    diverging at this learning rate. The paper runs 50 000 steps per stage
    with ``lr_step=20000``; its weights start from N(0, 0.01^2), see
    :func:`~deepcluster_sk._nn.reset_parameters` with ``std=0.01``.

    Parameters
    ----------
    autoencoder : Autoencoder
        Module on ``data.device``; trained in place. Activations are taken
        from it: ReLU everywhere but the embedding and reconstruction
        layers.
    data : TrainingData
        The training rows.
    layer_iterations : int
        Mini-batch steps per layer pair (paper: 50 000).
    finetune_iterations : int
        Mini-batch steps of end-to-end fine-tuning (paper: 50 000).
    batch_size : int
        Rows per mini-batch (paper: 256).
    learning_rate : float, default=0.1
        Initial SGD learning rate of every stage (paper: 0.1).
    lr_step : int
        Steps between two divisions of the learning rate by 10, counted per
        stage (paper: 20 000).
    dropout : float, default=0.2
        Fraction of the inputs and of the hidden units of a layer pair
        zeroed at each step (paper: 0.2). Not used in fine-tuning.
    momentum : float, default=0.9
        SGD momentum, as in the paper's Caffe solver.
    generator : torch.Generator
        CPU generator for the batch order and the dropout masks; the global
        RNG is never used.
    on_epoch : callable or None, default=None
        Called as ``on_epoch(epoch, n_epochs, mean_loss)`` after every
        ``ceil(n_samples / batch_size)`` steps of a stage (the last chunk of
        a stage may be shorter). Epochs are counted across all stages.
    advice : str, default="scale the data"
        What the error says to change if a stage diverges.

    Returns
    -------
    losses : list of float
        Mean loss of each reported epoch, stage after stage: first the
        layer pairs from the input inwards (each on its own input's scale),
        then fine-tuning (on the input's scale).

    Raises
    ------
    TrainingDivergedError
        If the loss or the weights of a stage run away, checked at every
        reported epoch; each stage is compared with its own start.
    """
    pairs = layer_pairs(autoencoder)
    per_epoch = steps_per_epoch(data.n_samples, batch_size)
    n_epochs = len(pairs) * _epochs(layer_iterations, per_epoch) + _epochs(
        finetune_iterations, per_epoch
    )
    reporter = _EpochReporter(per_epoch, n_epochs, on_epoch, advice)
    batches = endless_index_batches(data.n_samples, batch_size, generator, data.device)
    autoencoder.train()
    for depth in range(len(pairs)):
        train_layer_pair(
            autoencoder,
            depth,
            data,
            batches,
            iterations=layer_iterations,
            learning_rate=learning_rate,
            lr_step=lr_step,
            momentum=momentum,
            dropout=dropout,
            generator=generator,
            reporter=reporter,
        )
    finetune(
        autoencoder,
        data,
        batches,
        iterations=finetune_iterations,
        learning_rate=learning_rate,
        lr_step=lr_step,
        momentum=momentum,
        reporter=reporter,
    )
    autoencoder.eval()
    return reporter.losses
