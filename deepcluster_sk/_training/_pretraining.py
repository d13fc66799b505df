"""Autoencoder pretraining: end to end, or the DEC paper's layer-wise schedule.

:class:`EndToEndPretraining` trains the whole autoencoder with Adam on the
mean squared reconstruction error. :class:`LayerwisePretraining` is the
schedule of Xie et al. (2016): layer pair ``i`` (encoder layer ``i`` and its
mirror in the decoder) is trained alone as a denoising autoencoder on the
output of the frozen layers below it, then the stack is fine-tuned end to
end; every stage runs SGD with momentum whose learning rate is divided by 10
every ``lr_step`` iterations. Both run their phases on
:func:`~._engine.run_phase`.
"""

import torch
from torch import nn

from .._torch._init import init_weights
from .._torch._precision import full_precision
from ._engine import Phase, PeriodEnd, run_phase
from ._linear_stack import by_hand_possible, reconstruction_step_by_hand
from ._optim import CosineSchedule, make_adam

#: The paper's schedule: N(0, 0.01^2) weights, SGD divided by 10 after 40%
#: of each stage (20 000 of 50 000 steps). The estimators start SGD at 0.01,
#: not the paper's 0.1: on a 2 000-digit MNIST subset (128-128-256-10 net,
#: 1 000 steps per stage, batch 64) 0.1 collapsed the embedding to 3
#: distinct points (autoencoder + k-means ACC 0.11), 0.03 gave 0.53, 0.01
#: 0.56 and 0.55 (two seeds), 0.001 0.50.
LAYERWISE_INIT_STD = 0.01
LAYERWISE_LEARNING_RATE = 0.01
LAYERWISE_LR_STEP_FRACTION = 0.4
LAYERWISE_DROPOUT = 0.2

#: Gradients are clipped to this norm. At the paper's learning rate and loss
#: scale, fine-tuning the 784-500-500-2000-10 stack from N(0, 0.01^2)
#: diverged to NaN within a few hundred steps on a 3 000-digit MNIST subset
#: without clipping; the paper does not clip.
MAX_GRAD_NORM = 10.0

#: Cosine decay of end-to-end pretraining down to this fraction of the
#: initial learning rate.
FINAL_LR_FRACTION = 0.05


#: The mean squared error, in float32 under autocast.
reconstruction_error = full_precision(nn.functional.mse_loss)


def reconstruct(autoencoder, x):
    """The reconstruction of ``x``: ``decoder(encoder(x))``."""
    return autoencoder.decoder(autoencoder.encoder(x))


# -- end to end ----------------------------------------------------------------


class EndToEndPhase(Phase):
    """Adam on the mean squared reconstruction error, cosine learning rate.

    A plain stack of linear layers and ReLUs trains without autograd on a
    CPU in float32 (:func:`~._linear_stack.reconstruction_step_by_hand`):
    the same step, 1.2x (the paper's network) to 2.6x (a table's) as fast.
    """

    name = "pretraining"

    def __init__(self, autoencoder, data, sampler, n_epochs, learning_rate, advice):
        super().__init__(data, sampler, advice)
        self.autoencoder = autoencoder
        self.n_epochs = n_epochs
        by_hand = by_hand_possible(data, [autoencoder.encoder, autoencoder.decoder],
                                   list(autoencoder.parameters()))
        self.optimizer = make_adam(autoencoder.parameters(), learning_rate, data.device,
                                   replicated=data.replicas.enabled, gathered=by_hand)
        self._step_by_hand = (
            reconstruction_step_by_hand(autoencoder, self.optimizer) if by_hand else None
        )
        self.lr_schedule = CosineSchedule(
            self.optimizer, n_epochs * sampler.steps_per_epoch, FINAL_LR_FRACTION
        )

    def parameters(self):
        return list(self.autoencoder.parameters())

    def buffers(self):
        return list(self.autoencoder.buffers())

    def loss(self, x):
        return reconstruction_error(reconstruct(self.autoencoder, x), x)

    def step(self, x):
        if self._step_by_hand is not None:
            return self._step_by_hand(x)
        return super().step(x)

    def periods(self):
        return [self.sampler.steps_per_epoch] * self.n_epochs

    def begin(self):
        self.autoencoder.train()

    def end_period(self, period, mean_loss):
        return PeriodEnd(period + 1, mean_loss, {"loss": f"{mean_loss:.5f}"})

    def finish(self):
        self.autoencoder.eval()


