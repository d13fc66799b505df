"""The torch k-means against scikit-learn's, and the embedding initialisation."""

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

import deepcluster_sk._estimators._autoencoder as autoencoder_module
import deepcluster_sk._torch._distances as distances_module
from deepcluster_sk._estimators._autoencoder import kmeans_centers
from deepcluster_sk._torch._distances import squared_distances
from deepcluster_sk._torch._kmeans import (
    kmeans_plusplus_torch,
    lloyd_torch,
    torch_kmeans,
)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(
        n_samples=600, centers=5, n_features=4, cluster_std=1.5, random_state=0
    )
    return X.astype(np.float32), y


def sklearn_inertia(X, n_clusters, seed):
    return KMeans(n_clusters, n_init=10, random_state=seed).fit(X).inertia_


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_sklearn_inertia_and_recovers_blobs(blobs, seed):
    X, y = blobs
    result = torch_kmeans(torch.from_numpy(X), 5, n_init=10, random_state=seed)
    expected = sklearn_inertia(X, 5, seed)
    assert float(result.inertia) == pytest.approx(expected, rel=1e-3)
    assert adjusted_rand_score(y, result.labels.numpy()) > 0.95
    # The reported inertia is that of the returned centres and labels.
    Xt = torch.from_numpy(X)
    direct = (Xt - result.centers[result.labels]).pow(2).sum()
    assert float(result.inertia) == pytest.approx(float(direct), rel=1e-5)


def test_matches_sklearn_on_overlapping_clusters():
    # Many local optima: the restarts must find one as good as sklearn's.
    X, _ = make_blobs(
        n_samples=800, centers=12, n_features=2, cluster_std=2.0, random_state=3
    )
    X = X.astype(np.float32)
    result = torch_kmeans(torch.from_numpy(X), 12, n_init=10, random_state=0)
    assert float(result.inertia) == pytest.approx(sklearn_inertia(X, 12, 0), rel=0.01)


def test_same_seed_same_result_different_seed_different_draws(blobs):
    X = torch.from_numpy(blobs[0])
    first = torch_kmeans(X, 5, n_init=2, random_state=7)
    second = torch_kmeans(X, 5, n_init=2, random_state=7)
    assert torch.equal(first.centers, second.centers)
    assert torch.equal(first.labels, second.labels)
    seeds = [
        kmeans_plusplus_torch(X, 5, torch.Generator().manual_seed(s)) for s in (1, 2)
    ]
    assert not torch.equal(*seeds)


def test_generator_is_accepted_and_advanced(blobs):
    X = torch.from_numpy(blobs[0])
    generator = torch.Generator().manual_seed(0)
    first = kmeans_plusplus_torch(X, 5, generator)
    second = kmeans_plusplus_torch(X, 5, generator)
    assert not torch.equal(first, second)
    result = torch_kmeans(X, 5, n_init=1, random_state=torch.Generator().manual_seed(0))
    assert result.centers.shape == (5, 4)


def test_more_restarts_never_worse(blobs):
    X = torch.from_numpy(blobs[0])
    one = torch_kmeans(X, 8, n_init=1, random_state=3)
    many = torch_kmeans(X, 8, n_init=8, random_state=3)
    # The first of the eight runs is the single run, so the best is no worse.
    assert float(many.inertia) <= float(one.inertia)


def test_plusplus_picks_distinct_far_apart_points():
    X = torch.tensor([[0.0, 0.0]] * 50 + [[10.0, 0.0]] * 50 + [[0.0, 10.0]] * 50)
    centers = kmeans_plusplus_torch(X, 3, torch.Generator().manual_seed(0))
    assert {tuple(c) for c in centers.tolist()} == {
        (0.0, 0.0),
        (10.0, 0.0),
        (0.0, 10.0),
    }


def test_more_clusters_than_distinct_points_does_not_fail():
    X = torch.tensor([[0.0], [0.0], [1.0], [1.0]])
    result = torch_kmeans(X, 3, n_init=2, random_state=0)
    assert float(result.inertia) == 0.0
    assert set(result.labels.tolist()) <= {0, 1, 2}


def test_empty_cluster_is_reseeded_at_the_farthest_point():
    X = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    # The third centre is far from every sample, so its cluster is empty.
    initial = torch.tensor([[0.5], [2.0], [100.0]])
    one_step = lloyd_torch(X, initial, max_iter=1, tol=0.0)
    assert one_step.centers.flatten().tolist() == [0.5, 6.0, 10.0]
    # Run on, the re-seeding keeps every cluster in use and finds the optimum.
    result = lloyd_torch(X, initial, max_iter=50, tol=0.0)
    assert torch.bincount(result.labels, minlength=3).min() >= 1
    assert float(result.inertia) == pytest.approx(0.5)


