"""IMSATClusterer: information maximisation with self-augmented training.

The loss terms are pure tensor functions beside the estimator, so they can be
tested and reused without it; :class:`IMSATPhase` trains on them.
"""

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from .._auto import imsat_settings
from .._neighbour_search import kth_distances
from .._torch._batch_norm import batch_statistics_only
from .._torch._information import (
    conditional_entropy,
    kl_divergence,
    marginal_entropy,
)
from .._training._engine import PeriodEnd
from ._discriminative import BaseDiscriminativeClusterer, NetworkPhase
from ._parameters import Default, Param

_HISTORY_KEYS = ("loss", "sat_loss", "conditional_entropy", "marginal_entropy")


def _per_sample(values, like):
    """``values`` of shape (n,) shaped to broadcast over the samples ``like``."""
    return values.view(-1, *([1] * (like.ndim - 1)))


def unit_rows(v):
    """Each sample of ``v`` scaled to unit Euclidean norm (zero ones stay zero)."""
    return v / _per_sample(v.flatten(1).norm(dim=1).clamp_min(1e-12), v)


def rpt_perturbation(noise, eps):
    """Random perturbation on the sphere of radius ``eps`` (per sample).

    Parameters
    ----------
    noise : torch.Tensor of shape (n, ...)
        Standard normal draws; normalised, they are uniform on the sphere.
    eps : torch.Tensor of shape (n,)
        Radius of each sample's perturbation.
    """
    return _per_sample(eps, noise) * unit_rows(noise)


def vat_perturbation(network, x, p, eps, xi, noise):
    """Virtual adversarial perturbation of norm ``eps`` (one power iteration).

    The direction ``d`` that most increases ``KL(p(y|x) || p(y|x + r))`` is
    approximated by one power iteration from a random unit direction: the
    gradient of the KL divergence at ``x + xi * d``, normalised (Miyato et
    al.). The network's running statistics of normalisation are not
    updated.

    Parameters
    ----------
    network : torch.nn.Module
        Maps a batch to logits.
    x : torch.Tensor of shape (n, ...)
    p : torch.Tensor of shape (n, k)
        ``p(y|x)``, detached.
    eps : torch.Tensor of shape (n,)
        Norm of each sample's perturbation.
    xi : float
        Step of the finite difference of the power iteration.
    noise : torch.Tensor of the shape of ``x``
        Standard normal draws, the start of the power iteration.

    Returns
    -------
    r : torch.Tensor of the shape of ``x``
        Detached perturbation, ``|r_i| = eps_i``.
    """
    d = unit_rows(noise).requires_grad_(True)
    with batch_statistics_only(network):
        log_q = torch.log_softmax(network(x + xi * d).float(), dim=1)
    (grad,) = torch.autograd.grad(kl_divergence(p, log_q, "batchmean"), d)
    return (_per_sample(eps, grad) * unit_rows(grad)).detach()


def imsat_loss_terms(p, mi_weight, marginal_weight):
    """``lambda * (H(Y|X) - mu * H(Y))`` on a batch, with its two entropies."""
    h_cond = conditional_entropy(p)
    h_marg = marginal_entropy(p)
    return mi_weight * (h_cond - marginal_weight * h_marg), h_cond, h_marg