class EndToEndPretraining:
    """Train the whole autoencoder on its reconstruction error.

    Adam with a cosine learning-rate decay over all steps to 5% of its
    start, mini-batches of every row once per epoch.

    Parameters
    ----------
    n_epochs, batch_size : int
    learning_rate : float
        Adam's initial learning rate.
    advice : str
        What the divergence error tells the user to change.
    """

    #: The autoencoder keeps the initial weights it was built with.
    draws_initial_weights = False

    def __init__(self, n_epochs, batch_size, learning_rate, advice):
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.advice = advice

    @classmethod
    def from_settings(cls, settings, learning_rate, advice):
        """The schedule of an estimator's resolved ``settings``."""
        return cls(settings["pretrain_epochs"], settings["batch_size"], learning_rate,
                   advice)

    @staticmethod
    def prepare(autoencoder, generator):
        """Nothing to check or draw: any autoencoder trains end to end."""

    def run(self, autoencoder, data, generator, progress):
        """Train ``autoencoder`` in place; return the mean loss of each epoch.

        Parameters
        ----------
        autoencoder : torch.nn.Module
            With ``encoder`` and ``decoder``, on ``data.device``.
        data : TrainingData
        generator : torch.Generator
            CPU generator of the batch order.
        progress : ProgressPrinter

        Returns
        -------
        losses : list of float
        """
        sampler = data.sampler(self.batch_size, generator)
        phase = EndToEndPhase(
            autoencoder, data, sampler, self.n_epochs, self.learning_rate, self.advice
        )
        with progress.track("pretraining", self.n_epochs, "epoch") as track:
            return run_phase(phase, track)


# -- layer-wise ----------------------------------------------------------------


def layer_pairs(autoencoder):
    """The trainable layer pairs of a stacked autoencoder, from the input inwards.

    Parameters
    ----------
    autoencoder : torch.nn.Module
        With ``encoder`` and ``decoder``, each an ``nn.Sequential`` of
        ``nn.Linear`` layers, some followed by a parameter-free activation.

    Returns
    -------
    pairs : list of tuple
        ``(encoder_layer, encoder_activation, decoder_layer,
        decoder_activation)`` per depth; depth ``i`` pairs encoder layer
        ``i`` with decoder layer ``L - 1 - i``. An activation is
        ``nn.Identity()`` where the stacked network has none (the embedding
        and the reconstruction layers).

    Raises
    ------
    ValueError
        If the autoencoder is not such a stack.
    """
    name = type(autoencoder).__name__
    encoder = _linear_with_activation(autoencoder.encoder, name, "encoder")
    decoder = _linear_with_activation(autoencoder.decoder, name, "decoder")
    if len(encoder) != len(decoder):
        raise ValueError(
            f"pretrain='layerwise' needs a mirrored decoder: the encoder of {name} "
            f"has {len(encoder)} linear layers and its decoder {len(decoder)}."
        )
    return [(*encoder[i], *decoder[-1 - i]) for i in range(len(encoder))]


def _linear_with_activation(sequential, name, part):
    children = list(sequential) if isinstance(sequential, nn.Sequential) else None
    unsupported = (
        [type(sequential).__name__]
        if children is None
        else [
            type(child).__name__
            for child in children
            if not isinstance(child, nn.Linear)
            and (
                isinstance(child, (nn.Flatten, nn.Unflatten))
                or any(True for _ in child.parameters())
            )
        ]
    )
    if unsupported or not children:
        raise ValueError(
            "pretrain='layerwise' trains the layer pairs of a stacked autoencoder, "
            f"whose encoder and decoder are nn.Sequential stacks of nn.Linear "
            f"layers and activations (samples as rows); the {part} of {name} "
            f"holds {', '.join(unsupported) or 'no layer'}. Use "
            "pretrain='end_to_end'."
        )
    pairs = []
    for i, layer in enumerate(children):
        if isinstance(layer, nn.Linear):
            following = children[i + 1] if i + 1 < len(children) else None
            is_activation = following is not None and not isinstance(
                following, nn.Linear
            )
            pairs.append((layer, following if is_activation else nn.Identity()))
    return pairs


