"""The training loop of every phase of every estimator.

:func:`run_phase` owns what all training has in common: mini-batches from a
:class:`~._sampler.RowSampler`, the step function (replayed as one CUDA
graph on a GPU, with an eager fallback), the learning-rate schedule, the one
host-device synchronisation per period, the
:class:`~deepcluster_sk._diagnostics.DivergenceMonitor` and the progress
output. A :class:`Phase` fills in the rest: its loss, its optimizer, its
schedule of periods (epochs, stages, the steps between two target updates),
the tensors each step takes and what to do at the end of a period. Under
several processes (:mod:`deepcluster_sk._distributed`) the loss runs under
DistributedDataParallel and the losses the monitor checks are averaged over
the processes, so that every process checks, reports and stops alike. This
is the shape of scikit-learn's ``BaseMixture.fit_predict`` (one loop; subclasses fill in the
steps) and skorch's ``fit_loop`` -> ``run_single_epoch`` -> ``train_step``.
"""

from dataclasses import dataclass, field

import torch

from .._diagnostics import DivergenceMonitor
from .._torch._denormals import denormals_flushed
from ._cuda_graphs import cuda_graphed_step
from ._optim import release_weights


@dataclass
class PeriodEnd:
    """What a phase reports at a sync point (the end of a period, or its start).

    Attributes
    ----------
    position : int
        Where the phase stands, in its ``unit``: epochs or stages done, or
        the steps taken; the divergence monitor and the progress output
        report it.
    loss : float or list of float
        The value the divergence monitor checks, its objective first.
    values : dict of str to str
        What the progress output shows.
    stop : bool
        Whether the phase is done before its schedule is.
    """

    position: int
    loss: object
    values: dict = field(default_factory=dict)
    stop: bool = False


class Phase:
    """One training phase: the hooks that :func:`run_phase` calls.

    A subclass implements :meth:`loss` and :meth:`periods`, sets
    :attr:`optimizer` and usually implements :meth:`end_period`; the
    defaults of the other hooks fit a phase that trains on plain mini-batches
    of rows.

    Parameters
    ----------
    data : TrainingData
        The training rows.
    sampler : RowSampler
        The mini-batches.
    advice : str
        What the divergence error tells the user to change.

    Attributes
    ----------
    name : str
        The phase in messages, e.g. ``"pretraining"``.
    unit : str
        What :attr:`PeriodEnd.position` counts.
    loss_growth : bool
        Whether a loss grown ``GROWTH_FACTOR``-fold counts as divergence
        (for a loss that should fall).
    capture : bool
        Whether :func:`run_phase` may replay :meth:`step` as a CUDA graph:
        the step must then be a pure function of its tensor inputs and of
        state updated in place (see :mod:`._cuda_graphs`).
    lr_schedule : object or None
        Its ``step()`` is called after every training step.
    optimizer : torch.optim.Optimizer
        Steps :meth:`parameters` on the gradients of the loss.
    """

    name = "training"
    unit = "epoch"
    loss_growth = True
    capture = True
    lr_schedule = None
    optimizer = None

    def __init__(self, data, sampler, advice):
        self.data = data
        self.sampler = sampler
        self.advice = advice
        self._forward = self.loss

    def parameters(self):
        """The weights the phase trains, watched by the divergence monitor."""
        raise NotImplementedError

    def buffers(self):
        """State the step updates besides the weights (running statistics).

        Averaged over the processes at the end of a distributed phase.
        """
        return []

    def loss(self, *tensors):
        """The loss of one step on the tensors of :meth:`batch_inputs`.

        A 0-d tensor, or a 1-D tensor of loss terms with the objective
        first, attached to the graph of :meth:`parameters`. It must not
        synchronise with the device.
        """
        raise NotImplementedError

    def before_update(self):
        """Between the backward pass and the optimizer step (gradient clipping)."""

    def step(self, *tensors):
        """One training step: :meth:`loss`, backward, the optimizer.

        Returns the detached loss (or loss terms). Under several processes
        the loss runs under DistributedDataParallel, which averages the
        gradients over them in the backward pass.
        """
        terms = self._forward(*tensors)
        self.optimizer.zero_grad(set_to_none=True)
        (terms if terms.ndim == 0 else terms[0]).backward()
        self.before_update()
        self.optimizer.step()
        return terms.detach()

    def distribute(self):
        """Route :meth:`step`'s loss through DistributedDataParallel.

        Called by :func:`run_phase` when several processes train; DDP
        broadcasts rank 0's weights now.
        """
        self._forward = self.data.replicas.data_parallel(
            self.loss, self.parameters(), self.data.device
        )

    def periods(self):
        """The schedule: the number of steps of each period, in order."""
        raise NotImplementedError

    def batch_inputs(self, index):
        """The tensors of the step on the rows ``index``: the rows themselves.

        Random draws a step needs (noise, dropout masks) are made here, from
        the fit's generator, never inside the step.
        """
        return (self.data.take(index),)

    def example_inputs(self):
        """Tensors shaped as a full batch's inputs, for a CUDA graph capture."""
        return (self._full_batch(self.data.sample_shape),)

    def _full_batch(self, sample_shape, dtype=torch.float32):
        rows = min(self.sampler.batch_size, self.data.n_samples)
        return torch.empty(rows, *sample_shape, dtype=dtype, device=self.data.device)

    def begin(self):
        """Before the first period; return a :class:`PeriodEnd` to check, or None."""
        return None

    def before_period(self, period):
        """Called before each period (thresholds of a schedule)."""

    def end_period(self, period, mean_loss):
        """At the end of period ``period`` (from 0); return its :class:`PeriodEnd`.

        ``mean_loss`` is the mean step loss over the period's rows, a float
        or a list of floats: the period's only synchronisation.
        """
        return PeriodEnd(period + 1, mean_loss)

    def finish(self):
        """After the last period, or when the phase stopped."""


