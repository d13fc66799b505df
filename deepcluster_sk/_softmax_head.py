"""What the softmax-head clusterers share: network, entropies, loop, predict.

:class:`IMSATClusterer` and :class:`DACClusterer` both train a fully
connected network whose softmax output *is* the soft cluster assignment, with
no autoencoder and no centres. This module holds what they have in common:

- :class:`SoftmaxMLP`, the network ``d-h1-...-hL-k`` (Linear, BatchNorm,
  ReLU in the hidden layers, linear logits);
- entropy helpers and the mutual-information estimate used by ``score``;
- :func:`fixed_size_batches` and :func:`train_in_stages`, a training loop
  around a step function that never synchronises per batch;
- :class:`BaseSoftmaxClusterer`, whose ``predict``, ``predict_proba``,
  ``transform`` and ``score`` read the network's softmax output.
"""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import skip_init

from ._auto import forward_work, softmax_network_settings
from ._base import BaseDeepClusterer, SoftAssignmentMixin, check_hidden_dims
from ._diagnostics import DivergenceMonitor, lower
from ._nn import reset_parameters

#: Added inside logarithms of probabilities, as in the reference
#: implementations of IMSAT and DAC.
LOG_EPS = 1e-8


# -- network ---------------------------------------------------------------


class SoftmaxMLP(nn.Module):
    """Fully connected network ``d-h1-...-hL-k`` returning cluster logits.

    Every hidden layer is Linear, then (optionally) batch normalisation, then
    ReLU; the output layer is linear (optionally followed by batch
    normalisation and ReLU, DAC's output block), and the softmax of its
    output is ``p(y|x)``.

    Parameters
    ----------
    n_features : int
        Input dimension ``d``.
    hidden_dims : sequence of int
        Widths of the hidden layers.
    n_clusters : int
        Output dimension ``k``.
    batch_norm : bool, default=True
        Normalise every hidden layer over the mini-batch.
    output_batch_norm : bool, default=False
        Follow the output layer by batch normalisation, as DAC's network
        does: every cluster's logit then varies across a batch, so the
        outputs do not start as the same distribution for every sample.
    output_relu : bool, default=False
        With ``output_batch_norm``, a ReLU after it, as in DAC's network.

    Notes
    -----
    The linear layers start uninitialised, so building the network never
    draws from the global RNG; :func:`build_softmax_mlp` initialises them
    from a seeded generator.
    """

    def __init__(
        self,
        n_features,
        hidden_dims,
        n_clusters,
        batch_norm=True,
        output_batch_norm=False,
        output_relu=False,
    ):
        super().__init__()
        dims = [n_features, *hidden_dims]
        self.hidden = nn.ModuleList(
            skip_init(nn.Linear, n_in, n_out)
            for n_in, n_out in zip(dims[:-1], dims[1:])
        )
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(n_out) if batch_norm else nn.Identity()
            for n_out in hidden_dims
        )
        self.output = skip_init(nn.Linear, dims[-1], n_clusters)
        self.output_norm = (
            nn.BatchNorm1d(n_clusters)
            if output_batch_norm
            else nn.Identity()
        )
        self.output_relu = output_batch_norm and output_relu

    def forward(self, x, update_stats=True):
        """Logits of ``p(y|x)``.

        ``update_stats=False`` normalises with the batch statistics in
        training mode without moving the running averages, so that forward
        passes on perturbed copies of a batch (VAT, RPT) leave the
        statistics used for prediction untouched.
        """
        h = x
        for linear, norm in zip(self.hidden, self.norms):
            h = F.relu(self._normalize(norm, linear(h), update_stats))
        logits = self.output(h)
        if isinstance(self.output_norm, nn.BatchNorm1d):
            logits = self._normalize(self.output_norm, logits, update_stats)
            if self.output_relu:
                logits = F.relu(logits)
        return logits

    def _normalize(self, norm, h, update_stats):
        if isinstance(norm, nn.BatchNorm1d) and self.training and not update_stats:
            return F.batch_norm(
                h, None, None, norm.weight, norm.bias, True, 0.0, norm.eps
            )
        return norm(h)