def test_lloyd_stops_at_tolerance():
    X = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    converged = lloyd_torch(X, torch.tensor([[0.5], [10.5]]), max_iter=50, tol=0.0)
    assert converged.n_iter == 1
    assert float(converged.inertia) == pytest.approx(1.0)


def test_squared_distances_match_cdist():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(300, 7, generator=generator, dtype=torch.float64)
    C = torch.randn(4, 7, generator=generator, dtype=torch.float64)
    assert torch.allclose(squared_distances(X, C), torch.cdist(X, C) ** 2)


def test_squared_distances_of_large_inputs_use_small_chunks(monkeypatch):
    monkeypatch.setattr(distances_module, "_CHUNK_ELEMENTS", 10)
    X, C = torch.arange(12.0).reshape(6, 2), torch.zeros(3, 2)
    expected = X.pow(2).sum(dim=1, keepdim=True).expand(6, 3)
    assert torch.equal(squared_distances(X, C), expected)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_clusters=0), "n_clusters=0"),
        (dict(n_clusters=601), "n_samples=600"),
        (dict(n_clusters=2, n_init=0), "n_init=0"),
        (dict(n_clusters=2, tol=-1.0), "tol=-1.0"),
    ],
)
def test_bad_parameters_raise(blobs, kwargs, message):
    with pytest.raises(ValueError, match=message):
        torch_kmeans(torch.from_numpy(blobs[0]), **kwargs)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="2-D floating-point"):
        torch_kmeans(torch.arange(10), 2)
    with pytest.raises(ValueError, match="2-D floating-point"):
        torch_kmeans(np.zeros((10, 2)), 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_generator_on_another_device_raises(blobs):
    X = torch.from_numpy(blobs[0]).cuda()
    with pytest.raises(ValueError, match="generator on cpu"):
        torch_kmeans(X, 5, random_state=torch.Generator())


def test_kmeans_centers_on_cpu_is_sklearn(blobs):
    X, y = blobs
    centers, labels = kmeans_centers(torch.from_numpy(X), 5, 3, 0)
    expected = KMeans(5, n_init=3, random_state=0).fit(X.astype(np.float64))
    assert centers.dtype == np.float32 and centers.shape == (5, 4)
    np.testing.assert_allclose(centers, expected.cluster_centers_, rtol=1e-5)
    np.testing.assert_array_equal(labels, expected.labels_)


def test_kmeans_centers_uses_torch_for_cuda_tensors(blobs, monkeypatch):
    # No GPU here: pretend the embedding is on CUDA and check the torch path
    # is taken and returns what the function promises.
    module = autoencoder_module
    X, y = blobs
    calls = []
    real = module.torch_kmeans

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    class FakeCuda(torch.Tensor):
        is_cuda = True

    monkeypatch.setattr(module, "torch_kmeans", spy)
    embedding = torch.from_numpy(X).as_subclass(FakeCuda)
    centers, labels = kmeans_centers(embedding, 5, 4, 0)
    assert calls == [dict(n_init=4, random_state=0)]
    assert centers.dtype == np.float32 and centers.shape == (5, 4)
    assert isinstance(labels, np.ndarray) and labels.shape == (600,)
    assert adjusted_rand_score(y, labels) > 0.95


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_matches_cpu_inertia(blobs):
    X, _ = blobs
    gpu = torch_kmeans(torch.from_numpy(X).cuda(), 5, n_init=10, random_state=0)
    assert gpu.centers.is_cuda
    assert float(gpu.inertia) == pytest.approx(sklearn_inertia(X, 5, 0), rel=1e-3)


def test_kmeans_centers_fits_a_sample_of_large_embeddings(blobs):
    """Above sample_size rows: k-means on a sample, every row labelled by its centre."""
    X = blobs[0].astype(np.float32)
    embedding = torch.from_numpy(X)
    centers, labels = kmeans_centers(embedding, 5, 3, 0, sample_size=len(X) // 4)
    full_centers, full_labels = kmeans_centers(embedding, 5, 3, 0)
    distances = ((X[:, None, :] - centers[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(labels, distances.argmin(axis=1))
    assert adjusted_rand_score(full_labels, labels) > 0.95
    assert labels.shape == (len(X),)