@full_precision
def _half_sum_squared_error(reconstruction, target):
    """Caffe's Euclidean loss: half the squared error summed over features.

    The paper's learning rate of 0.1 is tuned for this scale; the mean
    squared error per element would shrink the gradient by ``d / 2``.
    """
    diff = reconstruction - target
    return 0.5 * diff.pow(2).sum(dim=1).mean()


class _LayerwiseStage(Phase):
    """A stage of the layer-wise schedule: SGD with momentum and step decay.

    Epochs are counted across all stages, so that the progress output and
    the errors number them as one schedule. Not replayed as a CUDA graph:
    the step decay changes a float learning rate, which a graph would bake
    in at capture.
    """

    capture = False

    def __init__(self, data, sampler, params, *, iterations, learning_rate,
                 lr_step, momentum, epoch_offset, advice):
        super().__init__(data, sampler, advice)
        self.params = params
        self.iterations = iterations
        self.epoch_offset = epoch_offset
        self.optimizer = torch.optim.SGD(params, lr=learning_rate, momentum=momentum)
        self.lr_schedule = torch.optim.lr_scheduler.StepLR(
            self.optimizer, lr_step, gamma=0.1
        )

    def parameters(self):
        return self.params

    def periods(self):
        per_epoch = self.sampler.steps_per_epoch
        return [
            min(per_epoch, self.iterations - start)
            for start in range(0, self.iterations, per_epoch)
        ]

    def before_update(self):
        nn.utils.clip_grad_norm_(self.params, MAX_GRAD_NORM)

    def end_period(self, period, mean_loss):
        return PeriodEnd(
            self.epoch_offset + period + 1, mean_loss, {"loss": f"{mean_loss:.5f}"}
        )


class LayerPairStage(_LayerwiseStage):
    """Train layer pair ``depth`` as a denoising autoencoder; others stay fixed.

    The pair reconstructs ``h``, the output of the (frozen) encoder layers
    below it on clean input, from ``h`` with dropout applied, and applies
    dropout again to its own hidden layer, as in the paper. The dropout
    masks are drawn from ``generator`` for each batch.
    """

    def __init__(self, autoencoder, depth, data, sampler, generator, dropout, **kwargs):
        pairs = layer_pairs(autoencoder)
        self.prefix = nn.Sequential(*[m for pair in pairs[:depth] for m in pair[:2]])
        self.enc_layer, self.enc_act, self.dec_layer, self.dec_act = pairs[depth]
        self.name = f"layer-wise pretraining of layer pair {depth + 1}"
        self.generator = generator
        self.dropout = dropout
        params = [*self.enc_layer.parameters(), *self.dec_layer.parameters()]
        super().__init__(data, sampler, params, **kwargs)

    def batch_inputs(self, index):
        x = self.data.take(index)
        if self.dropout == 0:
            return (x,)
        widths = (self.enc_layer.in_features, self.enc_layer.out_features)
        masks = tuple(
            torch.rand((index.numel(), width), generator=self.generator).to(x.device)
            >= self.dropout
            for width in widths
        )
        return (x, *masks)

    def _drop(self, h, keep):
        return h if keep is None else h * keep / (1.0 - self.dropout)

    def loss(self, x, keep_input=None, keep_hidden=None):
        with torch.no_grad():
            target = self.prefix(x)
        hidden = self.enc_act(self.enc_layer(self._drop(target, keep_input)))
        reconstruction = self.dec_act(self.dec_layer(self._drop(hidden, keep_hidden)))
        return _half_sum_squared_error(reconstruction, target)


class FinetuneStage(_LayerwiseStage):
    """Fine-tune the stacked autoencoder end to end, without dropout."""

    name = "layer-wise fine-tuning"

    def __init__(self, autoencoder, data, sampler, **kwargs):
        self.autoencoder = autoencoder
        super().__init__(data, sampler, list(autoencoder.parameters()), **kwargs)

    def loss(self, x):
        return _half_sum_squared_error(reconstruct(self.autoencoder, x), x)