def build_softmax_mlp(n_features, hidden_dims, n_clusters, generator, device, **kwargs):
    """A :class:`SoftmaxMLP` initialised from ``generator`` on ``device``.

    ``kwargs`` go to :class:`SoftmaxMLP` (``output_batch_norm``, ...).
    """
    network = SoftmaxMLP(n_features, hidden_dims, n_clusters, **kwargs)
    reset_parameters(network, generator)
    return network.to(device)


# -- information-theoretic quantities ---------------------------------------


def entropy(p, dim=-1):
    """Shannon entropy ``-sum p log p`` along ``dim`` (natural log)."""
    return -(p * torch.log(p + LOG_EPS)).sum(dim=dim)


def conditional_entropy(p):
    """``H(Y|X)`` estimated on a batch: the mean entropy of the rows of ``p``."""
    return entropy(p).mean()


def marginal_entropy(p):
    """``H(Y)`` with ``p(y)`` estimated as the mean of the rows of ``p``."""
    return entropy(p.mean(dim=0))


def kl_divergence_rows(p, log_q):
    """Mean over rows of ``KL(p_i || q_i)``, with ``0 log 0 = 0``."""
    return (torch.special.xlogy(p, p) - p * log_q).sum(dim=1).mean()


# -- training loop -----------------------------------------------------------


def fixed_size_batches(n_samples, batch_size, generator, device):
    """Shuffled mini-batches of exactly ``min(batch_size, n_samples)`` rows.

    Epoch after epoch, each a fresh permutation drawn on the CPU from
    ``generator``; the incomplete last batch of an epoch is dropped. Every
    step then sees the same shapes (batch statistics and the marginal
    ``p(y)`` are never estimated on a handful of rows, and a CUDA graph can
    replay the step), and no row is favoured since the permutation changes.
    """
    batch_size = min(batch_size, n_samples)
    stop = n_samples - n_samples % batch_size
    while True:
        order = torch.randperm(n_samples, generator=generator).to(device)
        for start in range(0, stop, batch_size):
            yield order[start : start + batch_size]


def train_in_stages(
    step,
    data,
    batches,
    *,
    n_stages,
    steps_per_stage,
    batch_inputs=None,
    before_stage=None,
    after_stage=None,
    monitor=None,
):
    """Run ``n_stages`` stages of ``steps_per_stage`` calls of ``step``.

    Parameters
    ----------
    step : callable
        ``step(x, *batch_inputs(index))`` trains on one batch and returns a
        1-D detached tensor of loss terms.
    data : TrainingData
    batches : iterator of index tensors
        From :func:`fixed_size_batches`.
    n_stages, steps_per_stage : int
    batch_inputs : callable or None
        Extra tensors for the step of batch ``index`` (noise, per-sample
        radii).
    before_stage : callable or None
        Called as ``before_stage(stage)`` (thresholds of a schedule).
    after_stage : callable or None
        Called as ``after_stage(stage, mean_terms)`` with the stage's mean
        loss terms as a list of floats.
    monitor : DivergenceMonitor or None
        Gets the terms of the first step and checks the mean terms of
        every stage, counted from 1.

    Returns
    -------
    history : list of list of float
        Mean loss terms of each stage; the only host-device synchronisation
        is at the end of a stage.

    Raises
    ------
    TrainingDivergedError
        If ``monitor`` finds that training diverged.
    """
    history = []
    for stage in range(n_stages):
        if before_stage is not None:
            before_stage(stage)
        total = None
        for _ in range(steps_per_stage):
            index = next(batches)
            extra = batch_inputs(index) if batch_inputs is not None else ()
            terms = step(data.take(index), *extra)
            if monitor is not None:
                monitor.record_start(terms)
            total = terms if total is None else total + terms
        history.append((total / steps_per_stage).tolist())
        if after_stage is not None:
            after_stage(stage, history[-1])
        if monitor is not None:
            monitor.check(stage + 1, history[-1])
    return history


