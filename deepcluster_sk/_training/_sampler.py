"""Shuffled mini-batches of row indices, epoch after epoch."""

import torch


def steps_per_epoch(n_samples, batch_size, drop_last=False):
    """Mini-batch steps of one pass over ``n_samples`` rows.

    The last one short, or with ``drop_last`` dropped when incomplete, as
    :class:`RowSampler` does: then a batch larger than the data is the data,
    one step.
    """
    if drop_last:
        return n_samples // min(batch_size, n_samples)
    return -(-n_samples // batch_size)


class RowSampler:
    """An endless iterator of shuffled mini-batches of row indices.

    Each epoch is a fresh permutation of the rows, drawn on the CPU from
    ``generator`` when the epoch's first batch is asked for, so the same
    seed gives the same batches on every device. Index tensors live on
    ``device``.

    Parameters
    ----------
    n_samples, batch_size : int
    generator : torch.Generator
        CPU generator of the permutations.
    device : torch.device
    chunk_rows : int or None, default=None
        Rows per chunk of input read from disk
        (:class:`~deepcluster_sk.RowChunks`). Each epoch then visits the
        chunks in a shuffled order, and the rows of each chunk in a shuffled
        order, so that a batch draws from two chunks at most (three across
        a last chunk shorter than a batch). None, or a
        chunk holding every row: one permutation of all rows.
    drop_last : bool, default=False
        ``False``: every row once per epoch, the last batch possibly short.
        ``True``: batches of exactly ``min(batch_size, n_samples)`` rows,
        the incomplete last batch of each epoch dropped; every step then
        sees the same shapes (batch statistics and a batch's marginal
        ``p(y)`` are never estimated on a handful of rows, and a CUDA graph
        can replay the step), and no row is favoured as the permutation
        changes.
    rank, world_size : int, default=0 and 1
        This process's place among ``world_size`` processes training one
        model (:mod:`deepcluster_sk._distributed`). Every process draws the
        same permutation, padded with its first rows to a multiple of
        ``world_size`` as :class:`torch.utils.data.DistributedSampler` does,
        and takes every ``world_size``-th row of it from ``rank`` on:
        the processes' rows of an epoch are disjoint and cover the data,
        and their ``ceil(batch_size / world_size)``-row batches at one step
        together are the rows of one batch of a single process.

    Attributes
    ----------
    batch_size : int
        Rows of a full batch of this process.
    steps_per_epoch : int
        Batches of one epoch.
    """

    def __init__(self, n_samples, batch_size, generator, device, *, chunk_rows=None,
                 drop_last=False, rank=0, world_size=1):
        self.n_samples = n_samples
        self.chunk_rows = chunk_rows
        self.rank = rank
        self.world_size = world_size
        shard = -(-n_samples // world_size)
        batch_size = -(-batch_size // world_size)
        self.batch_size = min(batch_size, shard) if drop_last else batch_size
        self.generator = generator
        self.device = device
        self._stop = shard - shard % self.batch_size if drop_last else shard
        self._order = None
        self._start = 0

    @property
    def steps_per_epoch(self):
        """Batches of one epoch."""
        return steps_per_epoch(self._stop, self.batch_size)

    def __iter__(self):
        return self

    def __next__(self):
        if self._order is None or self._start >= self._stop:
            self._order = self._permutation().to(self.device)
            self._start = 0
        index = self._order[self._start : self._start + self.batch_size]
        self._start += self.batch_size
        return index

    def _permutation(self):
        """One epoch's order of this process's rows."""
        order = self._global_permutation()
        if self.world_size == 1:
            return order
        padding = -len(order) % self.world_size
        order = torch.cat([order, order[:padding]])
        return order[self.rank :: self.world_size]

    def _global_permutation(self):
        """One epoch's order of all rows: by shuffled chunks, if chunked."""
        if self.chunk_rows is None or self.chunk_rows >= self.n_samples:
            return torch.randperm(self.n_samples, generator=self.generator)
        n_chunks = -(-self.n_samples // self.chunk_rows)
        pieces = []
        for chunk in torch.randperm(n_chunks, generator=self.generator).tolist():
            start = chunk * self.chunk_rows
            size = min(self.chunk_rows, self.n_samples - start)
            pieces.append(start + torch.randperm(size, generator=self.generator))
        return torch.cat(pieces)