class LayerwisePretraining:
    """Greedy layer-wise denoising pretraining, then end-to-end fine-tuning.

    The DEC paper's schedule (Xie et al., 2016): weights start from
    N(0, 0.01^2); each layer pair is a denoising autoencoder trained for
    ``iterations`` mini-batch steps on the frozen output of the layers below
    it, with dropout on its input and on its hidden layer; then the whole
    stack is fine-tuned for ``iterations`` steps on the reconstruction of
    the input. Each stage runs SGD with momentum 0.9 from
    ``learning_rate``, divided by 10 every ``lr_step`` steps. The loss is
    half the squared error summed over features, averaged over the batch
    (Caffe's Euclidean loss, the scale the paper's learning rate is tuned
    for). Unlike the paper, gradients are clipped to norm ``MAX_GRAD_NORM``
    (10), which keeps fine-tuning from diverging. The paper runs 50 000
    steps per stage with ``lr_step=20000`` and a learning rate of 0.1.

    Parameters
    ----------
    iterations, batch_size : int
        Mini-batch steps per stage, and rows per batch (paper: 50 000, 256).
    advice : str
        What the divergence error tells the user to change.
    learning_rate : float or None, default=None
        Initial SGD learning rate of every stage; ``None`` is
        ``LAYERWISE_LEARNING_RATE``.
    lr_step : int or None, default=None
        Steps between two divisions of the learning rate by 10, counted per
        stage; ``None`` is 40% of ``iterations``, the paper's fraction.
    dropout : float, default=LAYERWISE_DROPOUT
        Fraction of the inputs and of the hidden units of a layer pair
        zeroed at each step (paper: 0.2). Not used in fine-tuning.
    momentum : float, default=0.9
    """

    #: The schedule draws the initial weights itself (N(0, 0.01^2)).
    draws_initial_weights = True

    def __init__(self, iterations, batch_size, advice, *,
                 learning_rate=None, lr_step=None,
                 dropout=LAYERWISE_DROPOUT, momentum=0.9):
        self.iterations = iterations
        self.batch_size = batch_size
        self.advice = advice
        self.learning_rate = (
            LAYERWISE_LEARNING_RATE if learning_rate is None else learning_rate
        )
        self.lr_step = (
            max(1, round(LAYERWISE_LR_STEP_FRACTION * iterations))
            if lr_step is None
            else lr_step
        )
        self.dropout = dropout
        self.momentum = momentum

    @classmethod
    def from_settings(cls, settings, learning_rate, advice):
        """The schedule of an estimator's resolved ``settings``.

        ``learning_rate`` is not used: the schedule has its own.
        """
        return cls(settings["pretrain_iterations"], settings["batch_size"], advice)

    @staticmethod
    def prepare(autoencoder, generator):
        """Check that ``autoencoder`` is a stack of layer pairs; draw its weights.

        Raises
        ------
        ValueError
            If the autoencoder is not a stacked autoencoder of linear
            layers.
        """
        layer_pairs(autoencoder)
        init_weights(autoencoder, generator, std=LAYERWISE_INIT_STD)

    def run(self, autoencoder, data, generator, progress):
        """Train ``autoencoder`` in place; return the mean loss of each epoch.

        Parameters
        ----------
        autoencoder : torch.nn.Module
            A stacked autoencoder (see :func:`layer_pairs`) on
            ``data.device``, prepared by :meth:`prepare`.
        data : TrainingData
        generator : torch.Generator
            CPU generator of the batch order and the dropout masks.
        progress : ProgressPrinter

        Returns
        -------
        losses : list of float
            Mean loss of each epoch, stage after stage: first the layer
            pairs from the input inwards (each on its own input's scale),
            then fine-tuning (on the input's scale).
        """
        n_pairs = len(layer_pairs(autoencoder))
        sampler = data.sampler(self.batch_size, generator)
        epochs_per_stage = -(-self.iterations // sampler.steps_per_epoch)
        options = dict(
            iterations=self.iterations,
            learning_rate=self.learning_rate,
            lr_step=self.lr_step,
            momentum=self.momentum,
            advice=self.advice,
        )
        losses = []
        autoencoder.train()
        try:
            with progress.track(
                "layer-wise pretraining", (n_pairs + 1) * epochs_per_stage, "epoch"
            ) as track:
                for depth in range(n_pairs):
                    stage = LayerPairStage(
                        autoencoder, depth, data, sampler, generator, self.dropout,
                        epoch_offset=len(losses), **options,
                    )
                    losses += run_phase(stage, track)
                stage = FinetuneStage(
                    autoencoder, data, sampler, epoch_offset=len(losses), **options
                )
                losses += run_phase(stage, track)
        finally:
            autoencoder.eval()
        return losses
