"""DEC's self-training: ``KL(P || Q)`` over the encoder and the centres.

The target ``P`` is recomputed over the whole data every ``update_interval``
steps; training stops when fewer than ``tol`` of the hard assignments
changed between two updates, or after ``max_iter`` steps (Xie et al., 2016).
With a reconstruction weight the decoder trains too (IDEC, Guo et al.,
2017).
"""

import copy
from dataclasses import dataclass, field

import torch

from .._torch._data import shard_outputs
from .._torch._dec_math import (
    kl_loss_and_gradients,
    log_soft_assignment,
    target_distribution,
)
from .._torch._information import kl_divergence
from ._engine import Phase, PeriodEnd, run_phase
from ._linear_stack import by_hand_possible, squared_error_by_hand, stacks_by_hand
from ._optim import make_optimizer
from ._pretraining import reconstruction_error


#: Bytes of the target ``P`` (``n_samples x n_clusters`` float32) above
#: which self-training recomputes it per batch instead of keeping it:
#: 512 MiB, 13 million rows at 10 clusters. Measured on 1 000 000 rows and
#: 50 clusters (P 191 MiB): the fit's peak memory 914 MiB kept, 203 MiB
#: recomputed, for 23.1 s against 25.3 s, the same labels
#: (``benchmarks/results/tuning/streamed_target.md``).
STORED_TARGET_BYTES = 2**29


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

    labels: torch.Tensor = None
    n_iter: int = 0
    stop_reason: str = "max_iter"
    iterations: list = field(default_factory=list)
    kl_losses: list = field(default_factory=list)
    label_changes: list = field(default_factory=list)


