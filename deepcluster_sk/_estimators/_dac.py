"""DACClusterer: Deep Adaptive Clustering, pairwise self-labelling.

The threshold schedule, the pairwise loss and the neighbour term are pure
functions beside the estimator, so they can be tested and reused without
it; :class:`DACPhase` trains on them.
"""

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from .._auto import dac_stage_settings
from .._neighbour_search import neighbour_graph
from .._torch._information import LOG_EPS
from .._torch._precision import full_precision
from .._training._engine import PeriodEnd
from ._discriminative import BaseDiscriminativeClusterer, NetworkPhase
from ._parameters import Default, Param

#: Slopes of the thresholds in lambda: ``u = u0 - lambda``,
#: ``l = l0 + 0.1 lambda`` (Chang et al., 2017).
_UPPER_SLOPE, _LOWER_SLOPE = 1.0, 0.1


def threshold_schedule(upper, lower, rate):
    """DAC's adaptive thresholds ``(u, l)`` for every stage of training.

    Stage ``s`` uses ``lambda_s = s * 1.1 * rate`` -- one gradient step of
    size ``rate`` on ``E = ... + u(lambda) - l(lambda)``, whose derivative
    in ``lambda`` is ``-1.1`` -- and ``u = upper - lambda_s``,
    ``l = lower + 0.1 lambda_s``. Training goes on while ``u > l``.

    Parameters
    ----------
    upper, lower : float
        Initial thresholds ``u(0)`` and ``l(0)``, ``lower < upper``.
    rate : float
        The paper's ``eta``.

    Returns
    -------
    thresholds : list of (float, float)
        ``(u, l)`` of each stage; 46 stages with the paper's values
        (0.95, 0.455, 0.009).
    """
    step = (_UPPER_SLOPE + _LOWER_SLOPE) * rate
    schedule = []
    while True:
        lam = len(schedule) * step
        u, l = upper - _UPPER_SLOPE * lam, lower + _LOWER_SLOPE * lam
        if u <= l:
            return schedule
        schedule.append((u, l))


@full_precision
def normalized_outputs(logits):
    """Softmax outputs scaled to unit length: the paper's label features."""
    p = torch.softmax(logits, dim=1)
    return p / p.norm(dim=1, keepdim=True)


def select_pairs(similarity, upper, lower):
    """Positive and negative pair masks; the diagonal is never selected.

    ``similarity > upper`` marks a pair of the same cluster,
    ``similarity < lower`` a pair of different clusters; pairs in between
    are ignored.
    """
    off_diagonal = ~torch.eye(
        similarity.shape[0], dtype=torch.bool, device=similarity.device
    )
    positive = (similarity > upper) & off_diagonal
    negative = (similarity < lower) & off_diagonal
    return positive, negative


@full_precision
def dac_pair_loss(features, upper, lower):
    """Binary cross-entropy of the selected pairs of a batch.

    Parameters
    ----------
    features : torch.Tensor of shape (n, k)
        Unit-length, non-negative label features, so ``l_i . l_j`` lies in
        [0, 1] and is the cosine similarity.
    upper, lower : float or 0-d tensor
        Current thresholds.

    Returns
    -------
    loss : torch.Tensor
        ``-sum_selected [r_ij log s_ij + (1 - r_ij) log(1 - s_ij)]`` divided
        by the number of off-diagonal pairs ``n (n - 1)``.
    positive, negative : torch.Tensor of bool, shape (n, n)
        The selected pairs.
    """
    similarity = features @ features.T
    positive, negative = select_pairs(similarity.detach(), upper, lower)
    # One log per pair, of s_ij for a positive and 1 - s_ij otherwise, and
    # masks applied with where: multiplying by the boolean masks converted
    # them to floats three times a step (60 us of a 2 ms step on a table).
    same_or_not = torch.where(positive, similarity, 1.0 - similarity)
    log_likelihood = torch.log(same_or_not.clamp(min=LOG_EPS))
    total = -torch.where(positive | negative, log_likelihood, 0.0).sum()
    n = features.shape[0]
    return total / max(n * (n - 1), 1), positive, negative


@full_precision
def neighbour_agreement_loss(features):
    """Mean ``-log(l_i . l_j)`` of samples paired with one of their neighbours.

    Parameters
    ----------
    features : torch.Tensor of shape (2 m, k)
        Unit-length, non-negative label features: the first ``m`` rows are
        samples, the last ``m`` one neighbour of each, in the same order.

    Returns
    -------
    loss : torch.Tensor
        The binary cross-entropy of the ``m`` pairs, all labelled "same
        cluster".
    agreement : torch.Tensor
        Their mean similarity ``l_i . l_j``, in [0, 1].
    """
    samples, neighbours = features.chunk(2)
    similarity = (samples * neighbours).sum(dim=1)
    return -torch.log(similarity.clamp(min=LOG_EPS)).mean(), similarity.mean()


