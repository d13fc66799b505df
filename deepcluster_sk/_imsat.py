"""IMSATClusterer: information maximisation with self-augmented training.

The loss terms are pure tensor functions beside the estimator, so they can be
tested and reused without it.
"""

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._auto import auto_eps_scale
from ._softmax_head import (
    BaseSoftmaxClusterer,
    conditional_entropy,
    fixed_size_batches,
    kl_divergence_rows,
    marginal_entropy,
    stage_is_due,
    train_in_stages,
)
from ._train import make_adam

_HISTORY_KEYS = ("loss", "sat_loss", "conditional_entropy", "marginal_entropy")


def unit_rows(v):
    """Each row of ``v`` scaled to unit Euclidean norm (zero rows stay zero)."""
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)


def rpt_perturbation(noise, eps):
    """Random perturbation on the sphere of radius ``eps`` (per row).

    Parameters
    ----------
    noise : torch.Tensor of shape (n, d)
        Standard normal draws; normalised, they are uniform on the sphere.
    eps : torch.Tensor of shape (n,)
        Radius of each row's perturbation.
    """
    return eps.unsqueeze(1) * unit_rows(noise)


def vat_perturbation(network, x, p, eps, xi, noise):
    """Virtual adversarial perturbation of norm ``eps`` (one power iteration).

    The direction ``d`` that most increases ``KL(p(y|x) || p(y|x + r))`` is
    approximated by one power iteration from a random unit direction: the
    gradient of the KL divergence at ``x + xi * d``, normalised (Miyato et
    al.). The network's batch-norm running statistics are not updated.

    Parameters
    ----------
    network : SoftmaxMLP
    x : torch.Tensor of shape (n, d)
    p : torch.Tensor of shape (n, k)
        ``p(y|x)``, detached.
    eps : torch.Tensor of shape (n,)
        Norm of each row's perturbation.
    xi : float
        Step of the finite difference of the power iteration.
    noise : torch.Tensor of shape (n, d)
        Standard normal draws, the start of the power iteration.

    Returns
    -------
    r : torch.Tensor of shape (n, d)
        Detached perturbation, ``|r_i| = eps_i``.
    """
    d = unit_rows(noise).requires_grad_(True)
    log_q = torch.log_softmax(network(x + xi * d, update_stats=False), dim=1)
    (grad,) = torch.autograd.grad(kl_divergence_rows(p, log_q), d)
    return (eps.unsqueeze(1) * unit_rows(grad)).detach()


def imsat_loss_terms(p, mi_weight, marginal_weight):
    """``lambda * (H(Y|X) - mu * H(Y))`` on a batch, with its two entropies."""
    h_cond = conditional_entropy(p)
    h_marg = marginal_entropy(p)
    return mi_weight * (h_cond - marginal_weight * h_marg), h_cond, h_marg


def make_imsat_step(
    network, optimizer, *, augmentation, xi, mi_weight, marginal_weight
):
    """One optimizer step on the IMSAT loss of a batch.

    The step takes ``x`` and, with an augmentation, the per-row radii and
    the standard normal noise of the batch; it returns the detached loss
    terms ``[loss, R_SAT, H(Y|X), H(Y)]``.
    """

    def step(x, eps=None, noise=None):
        logits = network(x)
        p = torch.softmax(logits, dim=1)
        loss, h_cond, h_marg = imsat_loss_terms(p, mi_weight, marginal_weight)
        sat = torch.zeros((), device=x.device)
        if augmentation is not None:
            target = p.detach()
            if augmentation == "vat":
                r = vat_perturbation(network, x, target, eps, xi, noise)
            else:
                r = rpt_perturbation(noise, eps)
            log_q = torch.log_softmax(network(x + r, update_stats=False), dim=1)
            sat = kl_divergence_rows(target, log_q)
            loss = loss + sat
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return torch.stack([loss, sat, h_cond, h_marg]).detach()

    return step


@torch.no_grad()
def kth_neighbor_distances(data, k, batch_size):
    """Euclidean distance of every row of ``data`` to its ``k``-th neighbour.

    The row itself is not its own neighbour. Exact, by blocks of
    ``batch_size`` x ``batch_size`` distances on ``data.device``, keeping the
    ``k + 1`` smallest per row; ``k`` is capped at ``n_samples - 1``.

    Returns
    -------
    distances : torch.Tensor of shape (n_samples,) on ``data.device``
    """
    k = min(k, data.n_samples - 1)
    result = []
    for _, _, queries in data.batches(batch_size):
        q_sq = queries.pow(2).sum(dim=1, keepdim=True)
        best = None
        for _, _, keys in data.batches(batch_size):
            d2 = q_sq - 2.0 * queries @ keys.T + keys.pow(2).sum(dim=1)
            candidates = d2 if best is None else torch.cat([best, d2], dim=1)
            n_keep = min(k + 1, candidates.shape[1])
            best = candidates.topk(n_keep, dim=1, largest=False).values
        result.append(best[:, k].clamp_min(0.0).sqrt())
    return torch.cat(result)


