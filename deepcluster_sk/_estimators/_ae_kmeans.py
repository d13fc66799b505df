"""AutoencoderKMeans: k-means on a pretrained autoencoder's embedding."""

import numpy as np
import torch

from .._torch._distances import squared_distances
from ._autoencoder import BaseAutoencoderClusterer


class AutoencoderKMeans(BaseAutoencoderClusterer):
    """K-means in the embedding of a pretrained autoencoder.

    DEC's first phase on its own: train an autoencoder (fully connected by
    default, or a network of your own) on the reconstruction error, then cluster its embedding with k-means. A strong,
    cheap baseline for :class:`DECClusterer`, which starts from exactly this
    model.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    batch_size : int or "auto", default="auto"
        Mini-batch size; ``"auto"`` as in :class:`DECClusterer`.
    hidden_dims : tuple of int or "auto", default="auto"
        Widths of the encoder's hidden layers; the decoder mirrors them.
        ``"auto"`` as in :class:`DECClusterer`.
    autoencoder : None, torch.nn.Module subclass or instance, default=None
        The network: ``None`` builds
        :class:`~deepcluster_sk.nn.MLPAutoencoder`; a class (such as
        :class:`~deepcluster_sk.nn.ConvAutoencoder`) is built with the
        ``autoencoder__<name>`` parameters; an instance is deep-copied. As
        in :class:`DECClusterer`.
    n_components : int, default=10
        Dimension of the embedding.
    pretrain : {"end_to_end", "layerwise"}, default="end_to_end"
        ``"end_to_end"`` trains the whole autoencoder with Adam;
        ``"layerwise"`` follows the DEC paper (greedy denoising layer pairs,
        then fine-tuning, SGD), as in :class:`DECClusterer`.
    pretrain_epochs : int or "auto", default="auto"
        Epochs of autoencoder training; ``"auto"`` as in
        :class:`DECClusterer`.
    pretrain_learning_rate : float, default=1e-3
        Initial learning rate of Adam, decayed along a cosine.
    pretrain_iterations : int or "auto", default="auto"
        Mini-batch steps per stage of ``pretrain="layerwise"``; ``"auto"``
        as in :class:`DECClusterer`.
    n_init : int, default=20
        Number of k-means runs on the embedding; the best is kept.
    <device>
    <precision>
    <distributed>
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, mini-batch order and k-means.
    verbose : int, default=0
        0 is silent; 1 prints progress about ten times per phase.
    memory : str, joblib.Memory or None, default=None
        Where to cache the pretrained autoencoder, as in
        :class:`DECClusterer`: fits that differ only in ``n_clusters`` or
        ``n_init`` train it once.
    **autoencoder_params
        ``autoencoder__<name>=value``: keyword arguments of the
        ``autoencoder`` class, as in :class:`DECClusterer`.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training sample.
    cluster_centers_ : ndarray of shape (n_clusters, n_components)
        Cluster centres in the embedding.
    inertia_ : float
        Sum of squared distances of the training embeddings to their centre.
    autoencoder_ : torch.nn.Module
        The trained autoencoder.
    hidden_dims_, batch_size_, pretrain_epochs_, precision_
        The values used, with each ``"auto"`` resolved for the training data
        (``pretrain_iterations_`` instead of ``pretrain_epochs_`` with
        ``pretrain="layerwise"``). ``verbose=1`` prints them.
    n_iter_ : int
        Pretraining epochs run.
    history_ : dict
        ``"pretrain_loss"``: mean reconstruction loss per epoch, and
        ``"stop_reason"``: ``"completed"``, as pretraining runs a fixed
        number of epochs.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column
        names.

    See Also
    --------
    DECClusterer : Refines this model's centres and encoder by self-training.

    Notes
    -----
    Pretraining that diverges raises
    :class:`~deepcluster_sk.exceptions.TrainingDivergedError` naming
    ``pretrain_learning_rate``; an embedding with fewer distinct points than
    ``n_clusters`` warns with :class:`~sklearn.exceptions.ConvergenceWarning`.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from deepcluster_sk import AutoencoderKMeans
    >>> X = load_digits().data / 16
    >>> model = AutoencoderKMeans(n_clusters=10, hidden_dims=(64,),
    ...                           pretrain_epochs=5, random_state=0).fit(X)
    >>> model.transform(X).shape
    (1797, 10)
    """

    def _cluster(self, fit, autoencoder, embedding, pretrain_losses):
        centers, labels = self._kmeans(fit, embedding)
        centers_t = torch.from_numpy(centers).to(embedding.device)
        inertia = squared_distances(embedding, centers_t).min(dim=1).values.sum()
        self.cluster_centers_ = centers
        self.labels_ = labels.astype(np.int64)
        self.inertia_ = float(inertia)
        self.n_iter_ = len(pretrain_losses)
        self.history_ = {"pretrain_loss": pretrain_losses, "stop_reason": "completed"}

    def _collapse_advice(self):
        if self.pretrain == "layerwise":
            remedy = 'pretrain="end_to_end"'
        else:
            remedy = (
                f"a lower pretrain_learning_rate (now {self.pretrain_learning_rate})"
            )
        return (
            "The autoencoder's embedding may have collapsed; try "
            f"{remedy} or fewer clusters."
        )

    def _squared_distances(self, X):
        encoder = self.autoencoder_.encoder
        centers = torch.from_numpy(self.cluster_centers_).to(
            self._module_device(encoder)
        )
        return self._map_batches(
            X, encoder, lambda rows: squared_distances(encoder(rows), centers)
        )

    def predict(self, X):
        """Nearest centre in the embedding for each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster index of each sample.
        """
        X = self._validate_predict_data(X)
        return self._squared_distances(X).argmin(axis=1).astype(np.int64)

    def score(self, X, y=None):
        """Opposite of the k-means objective of ``X`` in the embedding.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        score : float
            Minus the sum of squared distances to the nearest centre.
        """
        X = self._validate_predict_data(X)
        return -float(self._squared_distances(X).min(axis=1).sum(dtype=np.float64))
