"""The estimators that train a network alone, its softmax the clustering (IMSAT, DAC).

Discriminative clustering (Krause et al., 2010): a network whose softmax
output *is* the soft cluster assignment ``p(y|x)``, with no autoencoder and
no centres. :class:`BaseDiscriminativeClusterer` fills in the hooks of
:class:`~._base.BaseDeepClusterer` (the default
:class:`~deepcluster_sk.nn.ClusterMLP` or the user's network, its training
on :func:`~deepcluster_sk._training._engine.run_phase`) and reads
``predict``, ``predict_proba``, ``transform`` and ``score`` off the
network. A subclass writes its loss as a :class:`NetworkPhase` and the
hooks ``_phase`` and ``_history``.
"""

import math
from numbers import Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from .._auto import auto_network_dims
from .._diagnostics import lower
from .._torch._data import forward_all
from .._torch._information import conditional_entropy, marginal_entropy
from .._training._engine import Phase, run_phase
from .._training._optim import make_optimizer
from ..nn import ClusterMLP
from ._base import BaseDeepClusterer, SoftAssignmentMixin
from ._modules import build_module, check_network
from ._parameters import Param


class NetworkPhase(Phase):
    """The training of a discriminative network: one optimizer, fixed schedule.

    ``n_periods`` periods of ``steps_per_period`` steps each, on mini-batches
    of one size (:class:`~deepcluster_sk._training._sampler.RowSampler`
    with ``drop_last``). The loss is only checked to be finite: IMSAT's is
    negative and DAC's bounded, so neither grows when training diverges;
    the weights do.

    Parameters
    ----------
    network : torch.nn.Module
    data : TrainingData
    sampler : RowSampler
    optimizer : torch.optim.Optimizer
    n_periods, steps_per_period : int
    advice : str
    """

    loss_growth = False

    def __init__(self, network, data, sampler, optimizer, n_periods,
                 steps_per_period, advice):
        super().__init__(data, sampler, advice)
        self.network = network
        self.optimizer = optimizer
        self.n_periods = n_periods
        self.steps_per_period = steps_per_period

    def parameters(self):
        return list(self.network.parameters())

    def buffers(self):
        return list(self.network.buffers())

    def periods(self):
        return [self.steps_per_period] * self.n_periods

    def begin(self):
        self.network.train()

    def finish(self):
        self.network.eval()


class BaseDiscriminativeClusterer(SoftAssignmentMixin, BaseDeepClusterer):
    """Base of the estimators whose network outputs ``p(y|x)`` directly.

    A subclass implements ``_phase(fit, sampler, optimizer)``, returning the
    :class:`NetworkPhase` that trains ``fit.network``, and ``_history(phase,
    losses)``, which sets ``n_iter_``, ``history_`` and its own fitted
    attributes; it names its ``_optimizer`` (with ``_optimizer_options``)
    and ``_network_options`` gives the default network's keyword arguments
    beyond its sizes.
    """

    network = Param(None, None, type, torch.nn.Module)
    learning_rate = Param(1e-3, Interval(Real, 0, None, closed="neither"))

    _routed_prefix = "network"
    _size_rule = staticmethod(auto_network_dims)

    #: The optimizer (see ``_training/_optim.make_optimizer``).
    _optimizer = "adam"

    # -- the hooks of fit ----------------------------------------------------

    def _check_data(self, data):
        if data.n_samples < 2:
            raise ValueError(
                f"n_samples={data.n_samples} is too few: batch normalisation "
                "needs at least 2 samples."
            )

    def _network_generator(self, fit):
        return fit.generator, fit.generator.initial_seed()

    def _network_options(self):
        """Keyword arguments of the default :class:`ClusterMLP` beyond its sizes."""
        return {}

    def _build_network(self, sample_shape, settings, generator):
        default = (
            ClusterMLP,
            {"hidden_dims": settings.get("hidden_dims"), **self._network_options()},
        )
        return build_module(
            self,
            "network",
            default,
            {
                "input_shape": sample_shape,
                "n_features": math.prod(sample_shape),
                "n_clusters": self.n_clusters,
            },
            generator,
        )

    def _check_network(self, network, x):
        return check_network(network, x, self.n_clusters)

    def _train(self, fit):
        data = fit.data
        sampler = data.sampler(
            self._sampled_rows(fit.settings["batch_size"]), fit.generator, drop_last=True
        )
        optimizer = make_optimizer(
            self._optimizer,
            fit.network.parameters(),
            self.learning_rate,
            data.device,
            replicated=data.replicas.enabled,
            **self._optimizer_options(),
        )
        phase = self._phase(fit, sampler, optimizer)
        with fit.progress.track("training", phase.n_periods, phase.unit) as track:
            losses = run_phase(phase, track)
        network = fit.network
        batch_size = self._inference_batch_size(fit.data.device)
        logits = forward_all(network, fit.data, batch_size)
        labels = logits.argmax(dim=1).cpu().numpy().astype(np.int64)
        network.requires_grad_(False)
        self.network_ = network
        self.labels_ = labels
        self._history(phase, losses)

    def _optimizer_options(self):
        """Keyword arguments of the optimizer beyond its learning rate."""
        return {}

    def _sampled_rows(self, batch_size):
        """Rows the sampler draws per step: all of a mini-batch by default."""
        return batch_size

    def _phase(self, fit, sampler, optimizer):
        """The :class:`NetworkPhase` that trains ``fit.network``.

        ``sampler`` gives mini-batches of ``_sampled_rows(batch_size_)``
        rows exactly; ``optimizer`` (``_optimizer``, at ``learning_rate``)
        trains the network's parameters.
        """
        raise NotImplementedError

    def _history(self, phase, losses):
        """Set ``n_iter_``, ``history_`` and the estimator's own attributes.

        ``losses`` holds the mean loss terms of each period.
        """
        raise NotImplementedError

    def _divergence_advice(self):
        return lower("learning_rate", self.learning_rate)

    def _collapse_advice(self):
        return (
            f"Try a lower learning_rate (now {self.learning_rate}) or fewer "
            "clusters."
        )

    # -- after the fit -------------------------------------------------------

    def _log_proba(self, X):
        network = self.network_
        return self._map_batches(
            X, network, lambda rows: torch.log_softmax(network(rows).float(), dim=1)
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
