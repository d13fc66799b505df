"""Reports of training that went wrong: divergence, collapse, non-convergence.

- :class:`DivergenceMonitor` watches one training phase where its loop
  already synchronises with the device (epoch ends, target updates, stage
  ends) and raises :class:`~deepcluster_sk.exceptions.TrainingDivergedError`
  when the loss or the trained weights run away.
- :func:`check_float32_range` rejects data whose values float32 cannot
  hold, and :func:`check_finite_embedding` an embedding that is not finite,
  before k-means sees it.
- :func:`warn_if_collapsed` and :func:`warn_if_not_converged` warn with
  scikit-learn's :class:`~sklearn.exceptions.ConvergenceWarning`, in the
  wording of :class:`~sklearn.cluster.KMeans`.

The wording of the reports lives here; the callers say which phase ran and
what the user should change.
"""

import math
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.exceptions import ConvergenceWarning

from .exceptions import TrainingDivergedError

#: A phase has diverged when its loss (where it should fall) or the norm of
#: its weights grows more than this many times over its starting value.
#: Healthy fits stay far below: on digits the reconstruction loss only falls
#: and the weights' norm grows at most 1.6-fold; a learning rate too large
#: by orders of magnitude multiplies both by 1e5 or more within an epoch.
GROWTH_FACTOR = 1e4

#: Starting values below this count as this in the growth test, so that a
#: loss starting near 0 (data near 0) is not "grown" by rounding noise.
_GROWTH_FLOOR = 1e-3

#: The largest absolute value whose square float32 holds (about 1.8e19):
#: every network squares its inputs somewhere (reconstruction errors, batch
#: normalisation, distances), so larger values overflow to infinity.
FLOAT32_SAFE_MAX = math.sqrt(float(np.finfo(np.float32).max))

_SCALE_THE_DATA = "scale the data, e.g. with sklearn.preprocessing.StandardScaler"


def lower(parameter, value):
    """The advice to lower the learning-rate ``parameter`` now at ``value``."""
    return f"lower {parameter} (now {value})"


def _host_values(values):
    """``values`` (a tensor, float or sequence of floats) as a 1-D array."""
    if isinstance(values, torch.Tensor):
        values = values.tolist()
    return np.atleast_1d(np.asarray(values, dtype=np.float64))


def _weight_norm(params):
    """Euclidean norm of all ``params`` together, a float64 device tensor."""
    norms = [torch.linalg.vector_norm(p.detach(), dtype=torch.float64) for p in params]
    return torch.linalg.vector_norm(torch.stack(norms))


class DivergenceMonitor:
    """Stop a training phase whose loss or weights run away.

    The loop passes the loss of its first step to :meth:`record_start` (kept
    on the device) and calls :meth:`check` where it synchronises anyway.
    :meth:`check` raises when

    - the loss of the first step, taken before any update, is not finite:
      the data overflow float32 whatever the learning rate
      (:class:`ValueError` that says to scale the data);
    - a loss term is NaN or infinite, or the weights are;
    - with ``loss_growth``, the loss exceeds ``GROWTH_FACTOR`` times its
      first value;
    - the norm of the weights exceeds ``GROWTH_FACTOR`` times its value when
      the monitor was made;

    the last three as :class:`~deepcluster_sk.exceptions.TrainingDivergedError`.

    Parameters
    ----------
    phase : str
        The phase in messages, e.g. ``"pretraining"``.
    advice : str
        What to change when it diverges, e.g.
        ``lower("learning_rate", 0.01)``.
    params : iterable of torch.Tensor
        The weights the phase trains; their norm is taken now, before
        training.
    unit : str, default="epoch"
        What the positions passed to :meth:`check` count.
    loss_growth : bool, default=True
        Also stop on a loss that grows ``GROWTH_FACTOR``-fold: for losses
        that should fall, such as a reconstruction error. Not for DEC's
        KL divergence, which may grow from near 0 as its target sharpens,
        nor for losses that change sign.
    average : callable or None, default=None
        Maps the first step's loss to its mean over the processes of a
        distributed fit, so that every process judges against the same
        start; None for one process.
    """

    def __init__(self, phase, advice, params, *, unit="epoch", loss_growth=True,
                 average=None):
        self.phase = phase
        self.advice = advice
        self.params = list(params)
        self.unit = unit
        self.loss_growth = loss_growth
        self._average = average
        self._start_norm = _weight_norm(self.params) if self.params else None
        self._start_loss = None

    def record_start(self, loss):
        """Keep the loss of the phase's first step; later calls do nothing.

        Parameters
        ----------
        loss : torch.Tensor
            The detached loss (or loss terms) of a step; copied on its
            device, no synchronisation.
        """
        if self._start_loss is None:
            self._start_loss = loss.detach().clone()

    def check(self, position, loss):
        """Raise if the phase has diverged; else return.

        Parameters
        ----------
        position : int
            Epochs, iterations or stages done, in the unit of the monitor.
        loss : float or sequence of float
            The loss of the phase at this point, the objective first. The
            first check without :meth:`record_start` takes it as the
            starting value.

        Raises
        ------
        ValueError
            If the loss of the first step is not finite.
        TrainingDivergedError
            If the loss or the weights ran away.
        """
        terms = _host_values(loss)
        if self._average is not None and isinstance(self._start_loss, torch.Tensor):
            self._start_loss = self._average(self._start_loss)
        start = _host_values(terms if self._start_loss is None else self._start_loss)
        self._start_loss = start
        if not np.all(np.isfinite(start)):
            raise ValueError(
                f"{self.phase} failed before its first update: its loss was "
                f"already {_first_non_finite(start):.3g}, so the data overflow "
                "float32 arithmetic whatever the learning rate; "
                f"{_SCALE_THE_DATA}."
            )
        if not np.all(np.isfinite(terms)):
            self._diverged(position, f"loss {_first_non_finite(terms):.3g}")
        if self.loss_growth and terms[0] > GROWTH_FACTOR * max(
            abs(start[0]), _GROWTH_FLOOR
        ):
            self._diverged(
                position,
                f"loss {terms[0]:.3g}, more than {GROWTH_FACTOR:.0f} times "
                f"its first value {start[0]:.3g}",
            )
        if self._start_norm is not None:
            self._check_weights(position)

    def _check_weights(self, position):
        now = _weight_norm(self.params)
        start, now = torch.stack([self._start_norm.to(now.device), now]).tolist()
        if not math.isfinite(now):
            self._diverged(position, "the weights are no longer finite")
        if now > GROWTH_FACTOR * max(start, _GROWTH_FLOOR):
            self._diverged(
                position,
                f"the norm of the weights grew from {start:.3g} to {now:.3g}, "
                f"more than {GROWTH_FACTOR:.0f}-fold",
            )

    def _diverged(self, position, what):
        raise TrainingDivergedError(
            f"{self.phase} diverged at {self.unit} {position} ({what}); "
            f"{self.advice}."
        )