class IMSATClusterer(BaseSoftmaxClusterer):
    """Information Maximizing Self-Augmented Training (IMSAT) clustering.

    A fully connected network with a softmax output ``p(y|x)`` is trained to
    maximise the mutual information ``I(X;Y) = H(Y) - H(Y|X)`` between
    input and cluster -- confident assignments (low ``H(Y|X)``) over
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
    hidden_dims : tuple of int or "auto", default="auto"
        Widths of the hidden layers; each is Linear, batch normalisation and
        ReLU. ``"auto"`` is ``(w, w)`` with ``w`` twice the number of
        features, a power of two between 64 and 1200: the paper's
        ``d-1200-1200-k`` network on MNIST, ``(128, 128)`` on digits.
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
        ``n_neighbors``-th nearest training sample, computed once per fit
        (exactly, in ``O(n^2 d)``). A float is the same radius for all
        samples.
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
    n_epochs : int, default=50
        Passes over the data (50 in the paper). Each epoch has
        ``n_samples // batch_size`` steps; the incomplete last batch of a
        shuffled epoch is dropped, so batches all have the same size.
    batch_size : int, default=250
        Mini-batch size (250 in the paper); capped at ``n_samples``.
        ``p(y)`` is estimated on each batch, so it should hold many samples
        per cluster.
    learning_rate : float, default=0.002
        Learning rate of Adam (2e-3 in the authors' implementation).
    weight_decay : float, default=0.0
        L2 penalty of Adam on every parameter; RIM's regulariser when
        ``augmentation=None``.
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        Where to train: ``"auto"`` uses CUDA when available. ``"cuda:N"``
        selects a GPU.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, mini-batch order and the perturbations.
    verbose : int, default=0
        0 is silent; 1 prints the loss terms about ten times; 2 every epoch.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training sample.
    network_ : torch.nn.Module
        The trained network; it maps rows to the logits of ``p(y|x)``.
    eps_ : ndarray of shape (n_samples,)
        Perturbation radius of each training sample (empty when
        ``augmentation=None``).
    hidden_dims_, batch_size_, n_epochs_, eps_scale_
        The values used, with ``"auto"`` resolved for the training data.
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

    _parameter_constraints: dict = {
        **BaseSoftmaxClusterer._parameter_constraints,
        "augmentation": [StrOptions({"vat", "rpt"}), None],
        "eps": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "eps_scale": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "xi": [Interval(Real, 0, None, closed="neither")],
        "mi_weight": [Interval(Real, 0, None, closed="left")],
        "marginal_weight": [Interval(Real, 0, None, closed="left")],
        "n_epochs": [Interval(Integral, 0, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_clusters=10,
        *,
        hidden_dims="auto",
        augmentation="vat",
        eps="auto",
        eps_scale="auto",
        n_neighbors=10,
        xi=10.0,
        mi_weight=0.1,
        marginal_weight=4.0,
        n_epochs=50,
        batch_size=250,
        learning_rate=0.002,
        weight_decay=0.0,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.n_clusters = n_clusters
        self.hidden_dims = hidden_dims
        self.augmentation = augmentation
        self.eps = eps
        self.eps_scale = eps_scale
        self.n_neighbors = n_neighbors
        self.xi = xi
        self.mi_weight = mi_weight
        self.marginal_weight = marginal_weight
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _radii(self, data, settings):
        """Per-sample perturbation radius on the device (empty without SAT)."""
        if self.augmentation is None:
            return torch.zeros(0, device=data.device)
        if self.eps == "auto":
            distances = kth_neighbor_distances(
                data, self.n_neighbors, self._inference_batch_size(data.device)
            )
            return settings["eps_scale"] * distances
        return torch.full((data.n_samples,), float(self.eps), device=data.device)

    @property
    def _passes_per_step(self):
        return {"vat": 3, "rpt": 2, None: 1}[self.augmentation]

    def _settings(self, n_samples, n_features):
        eps_scale = self.eps_scale
        if eps_scale == "auto":
            eps_scale = auto_eps_scale(n_features)
        return {
            **super()._settings(n_samples, n_features),
            "n_epochs": self.n_epochs,
            "eps_scale": eps_scale,
        }

    def _fit(self, data, settings, rng, generator):
        self._check_enough_samples(data)
        progress = self._progress()
        network = self._network(data.n_features, settings, generator, data.device)
        n_epochs, batch_size = settings["n_epochs"], settings["batch_size"]
        optimizer = make_adam(network.parameters(), self.learning_rate)
        for group in optimizer.param_groups:
            group["weight_decay"] = self.weight_decay
        radii = self._radii(data, settings)
        step = make_imsat_step(
            network,
            optimizer,
            augmentation=self.augmentation,
            xi=self.xi,
            mi_weight=self.mi_weight,
            marginal_weight=self.marginal_weight,
        )

        def batch_inputs(index):
            noise = torch.randn((index.numel(), data.n_features), generator=generator)
            return radii.index_select(0, index), noise.to(data.device)

        def after_epoch(epoch, terms):
            if stage_is_due(self.verbose, epoch + 1, n_epochs):
                values = ", ".join(f"{k} {v:.4f}" for k, v in zip(_HISTORY_KEYS, terms))
                progress.message(f"epoch {epoch + 1}/{n_epochs}: {values}")

        network.train()
        terms = train_in_stages(
            step,
            data,
            fixed_size_batches(data.n_samples, batch_size, generator, data.device),
            n_stages=n_epochs,
            steps_per_stage=data.n_samples // min(batch_size, data.n_samples),
            batch_inputs=None if self.augmentation is None else batch_inputs,
            after_stage=after_epoch,
            monitor=self._divergence_monitor(network, "epoch"),
        )
        labels = self._training_labels(network, data)
        network.requires_grad_(False)
        self.network_ = network
        self.labels_ = labels
        self.eps_ = radii.cpu().numpy()
        self.n_iter_ = n_epochs
        self.history_ = {
            key: [float(epoch_terms[i]) for epoch_terms in terms]
            for i, key in enumerate(_HISTORY_KEYS)
        }
        self.history_["stop_reason"] = "completed"

    def _collapse_advice(self):
        return (
            f"Try a lower learning_rate (now {self.learning_rate}), a larger "
            f"marginal_weight (now {self.marginal_weight}), which favours "
            "balanced clusters, or fewer clusters."
        )
