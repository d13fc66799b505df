"""Training loops: autoencoder pretraining and DEC self-training.

Each loop is written around one *step function* that takes tensors already
on the device and returns the loss as a tensor, so the loop never forces a
host-device synchronisation per batch.
"""

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ._cuda_graphs import cuda_graphed_step
from ._dec_math import kl_divergence, log_soft_assignment, target_distribution
from ._diagnostics import DivergenceMonitor


def steps_per_epoch(n_samples, batch_size):
    """Mini-batch steps of one pass over ``n_samples`` rows, the last one short."""
    return -(-n_samples // batch_size)


def shuffled_index_batches(n_samples, batch_size, generator, device):
    """Yield index tensors for one epoch of shuffled mini-batches.

    The permutation is drawn on the CPU from ``generator`` so the same seed
    gives the same batches on every device.
    """
    order = torch.randperm(n_samples, generator=generator).to(device)
    for start in range(0, n_samples, batch_size):
        yield order[start : start + batch_size]


def endless_index_batches(n_samples, batch_size, generator, device):
    """Shuffled mini-batches epoch after epoch, for iteration-counted loops."""
    while True:
        yield from shuffled_index_batches(n_samples, batch_size, generator, device)


def make_autoencoder_step(autoencoder, optimizer):
    """One Adam step on the mean squared reconstruction error of a batch."""

    def step(x):
        _, reconstruction = autoencoder(x)
        loss = nn.functional.mse_loss(reconstruction, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def make_adam(params, learning_rate, device=None):
    """Adam in its fastest form that this PyTorch supports on ``device``.

    The fused implementation halves the step time of a small MLP on a CPU
    (see ``benchmarks/``). On CUDA the optimizer is also *capturable*, with
    its learning rate as a device tensor, so that a CUDA graph can replay
    its steps while :class:`CosineSchedule` changes the rate in place.
    Older PyTorch versions fall back to the plain implementation.
    """
    params = list(params)
    attempts = [dict(lr=learning_rate, fused=True)]
    if device is not None and torch.device(device).type == "cuda":
        tensor_lr = torch.tensor(float(learning_rate), device=device)
        attempts[:0] = [
            dict(lr=tensor_lr, fused=True, capturable=True),
            dict(lr=tensor_lr, capturable=True),
        ]
    for kwargs in attempts:
        try:
            return torch.optim.Adam(params, **kwargs)
        except (RuntimeError, TypeError, ValueError):
            continue
    return torch.optim.Adam(params, lr=learning_rate)


class CosineSchedule:
    """Cosine decay of the learning rate to ``final_fraction`` of its start.

    A tensor learning rate is updated in place, so a captured CUDA graph
    reads the new value at its next replay; a float one is replaced.
    """

    def __init__(self, optimizer, n_steps, final_fraction):
        self.optimizer = optimizer
        self.n_steps = max(n_steps, 1)
        self.final_fraction = final_fraction
        self.base_lrs = [float(group["lr"]) for group in optimizer.param_groups]
        self.count = 0

    def step(self):
        """Advance one step and set the learning rate of every group."""
        self.count += 1
        progress = min(self.count / self.n_steps, 1.0)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        factor = self.final_fraction + (1.0 - self.final_fraction) * cosine
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(base * factor)
            else:
                group["lr"] = base * factor


def pretrain_autoencoder(
    autoencoder,
    data,
    *,
    n_epochs,
    batch_size,
    learning_rate,
    generator,
    on_epoch=None,
    advice="lower the learning rate",
):
    """Train ``autoencoder`` end to end on squared reconstruction error.

    Adam with a cosine learning-rate decay over all steps. On CUDA every
    full-size batch replays one captured CUDA graph of the step. A
    :class:`~deepcluster_sk._diagnostics.DivergenceMonitor` checks the loss
    and the weights after every epoch.

    Parameters
    ----------
    autoencoder : Autoencoder
        Module on ``data.device``; trained in place.
    data : TrainingData
    n_epochs, batch_size : int
    learning_rate : float
        Adam's initial learning rate.
    generator : torch.Generator
        CPU generator for the batch order.
    on_epoch : callable or None
        Called as ``on_epoch(epoch, n_epochs, mean_loss)`` after each epoch.
    advice : str, default="lower the learning rate"
        What the error says to change if training diverges.

    Returns
    -------
    losses : list of float
        Mean reconstruction loss of each epoch.

    Raises
    ------
    TrainingDivergedError
        If the loss or the weights run away.
    """
    autoencoder.train()
    optimizer = make_adam(autoencoder.parameters(), learning_rate, data.device)
    n_steps = n_epochs * steps_per_epoch(data.n_samples, batch_size)
    scheduler = CosineSchedule(optimizer, n_steps, 0.05)
    step = cuda_graphed_step(
        make_autoencoder_step(autoencoder, optimizer),
        [_full_batch(data, batch_size, data.n_features)],
    )
    monitor = DivergenceMonitor("pretraining", advice, autoencoder.parameters())
    losses = []
    for epoch in range(n_epochs):
        total = torch.zeros((), device=data.device)
        for index in shuffled_index_batches(
            data.n_samples, batch_size, generator, data.device
        ):
            loss = step(data.take(index))
            monitor.record_start(loss)
            total += loss * index.numel()
            scheduler.step()
        losses.append(total.item() / data.n_samples)
        if on_epoch is not None:
            on_epoch(epoch, n_epochs, losses[-1])
        monitor.check(epoch + 1, losses[-1])
    autoencoder.eval()
    return losses


def _full_batch(data, batch_size, width):
    """An example of a full mini-batch: the shape a CUDA graph is captured for."""
    return torch.empty(
        min(batch_size, data.n_samples), width, dtype=torch.float32, device=data.device
    )


@torch.no_grad()
def embed(encoder, data, batch_size):
    """The embedding of every row of ``data``, on ``data.device``."""
    encoder.eval()
    parts = [encoder(rows) for _, _, rows in data.batches(batch_size)]
    return torch.cat(parts)


def make_dec_step(encoder, decoder, centers, optimizer, alpha, reconstruction_weight):
    """One step on ``KL(P||Q)`` (+ weighted reconstruction error, IDEC).

    The KL term is averaged over the batch; the reconstruction term is the
    mean squared error, as in the IDEC paper's implementation.
    """

    def step(x, p):
        z = encoder(x)
        loss = kl_divergence(p, log_soft_assignment(z, centers, alpha)) / x.shape[0]
        if reconstruction_weight > 0:
            loss = loss + reconstruction_weight * nn.functional.mse_loss(decoder(z), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


@dataclass
class SelfTrainingResult:
    """What :func:`self_train` found.

    Attributes
    ----------
    labels : torch.Tensor
        Hard assignments at the last target update.
    n_iter : int
        Mini-batch steps taken.
    stop_reason : str
        ``"converged"`` when fewer than ``tol`` of the labels changed,
        ``"max_iter"`` when the loop ran out of steps first.
    iterations, kl_losses, label_changes : list
        Per target update: the step count, ``KL(P||Q)`` per sample over the
        whole data, and the fraction of labels that changed since the
        previous update (``nan`` at the first).
    """

    labels: torch.Tensor
    n_iter: int
    stop_reason: str = "max_iter"
    iterations: list = field(default_factory=list)
    kl_losses: list = field(default_factory=list)
    label_changes: list = field(default_factory=list)


@torch.no_grad()
def _assignment_and_target(encoder, centers, data, alpha, batch_size):
    z = embed(encoder, data, batch_size)
    log_q = log_soft_assignment(z, centers, alpha)
    p = target_distribution(log_q.exp())
    return log_q, p


def self_train(
    encoder,
    centers,
    data,
    *,
    alpha,
    max_iter,
    batch_size,
    update_interval,
    tol,
    learning_rate,
    momentum,
    generator,
    train_encoder=True,
    decoder=None,
    reconstruction_weight=0.0,
    inference_batch_size=8192,
    on_update=None,
    advice="lower the learning rate",
):
    """DEC phase 2: minimise ``KL(P||Q)`` over the encoder and the centres.

    The target ``P`` is recomputed over the whole data every
    ``update_interval`` steps; training stops when fewer than ``tol`` of the
    hard assignments changed between two updates, or after ``max_iter``
    steps.

    Parameters
    ----------
    encoder : nn.Module
        Trained in place unless ``train_encoder`` is False.
    centers : torch.nn.Parameter of shape (n_clusters, n_components)
        Trained in place.
    data : TrainingData
    on_update : callable or None
        Called as ``on_update(iteration, max_iter, kl, label_change)``.
    advice : str, default="lower the learning rate"
        What the error says to change if training diverges.

    Returns
    -------
    SelfTrainingResult

    Raises
    ------
    TrainingDivergedError
        If the KL divergence or the trained parameters stop being finite,
        or the parameters' norm grows more than ``GROWTH_FACTOR``-fold;
        checked at every target update.
    """
    # Parameters that do not train get no gradients at all, not just no updates.
    encoder.requires_grad_(train_encoder)
    if decoder is not None:
        decoder.requires_grad_(reconstruction_weight > 0)
    params = [centers]
    if train_encoder:
        params += list(encoder.parameters())
    if reconstruction_weight > 0:
        params += list(decoder.parameters())
    optimizer = torch.optim.SGD(params, lr=learning_rate, momentum=momentum)
    step = cuda_graphed_step(
        make_dec_step(encoder, decoder, centers, optimizer, alpha, reconstruction_weight),
        [
            _full_batch(data, batch_size, data.n_features),
            _full_batch(data, batch_size, centers.shape[0]),
        ],
    )
    monitor = DivergenceMonitor(
        "self-training", advice, params, unit="iteration", loss_growth=False
    )
    result = SelfTrainingResult(labels=None, n_iter=0)
    batches = endless_index_batches(data.n_samples, batch_size, generator, data.device)
    iteration = 0
    while True:
        if iteration % update_interval == 0 or iteration == max_iter:
            log_q, p = _assignment_and_target(
                encoder, centers, data, alpha, inference_batch_size
            )
            labels = log_q.argmax(dim=1)
            kl = (kl_divergence(p, log_q) / data.n_samples).item()
            change = (
                float("nan")
                if result.labels is None
                else (labels != result.labels).float().mean().item()
            )
            result.labels = labels
            result.iterations.append(iteration)
            result.kl_losses.append(kl)
            result.label_changes.append(change)
            if on_update is not None:
                on_update(iteration, max_iter, kl, change)
            monitor.check(iteration, kl)
            if change < tol:
                result.stop_reason = "converged"
                break
            if iteration >= max_iter:
                break
            encoder.train(train_encoder)
        index = next(batches)
        step(data.take(index), p.index_select(0, index))
        iteration += 1
    encoder.eval()
    result.n_iter = iteration
    return result
