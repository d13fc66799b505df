"""DECClusterer: Deep Embedded Clustering and its IDEC / frozen-encoder variants."""

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from .._auto import manifold_settings, self_training_settings
from .._diagnostics import lower, warn_if_not_converged
from .._manifold import UMAP_EXTRA, cluster_means, import_umap, umap_available
from .._torch._dec_math import log_soft_assignment, target_distribution
from .._torch._information import kl_divergence
from .._training._self_training import self_train
from ._autoencoder import BaseAutoencoderClusterer
from ._base import SoftAssignmentMixin
from ._neighbourhood import (
    MIXTURE_N_INIT,
    N_NEIGHBORS,
    UMAP_COMPONENTS,
    manifold_clustering,
)
from ._parameters import Param

#: Target updates over which self-training from the manifold clusters trains
#: towards the mixture's posteriors before its own target takes over.
_MANIFOLD_TARGET_UPDATES = 3


class DECClusterer(SoftAssignmentMixin, BaseAutoencoderClusterer):
    """Deep Embedded Clustering (DEC).

    Learns a low-dimensional embedding with an autoencoder (fully connected
    by default, or a network of your own), initialises cluster centres in it
    (with k-means as in the paper, or from the clusters of the embedding's
    UMAP manifold on larger data, see ``init``), then refines encoder and
    centres together by minimising ``KL(P || Q)`` between the Student-t soft
    assignment ``Q`` and its sharpened target ``P`` (Xie et al., 2016).

    With ``reconstruction_weight > 0`` the decoder keeps training on the
    reconstruction error during self-training (IDEC, Guo et al., 2017); with
    ``train_encoder=False`` only the centres move (the paper's "DEC w/o
    backprop").

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    batch_size : int or "auto", default="auto"
        Mini-batch size of pretraining and self-training. ``"auto"`` is about
        ``n_samples / 28``, a power of two between 16 and 64, so that small
        data sets still get many updates per epoch (the paper's 256 trains
        worse for the same compute on a CPU). A fit in bfloat16 (see
        ``precision``) instead takes about ``n_samples / 8``, a power of two
        between 16 and 256 (256 on MNIST), whose steps use the chip better.
    hidden_dims : tuple of int or "auto", default="auto"
        Widths of the encoder's hidden layers of the default network; the
        decoder mirrors them.
        ``"auto"`` sizes the network from the number of features ``d``:
        ``(w, w, 2 w)`` with ``w`` about ``2 d``, a power of two between 64
        and 256, and the paper's ``(500, 500, 2000)`` from 250 features on
        (images such as MNIST).
    autoencoder : None, torch.nn.Module subclass or instance, default=None
        The network. ``None`` builds :class:`~deepcluster_sk.nn.MLPAutoencoder`
        with ``hidden_dims`` and ``n_components``. A class is built at every
        fit with the ``autoencoder__<name>`` parameters, and with
        ``input_shape`` (the shape of one sample), ``n_components`` and
        ``generator`` (seeded from ``random_state``) where its constructor
        takes them, e.g. :class:`~deepcluster_sk.nn.ConvAutoencoder` for
        images. An instance is deep-copied at every fit and trained from its
        own weights; ``hidden_dims`` and ``n_components`` do not apply to it.
        Either must have ``encoder`` and ``decoder`` submodules (see
        :mod:`deepcluster_sk.nn` and the user guide's "Bring your own
        network").
    n_components : int, default=10
        Dimension of the embedding.
    pretrain : {"end_to_end", "layerwise"}, default="end_to_end"
        How the autoencoder is pretrained. ``"end_to_end"`` trains the whole
        autoencoder with Adam for ``pretrain_epochs`` (fast, the usual
        re-implementation). ``"layerwise"`` is the paper's schedule: weights
        from N(0, 0.01^2), each layer pair trained greedily as a denoising
        autoencoder (20% dropout), then the stack fine-tuned end to end, each
        stage ``pretrain_iterations`` SGD steps at learning rate 0.01 (the
        paper's 0.1 collapsed the network in our tests) divided by 10 after
        40% of the stage, gradients clipped to norm 10;
        ``pretrain_epochs`` and ``pretrain_learning_rate`` are then unused.
        ``history_["pretrain_loss"]`` then holds each stage's loss per
        epoch, half the squared error summed over the features of that
        stage's input.
    pretrain_epochs : int or "auto", default="auto"
        Epochs of end-to-end autoencoder pretraining. ``"auto"`` sizes the
        budget in mini-batch steps: ``2 * n_features * sqrt(n_samples)``,
        between 300 and 50 000 steps and 10 and 400 epochs, capped in
        compute (forward multiply-adds): in float32 so that 10 000 samples
        take about two and a half minutes of a 2-core CPU; in bfloat16,
        whose steps at batch 256 run 1.3-3 times as many samples per second,
        1.5 times that compute at 10 000 samples, growing as
        ``n_samples ** 0.65`` (a 4-feature table gets 300 steps, digits
        about 5 000, MNIST the compute cap: about 67 epochs of the paper's
        network on 10 000 images, 35 on 70 000).
    pretrain_learning_rate : float, default=1e-3
        Initial learning rate of Adam during pretraining, decayed along a
        cosine to 5% of its value.
    pretrain_iterations : int or "auto", default="auto"
        Mini-batch steps per stage of ``pretrain="layerwise"`` (a stage is
        one layer pair, or the final fine-tuning). ``"auto"`` gives about
        20 epochs per stage, at least 1000 and at most 50 000 steps; the
        paper uses 50 000 steps per stage on MNIST (about 180 epochs), which
        takes hours on a CPU.
    n_init : int, default=20
        Number of k-means runs on the embedding with ``init_="kmeans"``; the
        best one initialises the centres. The manifold start fits its
        mixture from 5 initialisations, as :class:`N2DClusterer` does.
    alpha : float, default=1.0
        Degrees of freedom of the Student's t kernel.
    max_iter : int or "auto", default="auto"
        Maximum number of mini-batch steps of self-training; ``"auto"`` is
        40 target updates, ``40 * update_interval``.
    update_interval : int or "auto", default="auto"
        Self-training steps between two recomputations of the target
        distribution over the whole data set. ``"auto"`` is five epochs, at
        most 140 steps (DEC-keras's value on MNIST) and at most 51 200 rows
        (for large batches).
    tol : float, default=1e-3
        Stop self-training when fewer than this fraction of the hard
        assignments changed between two target updates.
    learning_rate : float, default=0.01
        Learning rate of SGD during self-training.
    momentum : float, default=0.9
        Momentum of SGD during self-training.
    train_encoder : bool, default=True
        If False, the encoder is frozen after pretraining and only the
        centres are trained ("DEC w/o backprop").
    reconstruction_weight : float, default=0.0
        Weight of the mean squared reconstruction error added to the KL loss
        during self-training. 0 is DEC; a positive value is IDEC (whose
        paper weights the clustering loss by 0.1 against the reconstruction,
        i.e. ``reconstruction_weight=10``).
    init : {"auto", "kmeans", "manifold"}, default="auto"
        Where self-training starts. ``"kmeans"`` is the paper's: k-means
        (``n_init`` runs) on the embedding. ``"manifold"`` clusters the
        embedding's UMAP manifold with a full-covariance Gaussian mixture,
        as :class:`N2DClusterer` does, and
        starts from the mean embedding of each cluster, training towards the
        mixture's sharpened posteriors for the first three target periods
        before its own target takes over: the neighbour graph separates
        clusters that are curved or elongated in the embedding, which
        k-means splits. UMAP runs at fit time only; ``predict`` stays
        the encoder and the Student-t kernel. ``"auto"`` is ``"manifold"``
        from 1 000 samples on and ``"kmeans"`` below, where the neighbour
        graph of a small table adds noise; it needs umap-learn
        (``pip install 'deepcluster-sk[umap]'``) and warns and uses
        ``"kmeans"`` where it is missing. ``init_`` holds the choice.
    n_neighbors : int or "auto", default="auto"
        UMAP's neighbours per point with ``init_="manifold"``; ``"auto"`` is
        30, at most ``n_samples - 1``.
    umap_components : int or "auto", default="auto"
        Dimension of the manifold with ``init_="manifold"``; ``"auto"`` is
        ``n_clusters``, at least 2 and at most 10.
    <device>
    <precision>
    <distributed>
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, mini-batch order and k-means.
    verbose : int, default=0
        0 is silent; 1 prints progress about ten times per phase; 2 prints
        every epoch.
    memory : str, joblib.Memory or None, default=None
        Where to cache the pretrained autoencoder: a directory, or a
        :class:`joblib.Memory` whose location is used. ``None`` caches
        nothing. A later fit on the same data with the same ``autoencoder``
        (the class and its ``autoencoder__*`` parameters, or an instance's
        architecture and weights), ``hidden_dims``, ``n_components``,
        ``pretrain``, ``pretrain_epochs``, ``pretrain_learning_rate``,
        ``pretrain_iterations``, ``batch_size`` and ``random_state``, the
        same device type, number of torch threads
        and package versions loads the network instead of training it, and
        fits exactly the model it would have fitted without the cache. The
        other parameters (``n_clusters``, ``alpha``, ``max_iter``, ...) do
        not change pretraining, so a grid search over them pretrains once
        per fold. With ``random_state=None`` every such fit reuses the
        network pretrained first, as :class:`~sklearn.pipeline.Pipeline`
        reuses a cached transformer; a ``RandomState`` instance hits the
        cache when its state is the same (e.g. in clones of one estimator).
        Processes may share the directory.
    **autoencoder_params
        ``autoencoder__<name>=value``: keyword arguments of the
        ``autoencoder`` class, e.g. ``autoencoder__channels=(32, 64)``.
        They are parameters of the estimator like any other, for
        ``set_params`` and :class:`~sklearn.model_selection.GridSearchCV`.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training sample.
    cluster_centers_ : ndarray of shape (n_clusters, n_components)
        Cluster centres in the embedding.
    autoencoder_ : torch.nn.Module
        The trained autoencoder; ``autoencoder_.encoder`` maps inputs to the
        embedding.
    hidden_dims_, batch_size_, pretrain_epochs_, update_interval_, max_iter_, precision_, init_
        The values used, with each ``"auto"`` resolved for the training data
        (``n_neighbors_``, ``umap_components_`` and ``umap_epochs_`` too with
        ``init_="manifold"``; ``pretrain_iterations_`` instead of
        ``pretrain_epochs_`` with
        ``pretrain="layerwise"``; no ``hidden_dims_`` with an
        ``autoencoder`` of your own, whose measured work sizes the
        ``"auto"`` pretraining). ``verbose=1`` prints them.
    n_iter_ : int
        Self-training steps run.
    history_ : dict
        ``"pretrain_loss"``: mean reconstruction loss per pretraining epoch.
        Per target update of self-training: ``"iteration"``, ``"kl_loss"``
        (``KL(P||Q)`` per sample over the training data) and
        ``"label_change"`` (fraction of changed labels, NaN at the first).
        ``"stop_reason"``: why self-training stopped, ``"converged"`` (fewer
        than ``tol`` of the labels changed) or ``"max_iter"``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column
        names.

    See Also
    --------
    sklearn.cluster.KMeans : Clustering in the input space.
    N2DClusterer : The manifold clustering that ``init="manifold"`` starts
        from, as an estimator of its own.

    Notes
    -----
    ``predict_proba`` returns the Student-t soft assignment ``q`` and
    ``predict`` its argmax; ``transform`` returns the embedding.

    The networks compute in ``precision_``; the Student-t kernel and the
    KL divergence always in float32. Data is copied to the training device once
    when it fits there; sparse input is densified batch by batch. Before
    training, one forward pass on two training rows checks that the
    autoencoder returns the shapes of the contract; a module that does not
    raises a ``ValueError`` naming it and both shapes. A model
    fitted on a GPU pickles and predicts on a machine without one.

    A phase that diverges (its loss or weights run away) raises
    :class:`~deepcluster_sk.exceptions.TrainingDivergedError` naming the
    learning rate to lower. A fit whose ``labels_`` use fewer than
    ``n_clusters`` clusters, or whose self-training reaches ``max_iter``
    while more than ``tol`` of the labels still change, warns with
    :class:`~sklearn.exceptions.ConvergenceWarning`.

    References
    ----------
    .. [1] J. Xie, R. Girshick, A. Farhadi. "Unsupervised Deep Embedding for
       Clustering Analysis". ICML 2016.
    .. [2] X. Guo, L. Gao, X. Liu, J. Yin. "Improved Deep Embedded Clustering
       with Local Structure Preservation". IJCAI 2017.
    .. [3] R. McConville, R. Santos-Rodriguez, R. J. Piechocki, I. Craddock.
       "N2D: (Not Too) Deep Clustering via Clustering the Local Manifold of
       an Autoencoded Embedding". ICPR 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from deepcluster_sk import DECClusterer
    >>> X = load_digits(n_class=5).data / 16
    >>> X.shape
    (901, 64)

    ``DECClusterer(n_clusters=5)`` is all it takes; a small network and a
    short pretraining keep this example fast:

    >>> dec = DECClusterer(n_clusters=5, hidden_dims=(64, 64), pretrain_epochs=20,
    ...                    random_state=0).fit(X)
    >>> dec.labels_.shape
    (901,)
    >>> dec.history_["stop_reason"]
    'converged'
    >>> dec.predict_proba(X[:2]).sum(axis=1).round(4)
    array([1., 1.], dtype=float32)
    >>> dec.transform(X).shape
    (901, 10)
    """

    alpha = Param(1.0, Interval(Real, 0, None, closed="neither"))
    max_iter = Param(
        "auto", Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})
    )
    update_interval = Param(
        "auto", Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})
    )
    tol = Param(1e-3, Interval(Real, 0, 1, closed="both"))
    learning_rate = Param(0.01, Interval(Real, 0, None, closed="neither"))
    momentum = Param(0.9, Interval(Real, 0, 1, closed="left"))
    train_encoder = Param(True, "boolean")
    reconstruction_weight = Param(0.0, Interval(Real, 0, None, closed="left"))
    init = Param("auto", StrOptions({"auto", "kmeans", "manifold"}))
    n_neighbors = N_NEIGHBORS
    umap_components = UMAP_COMPONENTS

    def _settings(self, n_samples, n_features):
        settings = super()._settings(n_samples, n_features)
        return {**settings, **self._init_settings(n_samples, n_features)}

    def _init_settings(self, n_samples, n_features):
        """``init`` resolved, with the manifold step's settings where it runs."""
        manifold = {"auto": "auto", "kmeans": False, "manifold": True}[self.init]
        resolved = manifold_settings(
            n_samples,
            n_features,
            self.n_clusters,
            manifold=manifold,
            n_neighbors=self.n_neighbors,
            umap_components=self.umap_components,
        )
        if resolved["manifold"] and self.init == "auto" and not umap_available():
            warnings.warn(
                "init='auto' starts DEC from the manifold clusters of the "
                "embedding on data of this size, which needs umap-learn; it "
                f"is not installed, so k-means starts it instead. {UMAP_EXTRA}, "
                "or pass init='kmeans' to silence this warning.",
                UserWarning,
                stacklevel=6,
            )
            resolved = {"manifold": False}
        elif resolved["manifold"]:
            import_umap()  # before training: its ImportError names the extra
        init = "manifold" if resolved.pop("manifold") else "kmeans"
        return {"init": init, **resolved}

    def _budget_settings(self, n_samples, n_features, settings, work_per_sample):
        pretraining = super()._budget_settings(
            n_samples, n_features, settings, work_per_sample
        )
        settings = {**settings, **pretraining}
        return self_training_settings(
            settings,
            n_samples,
            update_interval=self.update_interval,
            max_iter=self.max_iter,
        )

    def _starting_point(self, fit, embedding):
        """The centres self-training starts from, and its first target.

        With ``init_="kmeans"``, the k-means centres and no target of its
        own: self-training sharpens its own soft assignment from the start.
        With ``init_="manifold"``, the mean embedding of each manifold
        cluster, and the mixture's sharpened posteriors as the target of the
        first ``_MANIFOLD_TARGET_UPDATES`` periods: Student-t centres at the
        cluster means assign fewer samples as the mixture did (the clusters
        are not spherical in the embedding), and training towards the
        mixture's clusters first keeps what the neighbour graph found.
        """
        if fit.settings["init"] == "kmeans":
            return self._kmeans(fit, embedding)[0], None
        host_embedding = embedding.detach().float().cpu().numpy()
        coordinates, clustering = manifold_clustering(
            host_embedding,
            {**fit.settings, "manifold": True},
            n_clusters=self.n_clusters,
            n_init=MIXTURE_N_INIT,
            covariance_type="full",
            min_dist=0.0,
            rng=fit.rng,
            seeded=self.random_state is not None,
            progress=fit.progress,
            replicas=fit.data.replicas,
        )
        responsibilities = clustering.mixture.predict_proba(coordinates)
        centers = cluster_means(host_embedding, clustering.labels, responsibilities)
        target = target_distribution(
            torch.from_numpy(responsibilities.astype(np.float32)).to(embedding.device)
        )
        return centers, target

    def _cluster(self, fit, autoencoder, embedding, pretrain_losses):
        centers, initial_target = self._starting_point(fit, embedding)
        centers = torch.nn.Parameter(torch.from_numpy(centers).to(fit.data.device))
        result = self_train(
            autoencoder,
            centers,
            fit.data,
            batch_size=fit.settings["batch_size"],
            generator=fit.generator,
            progress=fit.progress,
            alpha=self.alpha,
            max_iter=fit.settings["max_iter"],
            update_interval=fit.settings["update_interval"],
            tol=self.tol,
            learning_rate=self.learning_rate,
            momentum=self.momentum,
            train_encoder=self.train_encoder,
            reconstruction_weight=self.reconstruction_weight,
            inference_batch_size=self._inference_batch_size(fit.data.device),
            advice=lower("learning_rate", self.learning_rate),
            initial_target=initial_target,
            initial_target_updates=_MANIFOLD_TARGET_UPDATES,
        )
        if result.stop_reason == "max_iter":
            warn_if_not_converged(
                result.label_changes[-1], fit.settings["max_iter"], self.tol
            )
        self.cluster_centers_ = centers.detach().cpu().numpy()
        self.labels_ = result.labels.cpu().numpy().astype(np.int64)
        self.n_iter_ = result.n_iter
        self.history_ = {
            "pretrain_loss": pretrain_losses,
            "iteration": result.iterations,
            "kl_loss": result.kl_losses,
            "label_change": result.label_changes,
            "stop_reason": result.stop_reason,
        }

    def _collapse_advice(self):
        return (
            f"Self-training may have merged clusters; try a lower learning_rate (now "
            f"{self.learning_rate}), reconstruction_weight > 0 (IDEC) or fewer "
            "clusters."
        )

    def _log_proba(self, X):
        encoder = self.autoencoder_.encoder
        centers = torch.from_numpy(self.cluster_centers_).to(self._module_device(encoder))
        return self._map_batches(
            X,
            encoder,
            lambda rows: log_soft_assignment(encoder(rows), centers, self.alpha),
        )

    def score(self, X, y=None):
        """Negative DEC loss on ``X``: ``-KL(P || Q)`` per sample.

        ``Q`` is the soft assignment of ``X`` and ``P`` its target
        distribution computed over ``X``: the objective DEC minimises, as
        :meth:`sklearn.cluster.KMeans.score` is minus the k-means objective.
        Higher is better and needs no labels, so
        :class:`~sklearn.model_selection.GridSearchCV` can use it; the ratio
        of its values on training and held-out data is the paper's
        generalisability ``G``. Like every internal objective it is no
        model-selection criterion across ``n_clusters`` on its own: it is
        also high when assignments are uniformly uncertain. Compare models
        with labels through
        :data:`deepcluster_sk.metrics.cluster_accuracy_scorer`, or with a
        label-free external criterion such as the silhouette.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        score : float
            Minus ``KL(P || Q)`` divided by the number of rows of ``X``; at
            most 0.
        """
        X = self._validate_predict_data(X)
        log_q = torch.from_numpy(self._log_proba(X)).double()
        p = target_distribution(log_q.exp())
        return -float(kl_divergence(p, log_q)) / X.shape[0]
