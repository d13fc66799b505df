"""k-means in the embedding, the initialisation of the cluster centres."""

import numpy as np
from sklearn.cluster import KMeans


def kmeans_centers(embedding, n_clusters, n_init, random_state):
    """Cluster an embedding with k-means and return its centres and labels.

    Parameters
    ----------
    embedding : torch.Tensor of shape (n_samples, n_components)
    n_clusters, n_init : int
    random_state : int

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_components), float32
    labels : ndarray of shape (n_samples,)
    """
    Z = embedding.detach().cpu().numpy().astype(np.float64)
    kmeans = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=random_state)
    labels = kmeans.fit_predict(Z)
    return kmeans.cluster_centers_.astype(np.float32), labels
