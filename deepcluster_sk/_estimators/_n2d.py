"""N2DClusterer: an autoencoder's embedding, its UMAP manifold, a Gaussian mixture."""

from numbers import Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from .._auto import manifold_settings
from .._manifold import import_umap
from .._torch._neighbours import neighbour_average
from ._autoencoder import BaseAutoencoderClusterer
from ._base import SoftAssignmentMixin
from ._neighbourhood import (
    COVARIANCE_TYPE,
    MIXTURE_N_INIT,
    N_NEIGHBORS,
    UMAP_COMPONENTS,
    manifold_clustering,
)
from ._parameters import Default, Param


class N2DClusterer(SoftAssignmentMixin, BaseAutoencoderClusterer):
    """N2D: a Gaussian mixture on the UMAP manifold of an autoencoder's embedding.

    "Not Too Deep" clustering (McConville et al., 2019): train an
    autoencoder (the same as :class:`DECClusterer`'s, with its ``"auto"``
    rules, ``memory`` cache, networks of your own, devices and precision),
    embed the data with it, learn the embedding's manifold with UMAP, and
    cluster the manifold coordinates with a full-covariance Gaussian
    mixture. The neighbour graph that UMAP builds is what k-means and DEC's
    centroids miss: on images it separates clusters that are curved or
    elongated in the embedding.

    Needs umap-learn (``pip install 'deepcluster-sk[umap]'``) wherever the
    manifold step runs; on small tables ``manifold="auto"`` leaves it out
    and fits the mixture on the embedding itself.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters: the mixture's components.
    batch_size : int or "auto", default="auto"
        Mini-batch size of pretraining; ``"auto"`` as in
        :class:`DECClusterer`.
    hidden_dims : tuple of int or "auto", default="auto"
        Widths of the encoder's hidden layers; the decoder mirrors them.
        ``"auto"`` as in :class:`DECClusterer`.
    autoencoder : None, torch.nn.Module subclass or instance, default=None
        The network, as in :class:`DECClusterer`.
    n_components : int, default=10
        Dimension of the autoencoder's embedding.
    pretrain : {"end_to_end", "layerwise"}, default="end_to_end"
        How the autoencoder is trained, as in :class:`DECClusterer`.
    pretrain_epochs : int or "auto", default="auto"
        Epochs of autoencoder training; ``"auto"`` as in
        :class:`DECClusterer`.
    pretrain_learning_rate : float, default=1e-3
        Initial learning rate of Adam, decayed along a cosine.
    pretrain_iterations : int or "auto", default="auto"
        Mini-batch steps per stage of ``pretrain="layerwise"``.
    n_init : int, default=5
        Initialisations of the Gaussian mixture (each from k-means); the one
        of highest likelihood is kept.
    manifold : bool or "auto", default="auto"
        Whether to cluster on UMAP's manifold of the embedding (N2D) or on
        the embedding itself. ``"auto"`` uses the manifold from 1 000
        samples on; below that, on small tables, the neighbour graph adds
        noise rather than structure. ``manifold_`` holds the choice.
    n_neighbors : int or "auto", default="auto"
        UMAP's neighbours per point, the scale of the structure it keeps;
        ``"auto"`` is 30, at most ``n_samples - 1``.
    umap_components : int or "auto", default="auto"
        Dimension of the manifold coordinates; ``"auto"`` is
        ``n_clusters`` (N2D's choice), at least 2 and at most 10.
    min_dist : float, default=0.0
        UMAP's ``min_dist``: 0 packs each cluster tightly, as clustering
        wants.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        Covariance of the mixture's components.
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        Where to train the autoencoder; UMAP and the mixture run on the
        CPU.
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        The precision of the autoencoder's matrix products, as in
        :class:`DECClusterer`.
    <distributed>
    random_state : int, RandomState instance or None, default=None
        Seeds the autoencoder, UMAP and the mixture. A seed makes UMAP
        reproducible and, as umap-learn does, single-threaded; ``None`` lets
        it use every core.
    verbose : int, default=0
        0 is silent; 1 prints progress about ten times per phase.
    memory : str, joblib.Memory or None, default=None
        Where to cache the pretrained autoencoder, as in
        :class:`DECClusterer`: fits that differ only in the manifold or the
        mixture train it once.
    **autoencoder_params
        ``autoencoder__<name>=value``: keyword arguments of the
        ``autoencoder`` class, as in :class:`DECClusterer`.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training sample: the mixture's most probable
        component.
    embedding_ : ndarray of shape (n_samples, n_dims), float32
        The training samples' manifold coordinates (their embedding when
        ``manifold_`` is False), on which the mixture was fitted.
    mixture_ : sklearn.mixture.GaussianMixture
        The fitted mixture.
    cluster_centers_ : ndarray of shape (n_clusters, n_dims), float32
        The mixture's means, in the coordinates of ``embedding_``.
    autoencoder_ : torch.nn.Module
        The trained autoencoder.
    manifold_, n_neighbors_, umap_components_, umap_epochs_
        Whether the manifold step ran and, if so, with which UMAP settings
        (``umap_epochs_``: the epochs of UMAP's layout).
    hidden_dims_, batch_size_, pretrain_epochs_, precision_
        The values used, with each ``"auto"`` resolved for the training data.
    n_iter_ : int
        Pretraining epochs run.
    history_ : dict
        ``"pretrain_loss"``: mean reconstruction loss per epoch, and
        ``"stop_reason"``: ``"completed"``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column
        names.

    See Also
    --------
    DECClusterer : Starts its self-training from these clusters on large
        data (``init="auto"``).
    AutoencoderKMeans : K-means on the same embedding.

    Notes
    -----
    New samples are placed on the manifold as UMAP places them before its
    refinement: at the average of the manifold coordinates of their
    ``n_neighbors_`` nearest training samples in the embedding, weighted by
    UMAP's fuzzy membership. Unlike ``UMAP.transform``, whose refinement
    draws random negative samples among the points of the call, this is a
    function of each sample alone, so ``predict`` does not depend on the
    batch a sample comes in. ``predict``, ``predict_proba`` and
    ``transform`` keep the training embedding and coordinates
    (``n_samples * (n_components + n_dims)`` floats) for it; the neighbour
    search is exact, on the autoencoder's device.

    ``predict_proba`` returns the mixture's posterior probabilities of the
    components and ``predict`` their argmax. ``predict`` on the training
    data can differ from ``labels_`` for the few samples that UMAP's
    refinement moved across a cluster boundary.

    References
    ----------
    .. [1] R. McConville, R. Santos-Rodriguez, R. J. Piechocki, I. Craddock.
       "N2D: (Not Too) Deep Clustering via Clustering the Local Manifold of
       an Autoencoded Embedding". ICPR 2020.
    .. [2] L. McInnes, J. Healy, J. Melville. "UMAP: Uniform Manifold
       Approximation and Projection for Dimension Reduction". 2018.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from deepcluster_sk import N2DClusterer
    >>> X = load_digits().data / 16
    >>> model = N2DClusterer(n_clusters=10, hidden_dims=(64,), pretrain_epochs=5,
    ...                      random_state=0).fit(X)
    >>> model.manifold_, model.n_neighbors_, model.embedding_.shape
    (True, 30, (1797, 10))
    >>> model.predict_proba(X[:2]).sum(axis=1).round(4)
    array([1., 1.], dtype=float32)
    """

    n_init = Default(MIXTURE_N_INIT)
    manifold = Param("auto", "boolean", StrOptions({"auto"}))
    n_neighbors = N_NEIGHBORS
    umap_components = UMAP_COMPONENTS
    min_dist = Param(0.0, Interval(Real, 0, None, closed="left"))
    covariance_type = COVARIANCE_TYPE

    def _settings(self, n_samples, n_features):
        settings = super()._settings(n_samples, n_features)
        manifold = manifold_settings(
            n_samples,
            n_features,
            self.n_clusters,
            manifold=self.manifold,
            n_neighbors=self.n_neighbors,
            umap_components=self.umap_components,
        )
        if manifold["manifold"]:
            import_umap()  # before training: its ImportError names the extra
        return {**settings, **manifold}

    def _cluster(self, fit, autoencoder, embedding, pretrain_losses):
        host_embedding = embedding.detach().float().cpu().numpy()
        coordinates, clustering = manifold_clustering(
            host_embedding,
            fit.settings,
            n_clusters=self.n_clusters,
            n_init=self.n_init,
            covariance_type=self.covariance_type,
            min_dist=self.min_dist,
            rng=fit.rng,
            seeded=self.random_state is not None,
            progress=fit.progress,
            replicas=fit.data.replicas,
        )
        self.embedding_ = coordinates
        self.mixture_ = clustering.mixture
        self.cluster_centers_ = clustering.mixture.means_.astype(np.float32)
        self.labels_ = clustering.labels
        self._fit_embedding_ = host_embedding
        self.n_iter_ = len(pretrain_losses)
        self.history_ = {"pretrain_loss": pretrain_losses, "stop_reason": "completed"}

    def _collapse_advice(self):
        return (
            "The mixture left components empty; try fewer clusters, a larger "
            "n_neighbors or covariance_type='diag'."
        )

    def _coordinates(self, X):
        """The manifold coordinates of validated ``X`` (see the class Notes)."""
        encoder = self.autoencoder_.encoder
        if not self.manifold_:
            return self._map_batches(X, encoder, encoder)
        device = self._module_device(encoder)
        keys = torch.from_numpy(self._fit_embedding_).to(device)
        values = torch.from_numpy(self.embedding_).to(device)
        return self._map_batches(
            X,
            encoder,
            lambda rows: neighbour_average(encoder(rows), keys, values, self.n_neighbors_),
        )

    def transform(self, X):
        """Place ``X`` on the manifold the mixture was fitted on.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.

        Returns
        -------
        coordinates : ndarray of shape (n_samples, n_dims), dtype float32
            Manifold coordinates (the embedding when ``manifold_`` is False).
        """
        X = self._validate_predict_data(X)
        return self._coordinates(X)

    def _log_proba(self, X):
        proba = self.mixture_.predict_proba(self._coordinates(X))
        return np.log(np.maximum(proba, np.finfo(np.float64).tiny)).astype(np.float32)

    def score(self, X, y=None):
        """Mean log-likelihood of ``X``'s manifold coordinates under the mixture.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        score : float
            Higher is better, as :meth:`sklearn.mixture.GaussianMixture.score`.
        """
        X = self._validate_predict_data(X)
        return float(self.mixture_.score(self._coordinates(X)))

    @property
    def _n_features_out(self):
        return self.embedding_.shape[1]