def run_phase(phase, track=None):
    """Train ``phase`` through its schedule; return the mean loss of each period.

    Parameters
    ----------
    phase : Phase
    track : ProgressTrack or None, default=None
        Where the phase reports its progress; the caller closes it.

    Returns
    -------
    losses : list
        The mean step loss of every period run, a float (or a list of loss
        terms) per period.

    Raises
    ------
    TrainingDivergedError
        If the loss or the trained weights run away, checked at every
        period's end.
    ValueError
        If the loss of the first step is not finite: the data overflow
        float32 whatever the learning rate.
    """
    replicas = phase.data.replicas
    if replicas.enabled:
        phase.distribute()
    monitor = DivergenceMonitor(
        phase.name,
        phase.advice,
        phase.parameters(),
        unit=phase.unit,
        loss_growth=phase.loss_growth,
        average=replicas.mean if replicas.enabled else None,
    )
    # DDP's collectives inside a step are not captured.
    capture = phase.capture and not replicas.enabled
    step = cuda_graphed_step(
        phase.step, phase.example_inputs(), enabled=None if capture else False
    )
    losses = []
    with denormals_flushed(phase.data.device):
        try:
            end = phase.begin()
            if end is not None and _report(end, monitor, track):
                return losses
            for period, n_steps in enumerate(phase.periods()):
                phase.before_period(period)
                total, rows = None, 0
                # Autocast without a weight cache may span many optimizer steps.
                with phase.data.autocast():
                    for _ in range(n_steps):
                        index = next(phase.sampler)
                        loss = step(*phase.batch_inputs(index))
                        monitor.record_start(loss)
                        weighted = loss * index.numel()
                        total = weighted if total is None else total + weighted
                        rows += index.numel()
                        if phase.lr_schedule is not None:
                            phase.lr_schedule.step()
                mean = _mean_loss(total, rows, replicas)
                losses.append(mean)
                if _report(phase.end_period(period, mean), monitor, track):
                    break
            replicas.average_buffers(phase.buffers())
        finally:
            phase.finish()
            release_weights(phase.optimizer)
    return losses


def _mean_loss(total, rows, replicas):
    """The mean step loss of a period over every process's rows, on the host."""
    if total is None:
        return None
    if not replicas.enabled:
        return (total / rows).tolist()
    summed = torch.cat([total.reshape(-1).float(),
                        torch.tensor([float(rows)], device=total.device)])
    summed = replicas.all_reduce(summed)
    mean = summed[:-1] / summed[-1]
    return (mean[0] if total.ndim == 0 else mean).tolist()


def _report(end, monitor, track):
    """Show ``end``, check it for divergence; return whether the phase stops."""
    if track is not None:
        track.advance(end.position, end.values)
    monitor.check(end.position, end.loss)
    return end.stop
