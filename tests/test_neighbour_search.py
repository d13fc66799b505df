"""Nearest neighbours of the training samples: exact, approximate, out of core."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from deepcluster_sk import RowChunks, _neighbour_search
from deepcluster_sk._neighbour_search import _without_self, neighbour_graph
from deepcluster_sk._torch._data import TrainingData
from deepcluster_sk._torch._distances import kth_neighbor_distances, nearest_other_rows


def _data(n, d=5, seed=0):
    X = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return X, TrainingData(X, torch.device("cpu"))


def test_nearest_other_rows_match_scikit_learn_and_skip_the_row_itself():
    X, data = _data(120)
    distances, indices = nearest_other_rows(data, k=7, batch_size=32)
    expected_distances, expected = NearestNeighbors(n_neighbors=8).fit(X).kneighbors(X)
    np.testing.assert_array_equal(indices.numpy(), expected[:, 1:])
    np.testing.assert_allclose(distances.numpy(), expected_distances[:, 1:], rtol=1e-4,
                               atol=1e-5)
    assert indices.dtype == torch.int64


def test_a_range_of_rows_is_searched_among_itself_with_global_row_numbers():
    X, data = _data(90)
    _, indices = nearest_other_rows(data, k=4, batch_size=16, first=30, last=70)
    _, expected = NearestNeighbors(n_neighbors=5).fit(X[30:70]).kneighbors(X[30:70])
    assert indices.shape == (40, 4)
    np.testing.assert_array_equal(indices.numpy(), expected[:, 1:] + 30)


def test_duplicate_rows_are_each_others_neighbours_never_their_own():
    X = np.repeat(np.arange(6, dtype=np.float32)[:, None] * 10, 2, axis=0)
    data = TrainingData(X, torch.device("cpu"))
    distances, indices = nearest_other_rows(data, k=1, batch_size=5)
    np.testing.assert_array_equal(indices[:, 0].numpy(), np.arange(12) ^ 1)
    np.testing.assert_array_equal(distances.numpy(), np.zeros((12, 1)))
    # k is capped at n_samples - 1.
    assert nearest_other_rows(data, k=50, batch_size=5)[1].shape == (12, 11)


def test_kth_neighbor_distances_match_scikit_learn():
    X, data = _data(120)
    ours = kth_neighbor_distances(data, k=10, batch_size=32).numpy()
    distances, _ = NearestNeighbors(n_neighbors=11).fit(X).kneighbors(X)
    np.testing.assert_allclose(ours, distances[:, 10], rtol=1e-4)
    small = TrainingData(X[:4], torch.device("cpu"))
    assert kth_neighbor_distances(small, k=10, batch_size=32).shape == (4,)


def test_without_self_drops_the_row_or_else_the_farthest_neighbour():
    indices = np.array([[0, 3, 2], [2, 1, 1], [0, 2, 3], [1, 2, 0]])
    distances = np.array([[0.0, 1, 2], [0, 0, 0], [1, 2, 3], [1, 2, 3]])
    kept, kept_distances = _without_self(indices, distances)
    # Row 1 lists itself twice (duplicates): only the first goes.
    np.testing.assert_array_equal(kept, [[3, 2], [2, 1], [0, 3], [1, 2]])
    np.testing.assert_array_equal(kept_distances, [[1, 2], [0, 0], [1, 3], [1, 2]])


def test_large_data_gets_an_approximate_graph_close_to_the_exact_one(monkeypatch):
    pytest.importorskip("pynndescent")
    X, data = _data(600)
    exact = nearest_other_rows(data, 10, 64)[1].numpy()
    monkeypatch.setattr(_neighbour_search, "APPROXIMATE_FROM", 500)
    graph = neighbour_graph(data, 10, 64, np.random.RandomState(0)).numpy()
    assert graph.shape == (600, 10) and graph.dtype == np.int64
    assert not (graph == np.arange(600)[:, None]).any()
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(graph, exact)])
    assert recall > 0.9


def test_out_of_core_graph_is_searched_within_each_chunk(tmp_path):
    X, _ = _data(103)
    np.save(tmp_path / "X.npy", X)
    source = np.load(tmp_path / "X.npy", mmap_mode="r")
    data = TrainingData(RowChunks(source, chunk_rows=50), torch.device("cpu"))
    graph = neighbour_graph(data, 5, 16, np.random.RandomState(0)).numpy()
    assert graph.shape == (103, 5)
    _, first = NearestNeighbors(n_neighbors=6).fit(X[:50]).kneighbors(X[:50])
    np.testing.assert_array_equal(graph[:50], first[:, 1:])
    # The last chunk (3 rows, too few for 5 neighbours) joins the one before.
    _, last = NearestNeighbors(n_neighbors=6).fit(X[50:]).kneighbors(X[50:])
    np.testing.assert_array_equal(graph[50:], last[:, 1:] + 50)


def test_large_data_gets_pynndescent_radii_close_to_the_exact_ones(monkeypatch):
    pytest.importorskip("pynndescent")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5)).astype(np.float32)
    data = TrainingData(X, torch.device("cpu"))
    exact = kth_neighbor_distances(data, k=10, batch_size=64).numpy()
    monkeypatch.setattr(_neighbour_search, "APPROXIMATE_FROM", 500)
    approximate = _neighbour_search.kth_distances(
        data, 10, 64, np.random.RandomState(0)
    ).numpy()
    # An approximate neighbour is never nearer than the exact one.
    assert (approximate >= exact - 1e-5).all()
    assert np.median(approximate / exact) < 1.01


def test_without_pynndescent_large_data_is_searched_exactly_with_a_warning(monkeypatch):
    X = np.random.default_rng(0).normal(size=(80, 3)).astype(np.float32)
    data = TrainingData(X, torch.device("cpu"))
    monkeypatch.setattr(_neighbour_search, "APPROXIMATE_FROM", 50)
    monkeypatch.setattr(_neighbour_search, "_import_pynndescent", lambda: None)
    with pytest.warns(UserWarning, match="umap"):
        distances = _neighbour_search.kth_distances(
            data, 10, 64, np.random.RandomState(0)
        )
    np.testing.assert_allclose(distances.numpy(),
                               kth_neighbor_distances(data, 10, 64).numpy())


@pytest.mark.parametrize("store", ["h5py", "float64 memmap"])
def test_data_on_disk_is_searched_approximately_through_a_float32_spill(
    monkeypatch, tmp_path, store
):
    """h5py, zarr or a memmap of another dtype: spilled to a float32 map, no warning."""
    pytest.importorskip("pynndescent")
    X = np.random.default_rng(0).normal(size=(600, 5)).astype(np.float32)
    if store == "h5py":
        h5py = pytest.importorskip("h5py")
        file = h5py.File(tmp_path / "X.h5", "w")
        source = file.create_dataset("X", data=X)
    else:
        np.save(tmp_path / "X.npy", X.astype(np.float64))
        source = np.load(tmp_path / "X.npy", mmap_mode="r")
    monkeypatch.setattr(_neighbour_search, "APPROXIMATE_FROM", 500)
    on_disk = TrainingData(RowChunks(source, chunk_rows=128), torch.device("cpu"))
    in_memory = TrainingData(X, torch.device("cpu"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        spilled = _neighbour_search.kth_distances(on_disk, 10, 64, np.random.RandomState(0))
    direct = _neighbour_search.kth_distances(in_memory, 10, 64, np.random.RandomState(0))
    np.testing.assert_array_equal(spilled.numpy(), direct.numpy())