class SelfTrainingPhase(Phase):
    """DEC phase 2 on :func:`~._engine.run_phase`: SGD on ``KL(P || Q)``.

    A period is the ``update_interval`` steps between two target updates;
    each update (and one before the first step) recomputes ``P`` over the
    whole data, records the KL divergence and the share of changed labels,
    and stops the phase when that share is below ``tol``.
    """

    name = "self-training"
    unit = "iteration"
    # DEC's KL divergence may grow from near 0 as its target sharpens.
    loss_growth = False

    def __init__(self, autoencoder, centers, data, sampler, *, alpha, max_iter,
                 update_interval, tol, learning_rate, momentum, train_encoder,
                 reconstruction_weight, inference_batch_size, advice,
                 initial_target=None, initial_target_updates=1):
        super().__init__(data, sampler, advice)
        self.initial_target = initial_target
        self.initial_target_updates = initial_target_updates
        self.encoder = autoencoder.encoder
        self.decoder = autoencoder.decoder
        self.centers = centers
        self.alpha = alpha
        self.max_iter = max_iter
        self.update_interval = update_interval
        self.tol = tol
        self.train_encoder = train_encoder
        self.reconstruction_weight = reconstruction_weight
        self.inference_batch_size = inference_batch_size
        # Parameters that do not train get no gradients, not just no updates.
        self.encoder.requires_grad_(train_encoder)
        self.decoder.requires_grad_(reconstruction_weight > 0)
        self.params = [centers]
        if train_encoder:
            self.params += list(self.encoder.parameters())
        if reconstruction_weight > 0:
            self.params += list(self.decoder.parameters())
        by_hand = train_encoder and by_hand_possible(data, self._halves(), self.params,
                                                     others=[centers])
        self.optimizer = make_optimizer(
            "sgd", self.params, learning_rate, data.device, momentum=momentum,
            replicated=data.replicas.enabled, gathered=by_hand,
        )
        self._stacks = stacks_by_hand(self._halves(), self.optimizer) if by_hand else None
        if self._stacks is not None:
            self._center_gradient = self.optimizer.gradient_views()[id(centers)]
        self.result = SelfTrainingResult()
        self.target = None
        self.stream_target = (
            data.n_samples * centers.shape[0] * 4 > STORED_TARGET_BYTES
        )
        self._frozen = None
        self._periods = [
            min(update_interval, max_iter - start)
            for start in range(0, max_iter, update_interval)
        ]

    def parameters(self):
        return self.params

    def example_inputs(self):
        return (
            self._full_batch(self.data.sample_shape),
            self._full_batch((self.centers.shape[0],)),
        )

    def batch_inputs(self, index):
        x = self.data.take(index)
        if self.target is not None:
            return x, self.target.index_select(0, index)
        return x, self._frozen_target(x)

    def _shard_log_q(self):
        """``log Q`` of this process's block of rows, batch by batch."""
        for z in shard_outputs(self.encoder, self.data, self.inference_batch_size):
            yield log_soft_assignment(z, self.centers, self.alpha)

    def _freeze(self, frequencies):
        """Keep the encoder, centres and frequencies ``P`` is computed from."""
        if self._frozen is None:
            self._frozen = copy.deepcopy(self.encoder).requires_grad_(False).eval()
        else:
            self._frozen.load_state_dict(self.encoder.state_dict())
        self._frozen_centers = self.centers.detach().clone()
        self._frequencies = frequencies

    @torch.no_grad()
    def _frozen_target(self, x):
        """``P`` of the rows ``x``, from the encoder and centres of the last update."""
        with self.data.autocast():
            z = self._frozen(x).float()
        q = log_soft_assignment(z, self._frozen_centers, self.alpha).exp()
        return target_distribution(q, self._frequencies)

    def buffers(self):
        return [*self.encoder.buffers(), *self.decoder.buffers()]

    def loss(self, x, p):
        z = self.encoder(x)
        log_q = log_soft_assignment(z, self.centers, self.alpha)
        loss = kl_divergence(p, log_q) / x.shape[0]
        if self.reconstruction_weight > 0:
            reconstruction = self.decoder(z)
            loss = loss + self.reconstruction_weight * reconstruction_error(
                reconstruction, x
            )
        return loss

    def _halves(self):
        """The networks a step trains: the encoder, and the decoder for IDEC."""
        if self.reconstruction_weight > 0:
            return [self.encoder, self.decoder]
        return [self.encoder]

    def step(self, x, p):
        if self._stacks is None:
            return super().step(x, p)
        return self._step_by_hand(x, p)

    def _step_by_hand(self, x, p):
        """:meth:`step` with the encoder and decoder run by hand.

        The loss's gradients with respect to the embedding and the centres
        come in closed form (:func:`~.._torch._dec_math.kl_loss_and_gradients`),
        the embedding's goes back through the plain stacks
        (:mod:`._linear_stack`), the reconstruction's through the decoder.
        """
        encoder = self._stacks[0]
        z = encoder.forward(x)
        loss, grad_z, grad_centers = kl_loss_and_gradients(
            z, self.centers.detach(), p, self.alpha
        )
        if self.reconstruction_weight > 0:
            reconstruction = self._stacks[1].forward(z)
            error, grad = squared_error_by_hand(reconstruction, x,
                                                self.reconstruction_weight)
            loss = loss + error
            grad_z = grad_z + self._stacks[1].backward(grad)
        encoder.backward(grad_z, input_grad=False)
        self._center_gradient.copy_(grad_centers)
        self.optimizer.step_gathered()
        return loss

    def periods(self):
        return self._periods

    @torch.no_grad()
    def _update_target(self):
        """Recompute ``P`` and the labels over the whole data; a sync point.

        Each of the processes of a distributed fit computes ``Q`` on its
        block of rows; the soft cluster frequencies, the KL divergence and
        the count of changed labels are summed over the processes, so all
        update the same target and stop at the same update. ``P`` is then
        either kept (its blocks gathered from the processes) or, when it
        would exceed ``STORED_TARGET_BYTES``, recomputed batch by batch from
        a frozen copy of the encoder and centres and the frequencies
        (:meth:`batch_inputs`): the same values, without ``n_samples x
        n_clusters`` floats in memory, for one more forward pass per step
        and one more pass per update (the KL divergence needs the
        frequencies first).
        """
        replicas, data = self.data.replicas, self.data
        start, stop = replicas.shard(data.n_samples)
        self.encoder.eval()
        log_q, labels = [], []
        q_sum = torch.zeros(self.centers.shape[0], device=self.centers.device)
        for block in self._shard_log_q():
            q_sum += block.exp().sum(dim=0)
            labels.append(block.argmax(dim=1))
            if not self.stream_target:
                log_q.append(block)
        labels = torch.cat(labels)
        frequencies = replicas.all_reduce(q_sum)
        if self.stream_target:
            self._freeze(frequencies)
            kl = sum((kl_divergence(target_distribution(block.exp(), frequencies), block)
                      for block in self._shard_log_q()),
                     torch.zeros((), device=q_sum.device))
            self.target = None
        else:
            # Block by block into one tensor: a handful of n x k temporaries
            # at once raised the peak memory by 9 times the target's size.
            target = torch.empty(len(labels), self.centers.shape[0],
                                 device=q_sum.device)
            kl, row = torch.zeros((), device=q_sum.device), 0
            for block in log_q:
                p = target_distribution(block.exp(), frequencies)
                target[row : row + len(block)] = p
                kl = kl + kl_divergence(p, block)
                row += len(block)
            del log_q
        result = self.result
        previous = None if result.labels is None else result.labels[start:stop]
        changed = (torch.zeros((), device=q_sum.device) if previous is None
                   else (labels != previous).sum().float())
        totals = replicas.all_reduce(torch.stack([kl.float(), changed]))
        kl, change = (totals / data.n_samples).tolist()
        if previous is None:
            change = float("nan")
        if not self.stream_target:
            self.target = replicas.all_gather_rows(target, data.n_samples)
        labels = replicas.all_gather_rows(labels, data.n_samples)
        result.labels = labels
        result.iterations.append(result.n_iter)
        result.kl_losses.append(kl)
        result.label_changes.append(change)
        if change < self.tol:
            result.stop_reason = "converged"
        values = {"kl": f"{kl:.5f}", "changed": f"{change:.4%}"}
        stop = change < self.tol or result.n_iter >= self.max_iter
        self.encoder.train(self.train_encoder)
        return PeriodEnd(result.n_iter, kl, values, stop)

    def _hold_initial_target(self):
        """Train towards ``initial_target`` instead of ``P`` for its first periods.

        The labels, their changes and the KL divergence recorded stay those
        of the model's own soft assignment.
        """
        if self.initial_target is None:
            return
        if len(self.result.iterations) <= self.initial_target_updates:
            self.target = self.initial_target

    def begin(self):
        end = self._update_target()
        self._hold_initial_target()
        return end

    def end_period(self, period, mean_loss):
        self.result.n_iter += self._periods[period]
        end = self._update_target()
        self._hold_initial_target()
        return end

    def finish(self):
        self.encoder.eval()


