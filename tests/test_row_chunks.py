"""Out-of-core input: memory maps, h5py and zarr arrays read by chunks of rows."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import make_blobs

from deepcluster_sk import (
    AutoencoderKMeans,
    DACClusterer,
    DECClusterer,
    IMSATClusterer,
    N2DClusterer,
    RowChunks,
)
from deepcluster_sk._row_chunks import is_out_of_core
from deepcluster_sk._training._sampler import RowSampler

FAST = {
    AutoencoderKMeans: dict(hidden_dims=(16,), pretrain_epochs=3, n_init=2),
    DECClusterer: dict(hidden_dims=(16,), pretrain_epochs=3, max_iter=60,
                       update_interval=20, init="kmeans", n_init=2),
    IMSATClusterer: dict(hidden_dims=(16,), n_epochs=3),
    DACClusterer: dict(hidden_dims=(16,), steps_per_stage=10),
    N2DClusterer: dict(hidden_dims=(16,), pretrain_epochs=3, manifold=False),
}


class ReadCountingArray:
    """A read-only array-like that refuses any read of more than ``limit`` rows.

    Only contiguous row slices are allowed, as h5py and zarr read fastest;
    fancy indexing or a whole-array read fails the test.
    """

    def __init__(self, values, limit):
        self._values = values
        self.limit = limit
        self.shape = values.shape
        self.dtype = values.dtype
        self.reads = 0

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise AssertionError(f"non-contiguous read {key!r}")
        start, stop, _ = key.indices(self.shape[0])
        if stop - start > self.limit:
            raise AssertionError(f"read of {stop - start} rows > {self.limit}")
        self.reads += 1
        return self._values[key].copy()

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole array was read")


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(600, 8, centers=3, cluster_std=0.6, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture
def memmap(tmp_path, blobs):
    path = tmp_path / "X.npy"
    np.save(path, blobs[0])
    return np.load(path, mmap_mode="r")


def test_chunk_rows_default_fills_64_mib_and_blocks_stay_inside_chunks():
    X = np.zeros((10, 3), dtype=np.float64)
    assert RowChunks(X).chunk_rows == 10  # capped at n_samples
    assert RowChunks(np.zeros((2**20, 64), np.float32)).chunk_rows == 2**18
    chunks = RowChunks(np.arange(14, dtype=np.float64).reshape(7, 2), chunk_rows=3)
    assert chunks.n_chunks == 3
    blocks = list(chunks.blocks(2))
    assert [(start, stop) for start, stop, _ in blocks] == [(0, 2), (2, 3), (3, 5),
                                                            (5, 6), (6, 7)]
    assert all(block.dtype == np.float32 for _, _, block in blocks)
    np.testing.assert_array_equal(np.concatenate([b for _, _, b in blocks]),
                                  np.arange(14).reshape(7, 2))


@pytest.mark.parametrize(
    "data, error, match",
    [
        ([[1.0, 2.0]], TypeError, "shape"),
        (sp.csr_matrix(np.eye(3)), TypeError, "sparse"),
        (np.zeros(5), ValueError, "2D"),
    ],
)
def test_row_chunks_rejects_what_it_cannot_read(data, error, match):
    with pytest.raises(error, match=match):
        RowChunks(data)


@pytest.mark.parametrize("chunk_rows", [0, -1, 2.5, "10"])
def test_row_chunks_rejects_bad_chunk_rows(chunk_rows):
    with pytest.raises(ValueError, match="chunk_rows"):
        RowChunks(np.zeros((4, 2)), chunk_rows=chunk_rows)


def test_which_inputs_are_read_by_chunks(memmap, blobs):
    assert is_out_of_core(memmap)
    assert is_out_of_core(RowChunks(blobs[0]))
    assert is_out_of_core(ReadCountingArray(blobs[0], 10))
    assert not is_out_of_core(blobs[0])
    assert not is_out_of_core(sp.csr_matrix(blobs[0]))
    assert not is_out_of_core(pd.DataFrame(blobs[0]))
    assert not is_out_of_core(blobs[0].tolist())
    assert not is_out_of_core(torch.from_numpy(blobs[0]))


@pytest.mark.parametrize("n_samples, most_chunks", [(100, 2), (103, 3)])
def test_chunked_epochs_visit_every_row_once_and_batches_span_few_chunks(
    n_samples, most_chunks
):
    # A batch spans two chunks, or three across the last one when it is
    # shorter than a batch.
    sampler = RowSampler(n_samples, 16, torch.Generator().manual_seed(0),
                         torch.device("cpu"), chunk_rows=25)
    for _ in range(2):
        batches = [next(sampler) for _ in range(sampler.steps_per_epoch)]
        order = torch.cat(batches)
        assert sorted(order.tolist()) == list(range(n_samples))
        assert max(len(set((b // 25).tolist())) for b in batches) <= most_chunks
        # the chunks are visited whole, one after the other
        chunk_sequence = (order // 25).tolist()
        runs = [c for i, c in enumerate(chunk_sequence) if i == 0 or c != chunk_sequence[i - 1]]
        assert sorted(runs) == list(range(-(-n_samples // 25)))


def test_one_chunk_draws_the_same_batches_as_in_memory():
    def batches(chunk_rows):
        sampler = RowSampler(50, 8, torch.Generator().manual_seed(3), torch.device("cpu"),
                             chunk_rows=chunk_rows)
        return torch.cat([next(sampler) for _ in range(14)]).tolist()

    assert batches(None) == batches(50) == batches(1000)


@pytest.mark.parametrize("Est", list(FAST), ids=lambda cls: cls.__name__)
def test_a_memmap_in_one_chunk_fits_exactly_as_in_memory(Est, blobs, memmap):
    X, _ = blobs
    params = dict(n_clusters=3, random_state=0, **FAST[Est])
    in_memory = Est(**params).fit(X)
    streamed = Est(**params).fit(memmap)
    np.testing.assert_array_equal(in_memory.labels_, streamed.labels_)
    np.testing.assert_allclose(in_memory.transform(X), streamed.transform(memmap),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("Est", list(FAST), ids=lambda cls: cls.__name__)
def test_fit_and_predict_never_read_more_than_a_chunk(Est, blobs):
    X, _ = blobs
    proxy = ReadCountingArray(X, limit=128)
    model = Est(n_clusters=3, random_state=0, **FAST[Est])
    model.fit(RowChunks(proxy, chunk_rows=128))
    assert model.n_features_in_ == X.shape[1]
    labels = model.predict(RowChunks(proxy, chunk_rows=128))
    np.testing.assert_array_equal(labels, model.predict(X))
    assert proxy.reads > 0


def test_chunked_training_matches_the_clusters_of_in_memory_training(blobs):
    X, y = blobs
    from sklearn.metrics import adjusted_rand_score

    params = dict(n_clusters=3, random_state=0, **FAST[DECClusterer])
    chunked = DECClusterer(**params).fit(RowChunks(X, chunk_rows=100))
    assert adjusted_rand_score(y, chunked.labels_) > 0.9


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (np.nan, ValueError, "NaN"),
        (np.inf, ValueError, "infinity"),
        (1e30, ValueError, "too large for float32"),
    ],
)
def test_bad_values_in_a_later_chunk_are_reported(blobs, bad, error, match):
    X = blobs[0].copy()
    X[555, 3] = bad
    model = AutoencoderKMeans(n_clusters=3, **FAST[AutoencoderKMeans])
    with pytest.raises(error, match=match):
        model.fit(RowChunks(X, chunk_rows=100))
    assert not hasattr(model, "n_features_in_")


@pytest.mark.parametrize("bad, match", [(np.nan, "NaN"), (1e30, "too large for float32")])
def test_prediction_checks_values_in_its_one_pass(blobs, bad, match):
    """predict reads each chunk once, checking it before the cast."""
    X = blobs[0].copy()
    model = AutoencoderKMeans(n_clusters=3, random_state=0, **FAST[AutoencoderKMeans])
    model.fit(X)
    reads = []

    class Counted(np.ndarray):
        def __getitem__(self, key):
            if isinstance(key, slice):
                reads.append((key.start, key.stop))
            return np.asarray(self).__getitem__(key)

    good = X.astype(np.float64).view(Counted)
    labels = model.predict(RowChunks(good, chunk_rows=100))
    np.testing.assert_array_equal(labels, model.predict(X))
    assert sorted(reads) == [(start, min(start + 100, len(X)))
                             for start in range(0, len(X), 100)]
    X[555, 3] = bad
    with pytest.raises(ValueError, match=match):
        model.predict(RowChunks(X.astype(np.float64), chunk_rows=100))


def test_prediction_hands_back_each_memmap_chunk_it_checked(blobs, tmp_path, monkeypatch):
    """The values checked on read still come from the map, whose pages are released."""
    import deepcluster_sk._row_chunks as row_chunks

    X = blobs[0]
    model = AutoencoderKMeans(n_clusters=3, random_state=0, **FAST[AutoencoderKMeans])
    model.fit(X)
    np.save(tmp_path / "X.npy", X)
    released = []
    release = row_chunks._release_pages
    monkeypatch.setattr(row_chunks, "_release_pages",
                        lambda view: released.append(len(view)) or release(view))
    chunks = RowChunks(np.load(tmp_path / "X.npy", mmap_mode="r"), chunk_rows=100)
    np.testing.assert_array_equal(model.predict(chunks), model.predict(X))
    assert sorted(released) == sorted(
        min(100, len(X) - start) for start in range(0, len(X), 100)
    )


def test_non_numeric_and_mismatched_input_is_a_clear_error(blobs):
    model = AutoencoderKMeans(n_clusters=3, **FAST[AutoencoderKMeans])
    with pytest.raises(TypeError, match="numeric"):
        model.fit(RowChunks(np.array([["a", "b"]] * 5)))
    model.fit(blobs[0])
    with pytest.raises(ValueError, match="features"):
        model.predict(RowChunks(np.zeros((4, 5), np.float32)))


def test_integer_and_float64_chunks_are_cast_chunk_by_chunk(blobs):
    X = np.round(blobs[0] * 10).astype(np.int32)
    model = AutoencoderKMeans(n_clusters=3, random_state=0, **FAST[AutoencoderKMeans])
    model.fit(RowChunks(X, chunk_rows=64))
    reference = AutoencoderKMeans(n_clusters=3, random_state=0, **FAST[AutoencoderKMeans])
    reference.fit(RowChunks(X.astype(np.float64), chunk_rows=64))
    np.testing.assert_array_equal(model.labels_, reference.labels_)


def test_the_pretraining_cache_keys_chunked_input_on_its_values(blobs, tmp_path):
    params = dict(n_clusters=3, random_state=0, memory=str(tmp_path),
                  **FAST[AutoencoderKMeans])
    first = AutoencoderKMeans(**params).fit(RowChunks(blobs[0], chunk_rows=100))
    again = AutoencoderKMeans(**params).fit(RowChunks(blobs[0], chunk_rows=250))
    assert again.history_["pretrain_loss"] == first.history_["pretrain_loss"]
    other = blobs[0].copy()
    other[0, 0] += 1.0
    changed = AutoencoderKMeans(**params).fit(RowChunks(other, chunk_rows=100))
    assert changed.history_["pretrain_loss"] != first.history_["pretrain_loss"]


def test_h5py_dataset(tmp_path, blobs):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "data.h5", "w") as file:
        file.create_dataset("X", data=blobs[0], chunks=(100, 8))
    with h5py.File(tmp_path / "data.h5", "r") as file:
        assert is_out_of_core(file["X"])
        model = DECClusterer(n_clusters=3, random_state=0, **FAST[DECClusterer])
        model.fit(file["X"])
        labels = model.predict(RowChunks(file["X"], chunk_rows=200))
    np.testing.assert_array_equal(labels, model.predict(blobs[0]))


def test_zarr_array(tmp_path, blobs):
    zarr = pytest.importorskip("zarr")
    array = zarr.open_array(str(tmp_path / "data.zarr"), mode="w", shape=blobs[0].shape,
                            chunks=(100, 8), dtype="float32")
    array[:] = blobs[0]
    assert is_out_of_core(array)
    model = AutoencoderKMeans(n_clusters=3, random_state=0, **FAST[AutoencoderKMeans])
    model.fit(RowChunks(array, chunk_rows=200))
    reference = AutoencoderKMeans(n_clusters=3, random_state=0, **FAST[AutoencoderKMeans])
    reference.fit(RowChunks(blobs[0], chunk_rows=200))
    np.testing.assert_array_equal(model.labels_, reference.labels_)


_RSS_SCRIPT = textwrap.dedent(
    """
    import json, sys, numpy as np
    from deepcluster_sk import {estimator}, RowChunks

    def peak_mb():
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the
        # forking parent (pytest) across exec.
        with open("/proc/self/status") as status:
            line = next(l for l in status if l.startswith("VmHWM"))
        return int(line.split()[1]) / 1024

    X = np.load(sys.argv[1], mmap_mode="r")
    model = {estimator}(n_clusters=4, random_state=0, {params})
    model.fit(RowChunks(X[:2000], chunk_rows=500))  # imports and thread pools
    before = peak_mb()
    model.fit(RowChunks(X, chunk_rows={chunk_rows}))
    print(json.dumps({{"before": before, "after": peak_mb()}}))
    """
)


@pytest.mark.parametrize(
    "estimator, params",
    [
        ("AutoencoderKMeans", "hidden_dims=(16,), pretrain_epochs=1, n_init=1"),
        ("DECClusterer", "hidden_dims=(16,), pretrain_epochs=1, max_iter=200, "
                         "update_interval=100, init='kmeans', n_init=1"),
    ],
)
def test_fit_on_a_memmap_never_holds_a_copy_of_it(tmp_path, estimator, params):
    n_samples, n_features, chunk_rows = 100_000, 512, 5_000
    path = tmp_path / "X.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                  shape=(n_samples, n_features))
    rng = np.random.default_rng(0)
    for start in range(0, n_samples, chunk_rows):
        X[start:start + chunk_rows] = rng.standard_normal((chunk_rows, n_features))
    X.flush()
    del X
    script = _RSS_SCRIPT.format(estimator=estimator, params=params, chunk_rows=chunk_rows)
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                         text=True, check=True)
    peaks = json.loads(out.stdout.strip().splitlines()[-1])
    data_mb = n_samples * n_features * 4 / 2**20  # 195 MiB
    grown = peaks["after"] - peaks["before"]
    # Two cached chunks of 9.8 MiB, the per-sample state (embedding, labels,
    # soft assignments) and bounded temporaries: never a copy of the data.
    # Measured: see benchmarks/results/out_of_core.md.
    assert grown < 0.5 * data_mb, peaks