class DACPhase(NetworkPhase):
    """DAC's training: one period per pair of thresholds of the schedule.

    The thresholds are 0-d tensors on the device, filled before each stage,
    so the step keeps the same inputs' shapes and devices all along the
    schedule. Its loss terms are ``[loss, positive fraction, negative
    fraction]``, and the neighbours' mean agreement with ``neighbours``.

    With ``neighbours`` (row numbers, shape ``(n_samples, n_neighbors)``),
    each mini-batch is the sampled rows followed by one neighbour of each,
    drawn at random from ``generator``; all its rows take part in the pair
    loss, and ``neighbour_weight`` times :func:`neighbour_agreement_loss`
    is added to it.
    """

    unit = "stage"

    def __init__(self, *args, schedule, neighbours=None, neighbour_weight=0.0,
                 generator=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.schedule = schedule
        self.neighbours = neighbours
        self.neighbour_weight = neighbour_weight
        self.generator = generator
        self.upper = torch.zeros((), device=self.data.device)
        self.lower = torch.zeros((), device=self.data.device)

    def before_period(self, period):
        self.upper.fill_(self.schedule[period][0])
        self.lower.fill_(self.schedule[period][1])

    def batch_inputs(self, index):
        if self.neighbours is not None:
            column = torch.randint(
                self.neighbours.shape[1], index.shape, generator=self.generator
            )
            neighbour = self.neighbours[index, column.to(index.device)]
            index = torch.cat([index, neighbour])
        return self.data.take(index), self.upper, self.lower

    def example_inputs(self):
        x = self._full_batch(self.data.sample_shape)
        if self.neighbours is not None:
            x = torch.cat([x, x])
        return x, self.upper, self.lower

    def loss(self, x, upper, lower):
        features = normalized_outputs(self.network(x))
        loss, positive, negative = dac_pair_loss(features, upper, lower)
        n_pairs = max(x.shape[0] * (x.shape[0] - 1), 1)
        terms = [loss, positive.sum() / n_pairs, negative.sum() / n_pairs]
        if self.neighbours is not None:
            neighbour_loss, agreement = neighbour_agreement_loss(features)
            terms[0] = loss + self.neighbour_weight * neighbour_loss
            terms.append(agreement)
        return torch.stack(terms)

    def end_period(self, period, mean_loss):
        u, l = self.schedule[period]
        values = {
            "u": f"{u:.3f}",
            "l": f"{l:.3f}",
            "loss": f"{mean_loss[0]:.4f}",
            "positive pairs": f"{mean_loss[1]:.2%}",
            "negative pairs": f"{mean_loss[2]:.2%}",
        }
        if self.neighbours is not None:
            values["neighbour agreement"] = f"{mean_loss[3]:.3f}"
        return PeriodEnd(period + 1, mean_loss, values)


class DACClusterer(BaseDiscriminativeClusterer):
    """Deep Adaptive Clustering (DAC).

    Clustering recast as binary classification of pairs (Chang et al.,
    2017). A network (fully connected by default) with a softmax output
    gives each sample a label feature ``l_i``, the softmax scaled to unit
    length, so ``l_i . l_j`` is the cosine similarity of two samples'
    assignments. In every mini-batch,
    pairs more similar than an upper threshold ``u`` are taken as "same
    cluster", pairs less similar than a lower threshold ``l`` as "different
    clusters", and the rest is ignored; the network is trained on the binary
    cross-entropy of the selected pairs. Training starts with only the most
    confident pairs and admits more as ``u`` decreases and ``l`` increases,
    until they meet.

    By default each sample of a mini-batch also comes with one of its
    ``n_neighbors`` nearest neighbours in the input, and the loss adds
    ``neighbor_weight`` times the cross-entropy of these pairs as "same
    cluster" (the neighbour consistency of SCAN, Van Gansbeke et al., 2020).
    The paper's DAC (``neighbor_weight=0``) only sees what the network
    already groups; the neighbours say which samples belong together from
    the start. On scikit-learn's digits they raised the mean ACC from 0.73
    to 0.89 (``benchmarks/results/tuning/dac_neighbours.md``).

    Parameters
    ----------
    n_clusters : int, default=10
        Number of clusters, the size of the softmax output.
    batch_size : int, default=128
        Mini-batch size (128 in the paper), capped at ``n_samples``; all
        ``batch_size * (batch_size - 1)`` pairs of a batch are candidates.
        With the neighbour term, half of a batch is drawn at random and the
        other half are their neighbours (an odd ``batch_size`` loses a row;
        1 gives 2 rows).
    hidden_dims : tuple of int, default=(256, 256)
        Widths of the hidden layers; each is Linear, batch normalisation and
        ReLU. The paper uses convolutional networks on images; on
        scikit-learn's digits, this fully connected network did better
        than wider ones (500 or 1200 units per layer).
    network : None, torch.nn.Module subclass or instance, default=None
        The network, mapping a batch to ``(batch, n_clusters)`` logits, as in
        :class:`IMSATClusterer`. ``None`` builds
        :class:`~deepcluster_sk.nn.ClusterMLP` with ``hidden_dims``, batch
        normalisation of its logits and ``output_relu``; the paper trains a
        convolutional network on images, whose logits a network of your own
        should also normalise over the batch (see ``output_relu``).
    learning_rate : float, default=0.001
        Learning rate of RMSProp, the paper's optimizer and learning rate
        (on digits it beat Adam: mean ACC 0.75 against 0.72 over 5 seeds).
    upper_threshold : float, default=0.95
        ``u(0)``, the paper's initial upper threshold.
    lower_threshold : float, default=0.455
        ``l(0)``, the paper's initial lower threshold.
    threshold_rate : float, default=0.009
        The paper's ``eta``: ``lambda`` grows by ``1.1 * eta`` per stage,
        with ``u = u(0) - lambda`` and ``l = l(0) + 0.1 lambda``. Training
        stops when ``u <= l``: 46 stages with the defaults.
    steps_per_stage : int, "epoch" or "auto", default="auto"
        Mini-batch steps at each pair of thresholds. ``"epoch"`` is as many
        rows as one pass over the data (``n_samples // batch_size`` steps),
        the paper's choice on MNIST. ``"auto"`` is four passes, between 10
        and 50 steps: 50 (the value measured on digits) from about 1 600
        samples on, 10 on a table of a few hundred rows, where 50 cost five
        times the time for 0.007 more ACC
        (``benchmarks/results/auto_defaults.md``).
    output_relu : bool, default=False
        The logits always go through batch normalisation, as in the paper's
        network: it keeps the outputs of a fresh network apart, so that not
        every pair starts as "same cluster" (without it DAC collapses to one
        cluster). ``True`` adds the paper's ReLU after it, before the
        softmax: a sample whose normalised logits are all negative then gets
        the uniform distribution, and such samples can take over as one
        degenerate cluster, which happens often with few clusters (3 blobs).
        On digits both reached the same mean accuracy with the paper's DAC
        (0.75 over 5 seeds).
    n_neighbors : int, default=10
        Neighbours each sample may be paired with, found once at the start
        of ``fit`` by Euclidean distance in the input (scale its features,
        e.g. with ``StandardScaler``, as for k-means): exactly below 20 000
        samples, by pynndescent (installed with the ``umap`` extra) from
        there on. Out-of-core input (``RowChunks``) is searched exactly
        within each chunk, so that a mini-batch's neighbours are in the
        chunk it was drawn from. Capped at ``n_samples - 1``.
    neighbor_weight : float, default=0.3
        Weight of the neighbour term in the loss; 0 is the paper's DAC,
        with no neighbour search. 0.3 did better than 0.1 and 1 on six
        small tables (mean ACC 0.890 against 0.877 and 0.877; the paper's
        DAC 0.853) and on digits (0.890 against 0.855 and 0.827); 1 merged
        clusters.
    <device>
    <precision>
    <distributed>
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, mini-batch order and the neighbours
        drawn.
    verbose : int, default=0
        0 is silent; 1 prints the loss about ten times; 2 every stage.
    **network_params
        ``network__<name>=value``: keyword arguments of the ``network``
        class, parameters of the estimator like any other.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training sample.
    network_ : torch.nn.Module
        The trained network; it maps rows to the logits of the softmax
        output.
    hidden_dims_, batch_size_, steps_per_stage_, precision_
        The values used, with ``"auto"`` resolved for the training data (no
        ``hidden_dims_`` with a ``network`` of your own).
    n_iter_ : int
        Mini-batch steps run.
    history_ : dict
        Per stage: ``"upper_threshold"`` and ``"lower_threshold"``, and the
        means over its mini-batches of ``"loss"``, ``"positive_fraction"``
        and ``"negative_fraction"`` (fractions of the pairs of a batch
        selected as positive and negative); with the neighbour term,
        ``"neighbor_agreement"``, the mean similarity ``l_i . l_j`` of
        samples and their neighbours. ``"stop_reason"``:
        ``"completed"``, as training runs the whole threshold schedule.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column
        names.

    See Also
    --------
    IMSATClusterer : A softmax-output clusterer trained by information
        maximisation.
    DECClusterer : Clustering in an autoencoder's embedding.

    Notes
    -----
    ``predict`` is the argmax of the softmax output, ``predict_proba`` and
    ``transform`` the softmax output itself (not the unit-length label
    feature). ``score`` is the estimated mutual information between input
    and cluster, ``H(Y) - H(Y|X)``, the same label-free criterion as
    :meth:`IMSATClusterer.score`, so the two compare. The loss is the sum
    over selected pairs divided by all off-diagonal pairs of the batch, so
    its scale follows how many pairs are selected.

    Training that diverges (a loss that is no longer finite, or weights
    whose norm grows more than 10 000-fold) raises
    :class:`~deepcluster_sk.exceptions.TrainingDivergedError` naming
    ``learning_rate``; ``labels_`` that use fewer than ``n_clusters``
    clusters warn with :class:`~sklearn.exceptions.ConvergenceWarning`.

    References
    ----------
    .. [1] J. Chang, L. Wang, G. Meng, S. Xiang, C. Pan. "Deep Adaptive Image
       Clustering". ICCV 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from deepcluster_sk import DACClusterer
    >>> X = load_digits().data / 16
    >>> model = DACClusterer(n_clusters=10, hidden_dims=(64,), steps_per_stage=2,
    ...                      random_state=0).fit(X)
    >>> model.transform(X).shape
    (1797, 10)
    """

    n_clusters = Default(10)
    batch_size = Default(128)
    hidden_dims = Default((256, 256))
    upper_threshold = Param(0.95, Interval(Real, 0, 1, closed="both"))
    lower_threshold = Param(0.455, Interval(Real, 0, 1, closed="both"))
    threshold_rate = Param(0.009, Interval(Real, 0, None, closed="neither"))
    steps_per_stage = Param(
        "auto", Interval(Integral, 1, None, closed="left"),
        StrOptions({"epoch", "auto"}),
    )
    output_relu = Param(False, "boolean")
    n_neighbors = Param(10, Interval(Integral, 1, None, closed="left"))
    neighbor_weight = Param(0.3, Interval(Real, 0, None, closed="left"))

    _optimizer = "rmsprop"

    def _network_options(self):
        return {"output_batch_norm": True, "output_relu": self.output_relu}

    def _check_params(self):
        super()._check_params()
        if self.lower_threshold >= self.upper_threshold:
            raise ValueError(
                f"lower_threshold={self.lower_threshold} must be smaller than "
                f"upper_threshold={self.upper_threshold}."
            )

    def _settings(self, n_samples, n_features):
        settings = super()._settings(n_samples, n_features)
        return {
            **settings,
            **dac_stage_settings(
                n_samples, settings["batch_size"], steps_per_stage=self.steps_per_stage
            ),
        }

    @property
    def _uses_neighbours(self):
        return self.neighbor_weight > 0

    def _sampled_rows(self, batch_size):
        return max(1, batch_size // 2) if self._uses_neighbours else batch_size

    def _neighbour_graph(self, fit):
        """Each training sample's ``n_neighbors`` nearest, on the device."""
        data = fit.data
        batch_size = self._inference_batch_size(data.device)
        # Once, by rank 0 of a distributed fit.
        graph = data.replicas.compute_once(
            lambda: neighbour_graph(data, self.n_neighbors, batch_size, fit.rng).cpu(),
            rng=fit.rng,
        )
        return graph.to(data.device)

    def _phase(self, fit, sampler, optimizer):
        schedule = threshold_schedule(
            self.upper_threshold, self.lower_threshold, self.threshold_rate
        )
        neighbours = self._neighbour_graph(fit) if self._uses_neighbours else None
        return DACPhase(
            fit.network,
            fit.data,
            sampler,
            optimizer,
            len(schedule),
            fit.settings["steps_per_stage"],
            self._divergence_advice(),
            schedule=schedule,
            neighbours=neighbours,
            neighbour_weight=self.neighbor_weight,
            generator=fit.generator,
        )

    def _history(self, phase, losses):
        self.n_iter_ = phase.n_periods * phase.steps_per_period
        self.history_ = {
            "upper_threshold": [u for u, _ in phase.schedule],
            "lower_threshold": [l for _, l in phase.schedule],
            "loss": [float(t[0]) for t in losses],
            "positive_fraction": [float(t[1]) for t in losses],
            "negative_fraction": [float(t[2]) for t in losses],
        }
        if phase.neighbours is not None:
            self.history_["neighbor_agreement"] = [float(t[3]) for t in losses]
        self.history_["stop_reason"] = "completed"