def self_train(autoencoder, centers, data, *, batch_size, generator, progress,
               **options):
    """Run DEC's self-training; return a :class:`SelfTrainingResult`.

    Parameters
    ----------
    autoencoder : torch.nn.Module
        With ``encoder`` (trained in place unless ``train_encoder`` is
        False) and ``decoder`` (trained with ``reconstruction_weight > 0``).
    centers : torch.nn.Parameter of shape (n_clusters, n_components)
        Trained in place.
    data : TrainingData
    batch_size : int
    generator : torch.Generator
        CPU generator of the batch order.
    progress : ProgressPrinter
    **options
        The keyword arguments of :class:`SelfTrainingPhase`: ``alpha``,
        ``max_iter``, ``update_interval``, ``tol``, ``learning_rate``,
        ``momentum``, ``train_encoder``, ``reconstruction_weight``,
        ``inference_batch_size``, ``advice`` and, optionally,
        ``initial_target`` (an ``(n_samples, n_clusters)`` tensor on the
        data's device that replaces ``P`` for the first
        ``initial_target_updates`` periods).

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
    sampler = data.sampler(batch_size, generator)
    phase = SelfTrainingPhase(autoencoder, centers, data, sampler, **options)
    with progress.track("self-training", phase.max_iter, "step") as track:
        run_phase(phase, track)
    return phase.result
