"""The estimators that cluster an autoencoder's embedding (DEC, IDEC, AE + k-means).

:class:`BaseAutoencoderClusterer` fills in the hooks of
:class:`~._base.BaseDeepClusterer`: it builds the autoencoder (the default
:class:`~deepcluster_sk.nn.MLPAutoencoder` or the user's), pretrains it
(cached through ``memory``), embeds the training data and hands over to
``_cluster``, the one hook a subclass writes (k-means on the embedding is one
call away). ``transform`` returns the embedding.
"""

import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from .._auto import auto_hidden_dims, bfloat16_batch_size, pretraining_settings
from .._diagnostics import check_finite_embedding, lower
from .._torch._data import forward_all
from .._torch._kmeans import torch_kmeans
from .._training._pretraining import EndToEndPretraining, LayerwisePretraining
from ..nn import MLPAutoencoder
from ._base import BaseDeepClusterer, draw_seed
from ._memory import cache_key, pretrain_cache
from ._modules import (
    build_module,
    check_autoencoder,
    module_identity,
    passes_keyword,
)
from ._parameters import Param

#: The pretraining schedule of each value of ``pretrain``.
_PRETRAINING = {"end_to_end": EndToEndPretraining, "layerwise": LayerwisePretraining}

_LAYERWISE_ADVICE = (
    "layer-wise pretraining has a fixed learning rate: scale the data, e.g. with "
    'sklearn.preprocessing.StandardScaler, or use pretrain="end_to_end"'
)


#: Rows above which k-means fits a uniform sample of the embedding and then
#: assigns every row to its nearest centre: the fit's cost stops growing
#: with n. On a million rows of a 10-dimensional MNIST embedding (10
#: clusters, n_init=20) k-means on all rows took 16.6 s, on a sample of
#: 100 000 2.8 s with 1.00008 times the inertia and labels at ARI 0.991
#: (``benchmarks/results/tuning/kmeans_sample.md``).
KMEANS_SAMPLE = 100_000


def kmeans_centers(embedding, n_clusters, n_init, random_state,
                   sample_size=KMEANS_SAMPLE):
    """Cluster an embedding with k-means and return its centres and labels.

    A CUDA embedding is clustered on its GPU with
    :func:`~deepcluster_sk._torch._kmeans.torch_kmeans`; any other goes to
    scikit-learn's :class:`~sklearn.cluster.KMeans` in float64, whose
    warning about fewer distinct clusters than ``n_clusters`` is silenced:
    the estimators warn about their own labels. Above ``sample_size`` rows
    k-means fits a uniform sample of that many rows, and every row is
    labelled with its nearest centre.

    Parameters
    ----------
    embedding : torch.Tensor of shape (n_samples, n_components)
    n_clusters, n_init : int
    random_state : int
    sample_size : int, default=KMEANS_SAMPLE

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_components), float32
    labels : ndarray of shape (n_samples,)
    """
    embedding = embedding.detach()
    sample = embedding
    if embedding.shape[0] > sample_size:
        rows = np.random.RandomState(random_state).choice(
            embedding.shape[0], sample_size, replace=False
        )
        sample = embedding[torch.from_numpy(np.sort(rows)).to(embedding.device)]
    centers, labels = _kmeans(sample, n_clusters, n_init, random_state)
    if sample is not embedding:
        labels = nearest_centers(embedding, torch.from_numpy(centers))
    return centers, labels


def _kmeans(embedding, n_clusters, n_init, random_state):
    if embedding.is_cuda:
        result = torch_kmeans(
            embedding.float(), n_clusters, n_init=n_init, random_state=random_state
        )
        return (
            result.centers.cpu().numpy().astype(np.float32),
            result.labels.cpu().numpy(),
        )
    Z = embedding.cpu().numpy().astype(np.float64)
    kmeans = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=random_state)
    with warnings.catch_warnings():
        # Its "duplicate points in X" would be about the embedding, not the
        # user's X; the estimators warn about too few clusters themselves.
        warnings.filterwarnings(
            "ignore", "Number of distinct clusters", ConvergenceWarning
        )
        labels = kmeans.fit_predict(Z)
    return kmeans.cluster_centers_.astype(np.float32), labels


