"""The nearest neighbours of the training samples, exact or approximate.

IMSAT scales its perturbation radius by each sample's distance to its k-th
neighbour (:func:`kth_distances`); DAC pairs each sample with one of its
nearest (:func:`neighbour_graph`). The exact search
multiplies every block of rows with every other: its cost grows with the
square of the number of samples (an hour for 400 000 rows of 64 features on
2 cores). From :data:`APPROXIMATE_FROM` samples on, pynndescent's
approximate search (the index umap-learn uses, installed with the ``umap``
extra) takes its place, with a cost that grows about linearly; where
pynndescent is missing, the exact search runs with a warning naming the
extra.
"""

import os
import tempfile
import warnings
from contextlib import contextmanager

import numpy as np
import torch

from ._row_chunks import RowChunks
from ._torch._distances import nearest_other_rows
from ._torch._threads import torch_threads_kept

#: Samples from which pynndescent replaces the exact search
#: (``benchmarks/results/tuning/neighbour_search.md``).
APPROXIMATE_FROM = 20_000

_PYNNDESCENT_EXTRA = "pip install 'deepcluster-sk[umap]' (or: pip install pynndescent)"


def _import_pynndescent():
    try:
        import pynndescent
    except ImportError:
        return None
    return pynndescent


@contextmanager
def _host_array(data):
    """The training rows (dense: in memory or out of core) as one float32 host array.

    An in-memory fit already holds them; a float32 memory map is read in
    place by pynndescent's compiled code. Other out-of-core input (h5py,
    zarr, a memory map of another dtype) is written chunk by chunk, as
    float32, to a temporary file, mapped for the search and deleted after
    it: never loaded whole.
    """
    source = data.source
    if isinstance(source, RowChunks):
        raw = source.data
        if isinstance(raw, np.memmap) and raw.dtype == np.float32:
            yield raw.reshape(raw.shape[0], -1)
            return
        with tempfile.TemporaryDirectory(prefix="deepcluster_sk-") as folder:
            yield _spilled(source, os.path.join(folder, "rows.f32"))
        return
    yield source.reshape(source.shape[0], -1)


def _spilled(chunks, path):
    """``chunks`` written to ``path`` as float32 rows; a read-only memory map of it."""
    with open(path, "wb") as file:
        for _, _, block in chunks.blocks():
            file.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
    n_values = int(np.prod(chunks.shape[1:]))
    return np.memmap(path, dtype=np.float32, mode="r", shape=(chunks.shape[0], n_values))


def kth_distances(data, k, batch_size, rng):
    """Distance of every training sample to its ``k``-th nearest other sample.

    Exact (:func:`~deepcluster_sk._torch._distances.nearest_other_rows`)
    below :data:`APPROXIMATE_FROM` samples, approximate from there on.

    Parameters
    ----------
    data : TrainingData
    k : int
        Capped at ``n_samples - 1``.
    batch_size : int
        Rows per block of the exact search.
    rng : numpy.random.RandomState
        The fit's generator; the approximate search draws its seed from it
        (the exact search draws nothing).

    Returns
    -------
    distances : torch.Tensor of shape (n_samples,), float32, on ``data.device``
    """
    distances, _ = _nearest(data, k, batch_size, rng, advice="Pass a fixed eps to skip it.")
    return distances[:, -1]


def neighbour_graph(data, k, batch_size, rng):
    """The ``k`` nearest other samples of every training sample, as row numbers.

    Data in memory: among all samples, exact below :data:`APPROXIMATE_FROM`
    samples and approximate from there on, as :func:`kth_distances`.
    Out-of-core data: exact, among the samples of the same chunk of
    ``RowChunks`` (a last chunk of ``k`` rows or fewer joins the one
    before), so that a mini-batch drawn from one chunk finds its neighbours
    in the chunk already read.

    Parameters
    ----------
    data, k, batch_size, rng
        As in :func:`kth_distances`.

    Returns
    -------
    indices : torch.Tensor of shape (n_samples, k), int64, on ``data.device``
    """
    source = data.source
    if not isinstance(source, RowChunks):
        advice = "Pass neighbor_weight=0 to skip it."
        return _nearest(data, k, batch_size, rng, advice=advice)[1]
    k = min(k, data.n_samples - 1)
    bounds = [source.chunk_bounds(chunk) for chunk in range(source.n_chunks)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] <= k:
        bounds[-2:] = [(bounds[-2][0], bounds[-1][1])]
    return torch.cat(
        [nearest_other_rows(data, k, batch_size, start, stop)[1] for start, stop in bounds]
    )


def _nearest(data, k, batch_size, rng, *, advice):
    """``(distances, indices)`` of the ``k`` nearest other samples of each sample.

    Exact below :data:`APPROXIMATE_FROM` samples; pynndescent from there on
    unless it is missing or the input is sparse, where the exact search
    runs with a warning that ends with ``advice``.
    """
    k = min(k, data.n_samples - 1)
    if data.n_samples < APPROXIMATE_FROM:
        return nearest_other_rows(data, k, batch_size)
    pynndescent = _import_pynndescent()
    sparse = not isinstance(data.source, (np.ndarray, RowChunks))
    if pynndescent is None or sparse:
        reason = (
            f"pynndescent is missing ({_PYNNDESCENT_EXTRA})" if pynndescent is None
            else "the input is sparse"
        )
        warnings.warn(
            f"The exact {k}-nearest-neighbour search of {data.n_samples} samples "
            f"costs time quadratic in n_samples, because {reason}. {advice}",
            UserWarning,
            stacklevel=4,
        )
        return nearest_other_rows(data, k, batch_size)
    seed = int(rng.randint(np.iinfo(np.int32).max))
    with _host_array(data) as array, warnings.catch_warnings(), torch_threads_kept():
        # numba's note that a seed makes some steps single-threaded
        warnings.filterwarnings("ignore", category=UserWarning, module="pynndescent")
        index = pynndescent.NNDescent(
            array, n_neighbors=k + 1, random_state=seed, low_memory=True,
            compressed=True,
        )
        indices, distances = index.neighbor_graph
        del index
    indices, distances = _without_self(indices, distances)
    return (
        torch.from_numpy(np.ascontiguousarray(distances, dtype=np.float32)).to(data.device),
        torch.from_numpy(np.ascontiguousarray(indices, dtype=np.int64)).to(data.device),
    )


def _without_self(indices, distances):
    """pynndescent's ``k + 1`` neighbours of each row less the row itself.

    A row is usually its own first neighbour; where duplicates or the
    approximation left it out, its farthest neighbour goes instead.
    """
    n, width = indices.shape
    drop = indices == np.arange(n)[:, None]
    missing = ~drop.any(axis=1)
    drop[missing, width - 1] = True
    # Only the first occurrence of a row among its own neighbours is dropped.
    drop &= np.cumsum(drop, axis=1) == 1
    keep = ~drop
    return indices[keep].reshape(n, width - 1), distances[keep].reshape(n, width - 1)
