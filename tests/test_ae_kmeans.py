"""AutoencoderKMeans: k-means in a pretrained autoencoder's embedding."""


import numpy as np
import pytest
from conftest import FAST_DEC
from sklearn.cluster import KMeans

from deepcluster_sk import AutoencoderKMeans, DECClusterer
from deepcluster_sk.metrics import cluster_accuracy

FAST = {k: FAST_DEC[k] for k in ("hidden_dims", "n_components", "pretrain_epochs", "batch_size", "n_init", "random_state")}


@pytest.fixture(scope="module")
def fitted(blobs):
    X, _ = blobs
    return AutoencoderKMeans(n_clusters=3, **FAST).fit(X)


def test_clusters_are_kmeans_on_the_embedding(fitted, blobs):
    X, y = blobs
    Z = fitted.transform(X)
    kmeans = KMeans(3, n_init=FAST["n_init"], random_state=0).fit(Z)
    assert cluster_accuracy(kmeans.labels_, fitted.labels_) > 0.99
    np.testing.assert_array_equal(fitted.predict(X), fitted.labels_)
    np.testing.assert_allclose(-fitted.score(X), fitted.inertia_, rtol=1e-4)
    assert cluster_accuracy(y, fitted.labels_) > 0.95


def test_same_embedding_as_dec_before_self_training(fitted, blobs):
    # DEC starts from exactly this model: with no self-training steps the
    # two estimators share encoder and centres for the same seed.
    X, _ = blobs
    dec = DECClusterer(n_clusters=3, **FAST, max_iter=0).fit(X)
    np.testing.assert_array_equal(dec.transform(X), fitted.transform(X))
    np.testing.assert_allclose(dec.cluster_centers_, fitted.cluster_centers_, rtol=1e-6)


def test_history_and_iterations(fitted):
    assert fitted.n_iter_ == FAST["pretrain_epochs"]
    assert len(fitted.history_["pretrain_loss"]) == FAST["pretrain_epochs"]