def _first_non_finite(values):
    return values[~np.isfinite(values)][0]


def check_float32_range(X):
    """Raise if ``X`` has values whose squares overflow float32.

    Parameters
    ----------
    X : {ndarray, sparse matrix}
        Validated, finite input, before its conversion to float32.

    Raises
    ------
    ValueError
        If an absolute value of ``X`` exceeds ``FLOAT32_SAFE_MAX``.
    """
    values = X.data if sp.issparse(X) else X
    if values.size == 0:
        return
    largest = max(abs(float(values.max())), abs(float(values.min())))
    if largest > FLOAT32_SAFE_MAX:
        raise ValueError(
            "X has values too large for float32, in which the networks "
            f"train: the largest absolute value is {largest:.3g}, and the "
            f"squares of values above {FLOAT32_SAFE_MAX:.2g} overflow float32; "
            f"{_SCALE_THE_DATA}."
        )


def check_finite_embedding(embedding, phase, advice):
    """Raise before k-means if the embedding of the training data is not finite.

    Parameters
    ----------
    embedding : torch.Tensor of shape (n_samples, n_components)
    phase : str
        The phase that produced it, e.g. ``"pretraining"``.
    advice : str
        What to change, as for :class:`DivergenceMonitor`.

    Raises
    ------
    TrainingDivergedError
        If an entry of ``embedding`` is NaN or infinite.
    """
    if not bool(torch.isfinite(embedding).all()):
        raise TrainingDivergedError(
            f"{phase} diverged: the embedding of the training data is not "
            f"finite; {advice}."
        )


def warn_if_collapsed(labels, n_clusters, advice):
    """Warn if ``labels`` use fewer than ``n_clusters`` distinct clusters.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,)
    n_clusters : int
    advice : str
        What to try, one or more sentences.
    """
    n_distinct = np.unique(labels).size
    if n_distinct < n_clusters:
        warnings.warn(
            f"Number of distinct clusters ({n_distinct}) found smaller than "
            f"n_clusters ({n_clusters}). {advice} Duplicate points in X can "
            "also cause this.",
            ConvergenceWarning,
            stacklevel=2,
        )


def warn_if_not_converged(label_change, max_iter, tol):
    """Warn that self-training stopped at ``max_iter`` with labels changing.

    Parameters
    ----------
    label_change : float
        Fraction of labels changed at the last target update (NaN when
        there was none before it: no warning).
    max_iter : int
    tol : float
    """
    if label_change > tol:
        warnings.warn(
            f"Self-training stopped at max_iter={max_iter} steps and has not "
            f"converged: {label_change:.2%} of the labels changed at the last "
            f"target update, more than tol={tol}. Increase max_iter, or "
            "raise tol to accept this change.",
            ConvergenceWarning,
            stacklevel=2,
        )
