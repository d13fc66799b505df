"""Move validated input rows onto a torch device, whole or batch by batch."""

import math

import numpy as np
import scipy.sparse as sp
import torch

from .._distributed import SINGLE
from .._row_chunks import RowChunks
from .._training._sampler import RowSampler
from ._precision import autocast

#: Fraction of the free GPU memory the training data may occupy before it is
#: kept on the host and copied batch by batch instead.
_MAX_DEVICE_FRACTION = 0.5

#: Chunks of out-of-core input held at once: a shuffled epoch's batch spans
#: two consecutive chunks of its order at most (more only across a chunk
#: shorter than a batch, which are then held for that batch).
_CACHED_CHUNKS = 2


def numpy_to_tensor(array, device):
    """Copy (or wrap) a float32 NumPy array as a tensor on ``device``."""
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not array.flags.writeable:
        # torch.from_numpy warns on read-only memory (memory-mapped input).
        array = array.copy()
    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def iter_row_batches(X, batch_size, device, first=0, last=None):
    """Yield ``(start, stop, rows)`` over ``X`` with rows as a dense tensor.

    Sparse input is densified one batch at a time, never as a whole; a
    :class:`~deepcluster_sk.RowChunks` is read one chunk at a time. Only
    the rows ``first:last`` (by default all) are visited.
    """
    last = X.shape[0] if last is None else last
    if isinstance(X, RowChunks):
        for start, stop, block in X.blocks(batch_size, first, last):
            yield start, stop, numpy_to_tensor(block, device)
        return
    for start in range(first, last, batch_size):
        stop = min(start + batch_size, last)
        rows = X[start:stop]
        if sp.issparse(rows):
            rows = rows.toarray()
        yield start, stop, numpy_to_tensor(rows, device)