class IMSATPhase(NetworkPhase):
    """IMSAT's training: one epoch per period, the loss terms of the paper.

    Each step takes a batch and, with an augmentation, the perturbation
    radii of its samples and standard normal noise drawn for it; its loss
    terms are ``[loss, R_SAT, H(Y|X), H(Y)]``.
    """

    def __init__(self, *args, radii, generator, augmentation, xi, mi_weight,
                 marginal_weight, **kwargs):
        super().__init__(*args, **kwargs)
        self.radii = radii
        self.generator = generator
        self.augmentation = augmentation
        self.xi = xi
        self.mi_weight = mi_weight
        self.marginal_weight = marginal_weight

    def batch_inputs(self, index):
        x = self.data.take(index)
        if self.augmentation is None:
            return (x,)
        shape = (index.numel(), *self.data.sample_shape)
        noise = torch.randn(shape, generator=self.generator)
        return x, self.radii.index_select(0, index), noise.to(self.data.device)

    def example_inputs(self):
        x = self._full_batch(self.data.sample_shape)
        if self.augmentation is None:
            return (x,)
        return x, self._full_batch(()), self._full_batch(self.data.sample_shape)

    def loss(self, x, eps=None, noise=None):
        network = self.network
        p = torch.softmax(network(x).float(), dim=1)
        loss, h_cond, h_marg = imsat_loss_terms(p, self.mi_weight, self.marginal_weight)
        sat = torch.zeros((), device=x.device)
        if self.augmentation is not None:
            target = p.detach()
            if self.augmentation == "vat":
                r = vat_perturbation(network, x, target, eps, self.xi, noise)
            else:
                r = rpt_perturbation(noise, eps)
            with batch_statistics_only(network):
                log_q = torch.log_softmax(network(x + r).float(), dim=1)
            sat = kl_divergence(target, log_q, "batchmean")
            loss = loss + sat
        return torch.stack([loss, sat, h_cond, h_marg])

    def end_period(self, period, mean_loss):
        values = {k: f"{v:.4f}" for k, v in zip(_HISTORY_KEYS, mean_loss)}
        return PeriodEnd(period + 1, mean_loss, values)