def nearest_centers(embedding, centers, batch_size=65536):
    """The index of each row's nearest centre, as a NumPy array.

    Batch by batch through :func:`torch.cdist`, so that no
    ``n_samples x n_clusters`` distance matrix (nor a larger difference
    tensor) is ever held. Not the k-means loop's
    exact :func:`squared_distances`: with a million rows and 50 centres it
    raised the peak resident memory by 2 GB over all rows at once and by
    240 MiB more than ``cdist`` in batches of 65 536 rows (same labels,
    ``benchmarks/tuning/streamed_target.py``).
    """
    centers = centers.to(embedding.device, torch.float32)
    labels = [torch.cdist(block.float(), centers).argmin(dim=1)
              for block in embedding.split(batch_size)]
    return torch.cat(labels).cpu().numpy()


class BaseAutoencoderClusterer(BaseDeepClusterer):
    """Base class of the estimators that cluster an autoencoder's embedding.

    Adds the autoencoder's parameters, its pretraining (cached through
    ``memory``), the k-means clustering of the embedding and
    ``transform`` into the embedding. A subclass implements
    ``_cluster(fit, autoencoder, embedding, pretrain_losses)``, which
    clusters the training embedding (``_kmeans`` gives the k-means
    initialisation) and sets ``cluster_centers_``, ``labels_``, ``n_iter_``,
    ``history_`` and its own attributes.
    """

    autoencoder = Param(None, None, type, torch.nn.Module)
    n_components = Param(10, Interval(Integral, 1, None, closed="left"))
    pretrain = Param("end_to_end", StrOptions({"end_to_end", "layerwise"}))
    pretrain_epochs = Param(
        "auto", Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})
    )
    pretrain_learning_rate = Param(1e-3, Interval(Real, 0, None, closed="neither"))
    pretrain_iterations = Param(
        "auto", Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})
    )
    n_init = Param(20, Interval(Integral, 1, None, closed="left"))
    memory = Param(None, None, str, HasMethods(["cache"]), trailing=True)

    _routed_prefix = "autoencoder"
    _size_rule = staticmethod(auto_hidden_dims)

    #: The parameters that change the pretrained autoencoder, besides
    #: ``random_state`` and the ``autoencoder__*`` parameters: ``memory``
    #: reuses a cached network only when these, the data, the pretraining
    #: seed and the device type are the same.
    _pretraining_params = (
        "autoencoder",
        "hidden_dims",
        "n_components",
        "pretrain",
        "pretrain_epochs",
        "pretrain_learning_rate",
        "pretrain_iterations",
        "batch_size",
        "precision",
    )

    #: The resolved settings that pretraining uses.
    _pretraining_settings = (
        "hidden_dims",
        "batch_size",
        "pretrain_epochs",
        "pretrain_iterations",
        "precision",
    )

    # -- the hooks of fit ----------------------------------------------------

    def _network_generator(self, fit):
        # Its own seed, so that the cache can key the pretrained network on it.
        seed = draw_seed(fit.rng)
        return torch.Generator().manual_seed(seed), seed

    def _build_network(self, sample_shape, settings, generator):
        pretraining = _PRETRAINING[self.pretrain]
        autoencoder = build_module(
            self,
            "autoencoder",
            (MLPAutoencoder, {"hidden_dims": settings.get("hidden_dims")}),
            {
                "input_shape": sample_shape,
                "n_features": math.prod(sample_shape),
                "n_components": self.n_components,
            },
            generator,
            seeded_weights=not pretraining.draws_initial_weights,
        )
        pretraining.prepare(autoencoder, generator)
        return autoencoder

    def _check_network(self, network, x):
        # The embedding width is n_components where the module was built for
        # it; an instance, or a class without the argument, has its own.
        built_for = passes_keyword(self, "autoencoder", "n_components")
        return check_autoencoder(network, x, self.n_components if built_for else None)

    def _bfloat16_batch_size(self, n_samples, batch_size):
        if self.batch_size == "auto":
            return bfloat16_batch_size(n_samples)
        return batch_size

    def _budget_settings(self, n_samples, n_features, settings, work_per_sample):
        return pretraining_settings(
            n_samples,
            n_features,
            batch_size=settings["batch_size"],
            precision=settings["precision"],
            work_per_sample=work_per_sample,
            pretrain=self.pretrain,
            pretrain_epochs=self.pretrain_epochs,
            pretrain_iterations=self.pretrain_iterations,
        )

    def _train(self, fit):
        autoencoder, losses = self._pretrained_autoencoder(fit)
        embedding = self._training_embedding(autoencoder, fit.data)
        self._cluster(fit, autoencoder, embedding, losses)
        autoencoder.requires_grad_(False)
        self.autoencoder_ = autoencoder

    def _cluster(self, fit, autoencoder, embedding, pretrain_losses):
        """Cluster the embedding; set the fitted attributes.

        Parameters
        ----------
        fit : FitContext
        autoencoder : torch.nn.Module
            The pretrained autoencoder, on the training device.
        embedding : torch.Tensor of shape (n_samples, n_components)
            Of the training data.
        pretrain_losses : list of float
            Mean reconstruction loss of each pretraining epoch.
        """
        raise NotImplementedError

    def _kmeans(self, fit, embedding):
        """k-means on the embedding, seeded from the fit: ``(centers, labels)``.

        Run once, by rank 0 of a distributed fit, and broadcast.
        """
        seed = draw_seed(fit.rng)
        return fit.data.replicas.compute_once(
            lambda: kmeans_centers(embedding, self.n_clusters, self.n_init, seed)
        )

    # -- pretraining ---------------------------------------------------------

    def _pretraining(self, settings):
        """The pretraining schedule that the parameters and ``settings`` ask for."""
        return _PRETRAINING[self.pretrain].from_settings(
            settings, self.pretrain_learning_rate, self._pretraining_advice()
        )

    def _pretraining_advice(self):
        """What to change when pretraining diverges."""
        if self.pretrain == "layerwise":
            return _LAYERWISE_ADVICE
        return lower("pretrain_learning_rate", self.pretrain_learning_rate)

    def _pretrained_autoencoder(self, fit):
        """The pretrained autoencoder and its loss curve, from the cache if any.

        ``fit.network`` is trained in place, or loaded with the cached
        weights; the pretraining seed was drawn from ``random_state`` either
        way, so the numbers drawn after it, hence the fitted model, are the
        same whether the network was loaded or trained.
        """
        autoencoder = fit.network
        pretraining = self._pretraining(fit.settings)

        def pretrain():
            return pretraining.run(
                autoencoder, fit.data, fit.network_generator, fit.progress
            )

        cache = pretrain_cache(self.memory)
        if cache is None:
            return autoencoder, pretrain()
        # Rank 0 of a distributed fit alone reads and writes the cache.
        replicas = fit.data.replicas

        def load():
            key = cache_key(fit.data.source, self._pretraining_key(fit))
            losses = cache.load(key, autoencoder)
            weights = autoencoder.state_dict() if replicas.enabled else None
            return key, None if losses is None else (weights, losses)

        key, cached = replicas.compute_once(load)
        if cached is None:
            losses = pretrain()
            if replicas.is_main:
                cache.save(key, autoencoder.state_dict(), losses)
            return autoencoder, losses
        weights, losses = cached
        if not replicas.is_main:
            autoencoder.load_state_dict(weights)
        fit.progress.message("pretrained autoencoder loaded from the cache")
        return autoencoder.eval(), losses

    def _pretraining_key(self, fit):
        """What the pretrained weights depend on, besides the data and versions.

        The parameters as given and as resolved (``settings``), so that a
        change of the ``"auto"`` rules never reuses a stale network, and the
        autoencoder's class and parameters. With ``random_state=None`` the
        key holds no seed, so the network pretrained first is reused, as
        ``Pipeline(memory=...)`` reuses a fitted transformer; otherwise it
        holds the seed drawn from ``random_state``, exact for an int and for
        a RandomState instance.
        """
        params = {name: getattr(self, name) for name in self._pretraining_params}
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        params["autoencoder"] = module_identity(self, "autoencoder")
        params["settings"] = {
            name: value
            for name, value in fit.settings.items()
            if name in self._pretraining_settings
        }
        params["seed"] = None if self.random_state is None else fit.network_seed
        params["device_type"] = fit.data.device.type
        # Processes split the batches (and pad the epochs): another model.
        params["processes"] = fit.data.replicas.world_size
        return params

    def _training_embedding(self, autoencoder, data):
        """The embedding of the training data, checked to be finite.

        A diverged autoencoder is reported as such here, before k-means
        would report its NaN as missing values in the input.
        """
        embedding = forward_all(
            autoencoder.encoder, data, self._inference_batch_size(data.device)
        )
        check_finite_embedding(embedding, "pretraining", self._pretraining_advice())
        return embedding

    # -- after the fit -------------------------------------------------------

    def transform(self, X):
        """Embed ``X`` with the trained encoder.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components), dtype float32
            The embedding.
        """
        X = self._validate_predict_data(X)
        encoder = self.autoencoder_.encoder
        return self._map_batches(X, encoder, encoder)

    @property
    def _n_features_out(self):
        return self.cluster_centers_.shape[1]