class TrainingData:
    """The training matrix, kept where index-gathering batches is cheapest.

    Dense data that fits goes to the training device once, so every
    mini-batch is an index gather on the device. Sparse data, and dense data
    too large for the GPU, stays on the host and is copied per batch.
    Out-of-core input (:class:`~deepcluster_sk.RowChunks`) stays where it
    is: batches are gathered from the chunks read last (two are kept), and
    full passes read it chunk by chunk.

    Parameters
    ----------
    X : ndarray of shape (n_samples, ...), sparse matrix or RowChunks
        Validated float32 input: rows of features, or dense samples of any
        shape such as ``(n_samples, channels, height, width)`` images.
    device : torch.device
        The device the model trains on.

    Attributes
    ----------
    source : ndarray, scipy sparse matrix or RowChunks
        ``X`` itself, e.g. to key a cache on the data.
    chunk_rows : int or None
        Rows per chunk of out-of-core input, None for data in memory.
    n_samples : int
    sample_shape : tuple of int
        The shape of one sample, ``(n_features,)`` for rows.
    n_features : int
        The number of values of one sample.
    precision : {"float32", "bfloat16"}
        The precision the networks compute in on these rows; set once the
        fit has resolved it (see :mod:`._precision`).
    replicas : Replicas
        The processes that train on these rows together
        (:mod:`deepcluster_sk._distributed`); each holds all of them, draws
        its share of every batch and computes its block of full passes.
    """

    def __init__(self, X, device, replicas=SINGLE):
        self.device = device
        self.precision = "float32"
        self.replicas = replicas
        self.source = X
        self.n_samples = X.shape[0]
        self.sample_shape = tuple(X.shape[1:])
        self.n_features = math.prod(self.sample_shape)
        self._chunks = X if isinstance(X, RowChunks) else None
        self.chunk_rows = None if self._chunks is None else self._chunks.chunk_rows
        self._cache = {}
        self._sparse = X.tocsr() if sp.issparse(X) else None
        self._dense = None
        if self._sparse is None and self._chunks is None:
            target = device if self._fits_on(device, X) else torch.device("cpu")
            self._dense = numpy_to_tensor(X, target)

    @staticmethod
    def _fits_on(device, X):
        if device.type != "cuda":
            return True
        free, _ = torch.cuda.mem_get_info(device)
        return X.size * 4 <= _MAX_DEVICE_FRACTION * free

    @property
    def on_device(self):
        """Whether the whole matrix lives on the training device."""
        return self._dense is not None and self._dense.device == self.device

    def take(self, index):
        """Rows ``index`` (a 1-D integer tensor) as a dense tensor on the device."""
        if self.on_device:
            return self._dense.index_select(0, index)
        index = index.cpu()
        if self._chunks is not None:
            return self._take_from_chunks(index)
        if self._sparse is not None:
            rows = self._sparse[index.numpy()].toarray()
            return numpy_to_tensor(rows, self.device)
        rows = self._dense.index_select(0, index)
        if self.device.type == "cuda":
            return rows.pin_memory().to(self.device, non_blocking=True)
        return rows

    def _take_from_chunks(self, index):
        chunk_of = torch.div(index, self.chunk_rows, rounding_mode="floor")
        wanted = chunk_of.unique().tolist()
        for chunk in wanted:
            if chunk not in self._cache:
                self._cache[chunk] = numpy_to_tensor(
                    self._chunks.read_chunk(chunk), self.device
                )
            # Most recently used last, so the oldest chunk is dropped first.
            self._cache[chunk] = self._cache.pop(chunk)
        while len(self._cache) > max(_CACHED_CHUNKS, len(wanted)):
            self._cache.pop(next(iter(self._cache)))
        index = index.to(self.device)
        if len(wanted) == 1:
            chunk = wanted[0]
            return self._cache[chunk].index_select(0, index - chunk * self.chunk_rows)
        chunk_of = chunk_of.to(self.device)
        rows = torch.empty(index.numel(), *self.sample_shape, device=self.device)
        for chunk in wanted:
            mask = chunk_of == chunk
            local = index[mask] - chunk * self.chunk_rows
            rows[mask] = self._cache[chunk].index_select(0, local)
        return rows

    def sampler(self, batch_size, generator, *, drop_last=False):
        """A :class:`~.._training._sampler.RowSampler` of these rows.

        Over out-of-core input it draws its batches chunk by chunk.
        """
        return RowSampler(self.n_samples, batch_size, generator, self.device,
                          chunk_rows=self.chunk_rows, drop_last=drop_last,
                          rank=self.replicas.rank,
                          world_size=self.replicas.world_size)

    def autocast(self):
        """The context of a network forward (or training step) in ``precision``."""
        return autocast(self.precision, self.device)

    def first_rows(self, n_rows):
        """The first ``n_rows`` rows (at most all) as a dense tensor on the device."""
        n_rows = min(n_rows, self.n_samples)
        if self._chunks is not None:
            return numpy_to_tensor(self._chunks.read(0, n_rows), self.device)
        return self.take(torch.arange(n_rows, device=self.device))

    def batches(self, batch_size, first=0, last=None):
        """Yield ``(start, stop, rows)`` in order, for full passes over the data.

        Only the rows ``first:last`` (by default all) are visited.
        """
        last = self.n_samples if last is None else last
        if self.on_device:
            for start in range(first, last, batch_size):
                stop = min(start + batch_size, last)
                yield start, stop, self._dense[start:stop]
            return
        if self._chunks is not None:
            source = self._chunks
        elif self._sparse is not None:
            source = self._sparse
        else:
            source = self._dense.numpy()
        yield from iter_row_batches(source, batch_size, self.device, first, last)

    def shard_batches(self, batch_size):
        """:meth:`batches` over this process's block of rows (all of them alone)."""
        return self.batches(batch_size, *self.replicas.shard(self.n_samples))


def shard_outputs(module, data, batch_size):
    """Yield ``module``'s float32 outputs over this process's block of rows.

    In evaluation mode, without gradients, in ``data.precision``, batch
    after batch in order; the block of a single process is every row.
    Autocast and no-grad are entered per batch, never held across a yield.
    """
    module.eval()
    for _, _, rows in data.shard_batches(batch_size):
        with torch.no_grad(), data.autocast():
            outputs = module(rows)
        yield outputs.float()


def forward_all(module, data, batch_size):
    """``module`` in evaluation mode over every row of ``data``, in order.

    The forward passes run in ``data.precision``; the outputs are float32.
    Processes that train together each compute their block of rows and
    gather the others'.

    Parameters
    ----------
    module : torch.nn.Module or callable
        Set to evaluation mode.
    data : TrainingData
    batch_size : int
        Rows per forward pass.

    Returns
    -------
    outputs : torch.Tensor
        The outputs of all batches, concatenated on ``data.device``.
    """
    outputs = torch.cat(list(shard_outputs(module, data, batch_size)))
    return data.replicas.all_gather_rows(outputs, data.n_samples)