class IMSATClusterer(BaseDiscriminativeClusterer):
    """Information Maximizing Self-Augmented Training (IMSAT) clustering.

    A network (fully connected by default) with a softmax output ``p(y|x)``
    is trained to maximise the mutual information ``I(X;Y) = H(Y) - H(Y|X)``
    between input and cluster -- confident assignments (low ``H(Y|X)``) over
    balanced clusters (high ``H(Y)``, with ``p(y)`` estimated on the
    mini-batch) -- while self-augmented training (SAT) keeps ``p(y|x)``
    close to ``p(y|T(x))`` for a perturbation ``T`` (Hu et al., 2017). Each
    mini-batch step minimises

        ``R_SAT - lambda * (mu * H(Y) - H(Y|X))``

    where ``R_SAT`` is the mean ``KL(p(y|x) || p(y|T(x)))`` over the batch.
    Without augmentation this is regularised information maximisation
    (RIM, Krause et al., 2010) with weight decay as the regulariser.

    Parameters
    ----------
    n_clusters : int, default=10
        Number of clusters ``k``, the size of the softmax output.
    batch_size : int, default=250
        Mini-batch size (250 in the paper); capped at ``n_samples``.
        ``p(y)`` is estimated on each batch, so it should hold many samples
        per cluster.
    hidden_dims : tuple of int or "auto", default="auto"
        Widths of the hidden layers of the default network; each is Linear, batch normalisation and
        ReLU. ``"auto"`` is ``(w, w)`` with ``w`` twice the number of
        features, a power of two between 64 and 1200: the paper's
        ``d-1200-1200-k`` network on MNIST, ``(128, 128)`` on digits.
    network : None, torch.nn.Module subclass or instance, default=None
        The network, mapping a batch to ``(batch, n_clusters)`` logits.
        ``None`` builds :class:`~deepcluster_sk.nn.ClusterMLP` with
        ``hidden_dims``. A class is built at every fit with the
        ``network__<name>`` parameters, and with ``input_shape``,
        ``n_clusters`` and ``generator`` (seeded from ``random_state``)
        where its constructor takes them; an instance is deep-copied at
        every fit and trained from its own weights. The perturbed forward
        passes of VAT and RPT leave the running statistics of its
        normalisation layers alone.
    learning_rate : float, default=0.002
        Learning rate of Adam (2e-3 in the authors' implementation).
    augmentation : {"vat", "rpt"} or None, default="vat"
        The perturbation ``T`` of self-augmented training. ``"vat"``: virtual
        adversarial perturbation, the direction that most changes
        ``p(y|x)`` (one power iteration), of norm ``eps``. ``"rpt"``: a
        random point on the sphere of radius ``eps`` around ``x``. ``None``:
        no SAT term, plain RIM (use ``weight_decay`` to regularise).
    eps : "auto" or float, default="auto"
        Norm of the perturbation, in the units of ``X``. ``"auto"`` is the
        paper's adaptive radius ``eps_i = eps_scale * sigma_t(x_i)``, where
        ``sigma_t(x_i)`` is the Euclidean distance from ``x_i`` to its
        ``n_neighbors``-th nearest training sample, computed once per fit:
        exactly below 20 000 samples (in ``O(n^2 d)``), by pynndescent's
        approximate search from there on (installed with the ``umap``
        extra; without it, exactly, with a warning). A float is the same
        radius for all samples.
    eps_scale : float or "auto", default="auto"
        The paper's ``alpha``, the factor of the adaptive radius; only used
        with ``eps="auto"``. ``"auto"`` is the paper's 0.25 from 250
        features on (images such as MNIST, where 1.0 did much worse) and 1.0
        below (digits: 0.89 mean ACC against 0.75, and no seed far behind;
        see ``benchmarks/results/auto_defaults.md``).
    n_neighbors : int, default=10
        The paper's ``t``: which neighbour sets the adaptive radius.
    xi : float, default=10.0
        Finite-difference step of VAT's power iteration (10 in the authors'
        implementation). Only used with ``augmentation="vat"``.
    mi_weight : float, default=0.1
        The paper's ``lambda``: weight of the information term against
        ``R_SAT``.
    marginal_weight : float, default=4.0
        The paper's ``mu``: weight of the marginal entropy ``H(Y)`` against
        the conditional entropy ``H(Y|X)``, 4 for MNIST, placed on ``H(Y)``
        as in the authors' implementation [4]_.
        Larger values push harder towards equal cluster sizes.
    n_epochs : int or "auto", default="auto"
        Passes over the data. Each epoch has ``n_samples // batch_size``
        steps; the incomplete last batch of a shuffled epoch is dropped, so
        batches all have the same size. ``"auto"``: the paper's 50, or more
        where 50 epochs would be fewer than 300 steps (small data sets that
        fit in a batch or two).
    weight_decay : float, default=0.0
        L2 penalty of Adam on every parameter; RIM's regulariser when
        ``augmentation=None``.
    <device>
    <precision>
    <distributed>
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, mini-batch order and the perturbations.
    verbose : int, default=0
        0 is silent; 1 prints the loss terms about ten times; 2 every epoch.
    **network_params
        ``network__<name>=value``: keyword arguments of the ``network``
        class, parameters of the estimator like any other.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training sample.
    network_ : torch.nn.Module
        The trained network; it maps rows to the logits of ``p(y|x)``.
    eps_ : ndarray of shape (n_samples,)
        Perturbation radius of each training sample (empty when
        ``augmentation=None``).
    hidden_dims_, batch_size_, n_epochs_, eps_scale_, precision_
        The values used, with ``"auto"`` resolved for the training data (no
        ``hidden_dims_`` with a ``network`` of your own).
    n_iter_ : int
        Epochs run.
    history_ : dict
        Mean over each epoch's mini-batches of ``"loss"`` (the objective),
        ``"sat_loss"`` (``R_SAT``, 0 without augmentation),
        ``"conditional_entropy"`` (``H(Y|X)``) and ``"marginal_entropy"``
        (``H(Y)`` on a batch), in nats; ``"stop_reason"``: ``"completed"``,
        as training runs a fixed number of epochs.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column
        names.

    See Also
    --------
    DACClusterer : Another clusterer with a softmax output, trained on
        pairwise similarities.
    DECClusterer : Clustering in an autoencoder's embedding.

    Notes
    -----
    ``predict_proba`` and ``transform`` return ``p(y|x)``; ``score`` is the
    estimated mutual information on the given data. Batch normalisation
    uses the running statistics at prediction time. The eps radius depends
    on the scale of ``X``: the paper's MNIST pixels lie in [-1, 1]. Training
    runs in float32; a model fitted on a GPU pickles and predicts on a
    machine without one.

    Training that diverges (a loss that is no longer finite, or weights
    whose norm grows more than 10 000-fold) raises
    :class:`~deepcluster_sk.exceptions.TrainingDivergedError` naming
    ``learning_rate``; ``labels_`` that use fewer than ``n_clusters``
    clusters warn with :class:`~sklearn.exceptions.ConvergenceWarning`.

    References
    ----------
    .. [1] W. Hu, T. Miyato, S. Tokui, E. Matsumoto, M. Sugiyama. "Learning
       Discrete Representations via Information Maximizing Self-Augmented
       Training". ICML 2017.
    .. [2] A. Krause, P. Perona, R. Gomes. "Discriminative Clustering by
       Regularized Information Maximization". NIPS 2010.
    .. [3] T. Miyato, S. Maeda, M. Koyama, K. Nakae, S. Ishii. "Distributional
       Smoothing with Virtual Adversarial Training". ICLR 2016.
    .. [4] The authors' Chainer implementation,
       https://github.com/weihua916/imsat (``imsat_cluster.py``): batch
       normalisation in the hidden layers, Adam with learning rate 2e-3,
       batch 250, 50 epochs, ``xi = 10``, ``eps_i = 0.25 * sigma_10(x_i)``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from deepcluster_sk import IMSATClusterer
    >>> X = load_digits().data / 16
    >>> model = IMSATClusterer(n_clusters=10, hidden_dims=(64,), n_epochs=2,
    ...                        random_state=0).fit(X)
    >>> model.labels_.shape
    (1797,)
    >>> model.predict_proba(X[:2]).sum(axis=1).round(4)
    array([1., 1.], dtype=float32)
    """

    n_clusters = Default(10)
    batch_size = Default(250)
    learning_rate = Default(0.002)
    augmentation = Param("vat", StrOptions({"vat", "rpt"}), None)
    eps = Param("auto", StrOptions({"auto"}), Interval(Real, 0, None, closed="left"))
    eps_scale = Param(
        "auto", Interval(Real, 0, None, closed="left"), StrOptions({"auto"})
    )
    n_neighbors = Param(10, Interval(Integral, 1, None, closed="left"))
    xi = Param(10.0, Interval(Real, 0, None, closed="neither"))
    mi_weight = Param(0.1, Interval(Real, 0, None, closed="left"))
    marginal_weight = Param(4.0, Interval(Real, 0, None, closed="left"))
    n_epochs = Param("auto", Interval(Integral, 0, None, closed="left"),
                     StrOptions({"auto"}))
    weight_decay = Param(0.0, Interval(Real, 0, None, closed="left"))

    @property
    def _passes_per_step(self):
        return {"vat": 3, "rpt": 2, None: 1}[self.augmentation]

    def _settings(self, n_samples, n_features):
        settings = super()._settings(n_samples, n_features)
        return {
            **settings,
            **imsat_settings(n_samples, n_features, settings["batch_size"],
                             n_epochs=self.n_epochs, eps_scale=self.eps_scale),
        }

    def _radii(self, fit):
        """Per-sample perturbation radius on the device (empty without SAT)."""
        data = fit.data
        if self.augmentation is None:
            return torch.zeros(0, device=data.device)
        if self.eps == "auto":
            batch_size = self._inference_batch_size(data.device)
            # Once, by rank 0 of a distributed fit.
            distances = data.replicas.compute_once(
                lambda: kth_distances(data, self.n_neighbors, batch_size, fit.rng).cpu(),
                rng=fit.rng,
            )
            return fit.settings["eps_scale"] * distances.to(data.device)
        return torch.full((data.n_samples,), float(self.eps), device=data.device)

    def _optimizer_options(self):
        return {"weight_decay": self.weight_decay}

    def _phase(self, fit, sampler, optimizer):
        return IMSATPhase(
            fit.network,
            fit.data,
            sampler,
            optimizer,
            fit.settings["n_epochs"],
            sampler.steps_per_epoch,
            self._divergence_advice(),
            radii=self._radii(fit),
            generator=fit.generator,
            augmentation=self.augmentation,
            xi=self.xi,
            mi_weight=self.mi_weight,
            marginal_weight=self.marginal_weight,
        )

    def _history(self, phase, losses):
        self.eps_ = phase.radii.cpu().numpy()
        self.n_iter_ = phase.n_periods
        self.history_ = {
            key: [float(epoch_terms[i]) for epoch_terms in losses]
            for i, key in enumerate(_HISTORY_KEYS)
        }
        self.history_["stop_reason"] = "completed"

    def _collapse_advice(self):
        return (
            f"Try a lower learning_rate (now {self.learning_rate}), a larger "
            f"marginal_weight (now {self.marginal_weight}), which favours "
            "balanced clusters, or fewer clusters."
        )