def stage_is_due(verbose, done, total):
    """Whether to print after stage ``done`` of ``total`` (about ten lines)."""
    if verbose >= 2:
        return True
    return verbose >= 1 and (done == total or done % max(1, total // 10) == 0)


# -- estimator base ----------------------------------------------------------


class BaseSoftmaxClusterer(SoftAssignmentMixin, BaseDeepClusterer):
    """Base of the estimators whose network outputs ``p(y|x)`` directly.

    Subclasses set ``network_`` (a module mapping rows to logits) in
    ``_fit``; prediction, transform and score are shared.
    """

    _parameter_constraints: dict = {
        **BaseDeepClusterer._parameter_constraints,
        "hidden_dims": [tuple, list, StrOptions({"auto"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
    }

    def _check_params(self):
        check_hidden_dims(self.hidden_dims)

    def _settings(self, n_samples, n_features):
        return softmax_network_settings(
            n_samples,
            n_features,
            hidden_dims=self.hidden_dims,
            batch_size=self.batch_size,
        )

    #: Forward passes through the network per training step (VAT: three).
    _passes_per_step = 1

    def _forward_work(self, settings, n_features):
        dims = [n_features, *settings["hidden_dims"], self.n_clusters]
        return self._passes_per_step * settings["batch_size"] * forward_work(dims)

    @staticmethod
    def _check_enough_samples(data):
        if data.n_samples < 2:
            raise ValueError(
                f"n_samples={data.n_samples} is too few: batch normalisation "
                "needs at least 2 samples."
            )

    def _network_options(self):
        """Keyword arguments of :class:`SoftmaxMLP` beyond the sizes."""
        return {}

    def _network(self, n_features, settings, generator, device):
        return build_softmax_mlp(
            n_features,
            settings["hidden_dims"],
            self.n_clusters,
            generator,
            device,
            **self._network_options(),
        )

    def _divergence_monitor(self, network, unit):
        """The monitor of :func:`train_in_stages` for ``network``.

        The loss is only checked to be finite: IMSAT's is negative and
        DAC's bounded, so neither grows when training diverges; the weights
        do.
        """
        return DivergenceMonitor(
            "training",
            lower("learning_rate", self.learning_rate),
            network.parameters(),
            unit=unit,
            loss_growth=False,
        )

    def _collapse_advice(self):
        return (
            f"Try a lower learning_rate (now {self.learning_rate}) or fewer "
            "clusters."
        )

    @torch.no_grad()
    def _training_labels(self, network, data):
        """Argmax of ``p(y|x)`` over the training rows, as a NumPy array."""
        network.eval()
        batch_size = self._inference_batch_size(data.device)
        labels = [
            network(rows).argmax(dim=1) for _, _, rows in data.batches(batch_size)
        ]
        return torch.cat(labels).cpu().numpy().astype(np.int64)

    def _log_proba(self, X):
        network = self.network_
        return self._map_batches(
            X, network, lambda rows: torch.log_softmax(network(rows), dim=1)
        )

    def transform(self, X):
        """Soft assignment of ``X``, as a feature matrix for a pipeline.

        The same values as :meth:`predict_proba`; output feature names are
        ``<classname>0``, ``<classname>1``, ... (see
        :meth:`get_feature_names_out`).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_clusters), dtype float32
            ``p(y|x)``; rows sum to 1.
        """
        return self.predict_proba(X)

    def score(self, X, y=None):
        """Estimated mutual information ``I(X;Y) = H(Y) - H(Y|X)`` on ``X``.

        ``H(Y|X)`` is the mean entropy of ``p(y|x)`` over the rows of ``X``
        and ``H(Y)`` the entropy of their mean, in nats. Higher is better:
        confident assignments (low ``H(Y|X)``) spread over balanced clusters
        (high ``H(Y)``); the maximum is ``log(n_clusters)``. Needs no labels,
        so :class:`~sklearn.model_selection.GridSearchCV` can use it.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        score : float
            ``H(Y) - H(Y|X)`` in nats, between 0 and ``log(n_clusters)``.
        """
        X = self._validate_predict_data(X)
        p = torch.from_numpy(np.exp(self._log_proba(X))).double()
        return float(marginal_entropy(p) - conditional_entropy(p))

    @property
    def _n_features_out(self):
        return self.n_clusters
