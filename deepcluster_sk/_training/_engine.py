"""The training loop of every phase of every estimator.

:func:`run_phase` owns what all training has in common: mini-batches from a
:class:`~._sampler.RowSampler`, the step function (replayed as one CUDA
graph on a GPU, with an eager fallback), the learning-rate schedule, the one
host-device synchronisation per period, the
:class:`~deepcluster_sk._diagnostics.DivergenceMonitor` and the progress
output. A :class:`Phase` fills in the rest: its step, its schedule of
periods (epochs, stages, the steps between two target updates), the tensors
each step takes and what to do at the end of a period. This is the shape of
scikit-learn's ``BaseMixture.fit_predict`` (one loop; subclasses fill in the
steps) and skorch's ``fit_loop`` -> ``run_single_epoch`` -> ``train_step``.
"""

from dataclasses import dataclass, field

import torch

from .._diagnostics import DivergenceMonitor
from ._cuda_graphs import cuda_graphed_step


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

    A subclass implements :meth:`step` and :meth:`periods` and usually
    :meth:`end_period`; the defaults of the other hooks fit a phase that
    trains on plain mini-batches of rows.

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
    """

    name = "training"
    unit = "epoch"
    loss_growth = True
    capture = True
    lr_schedule = None

    def __init__(self, data, sampler, advice):
        self.data = data
        self.sampler = sampler
        self.advice = advice

    def parameters(self):
        """The weights the phase trains, watched by the divergence monitor."""
        raise NotImplementedError

    def step(self, *tensors):
        """One training step on the tensors of :meth:`batch_inputs`.

        Runs forward, backward and the optimizer, and returns the detached
        loss: a 0-d tensor, or a 1-D tensor of loss terms with the objective
        first. It must not synchronise with the device.
        """
        raise NotImplementedError

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
    monitor = DivergenceMonitor(
        phase.name,
        phase.advice,
        phase.parameters(),
        unit=phase.unit,
        loss_growth=phase.loss_growth,
    )
    step = cuda_graphed_step(
        phase.step, phase.example_inputs(), enabled=None if phase.capture else False
    )
    losses = []
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
            mean = None if total is None else (total / rows).tolist()
            losses.append(mean)
            if _report(phase.end_period(period, mean), monitor, track):
                break
    finally:
        phase.finish()
    return losses


def _report(end, monitor, track):
    """Show ``end``, check it for divergence; return whether the phase stops."""
    if track is not None:
        track.advance(end.position, end.values)
    monitor.check(end.position, end.loss)
    return end.stop
