"""Squared Euclidean distances between rows, and exact nearest neighbours."""

import torch

from ._precision import full_precision

#: Elements of the (rows, centres, features) difference tensor that one chunk
#: of :func:`squared_distances` may materialise (16 MiB in float32).
_CHUNK_ELEMENTS = 2**22


@full_precision
def squared_distances(X, centers):
    """``|x_i - c_j|^2`` for every row and centre, shape (n_samples, n_centers).

    Computed as a sum of squared differences, not through the
    ``|x|^2 - 2 x.c + |c|^2`` expansion, so it is exact to rounding,
    differentiable and independent of whether TF32 matmuls are allowed.
    Large inputs are processed in chunks of rows that keep the temporary
    difference tensor small.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
    centers : torch.Tensor of shape (n_centers, n_features)

    Returns
    -------
    distances : torch.Tensor of shape (n_samples, n_centers)
    """
    n_centers, n_features = centers.shape
    chunk = max(1, _CHUNK_ELEMENTS // max(1, n_centers * n_features))
    if X.shape[0] <= chunk:
        return (X.unsqueeze(1) - centers.unsqueeze(0)).pow(2).sum(dim=2)
    return torch.cat(
        [
            (rows.unsqueeze(1) - centers.unsqueeze(0)).pow(2).sum(dim=2)
            for rows in X.split(chunk)
        ]
    )


@full_precision
@torch.no_grad()
def nearest_other_rows(data, k, batch_size, first=0, last=None):
    """The ``k`` nearest other rows of each row of ``data[first:last]``, exact.

    By blocks of ``batch_size`` x ``batch_size`` distances on ``data.device``,
    keeping the ``k`` smallest per row; a row is never its own neighbour
    (a duplicate of it may be). Only the rows ``first:last`` are searched,
    among themselves: the whole data by default, one chunk of out-of-core
    data at a time otherwise. (:func:`~._neighbours.nearest_neighbours`
    searches tensors in memory, in float64, for UMAP.)

    Parameters
    ----------
    data : TrainingData
        The rows, flattened to vectors.
    k : int
        Capped at the number of rows searched minus one.
    batch_size : int
        Rows per block.
    first, last : int
        The rows searched (``last=None``: to the end).

    Returns
    -------
    distances : torch.Tensor of shape (n_rows, k), float32, ascending
        Euclidean distances.
    indices : torch.Tensor of shape (n_rows, k), int64
        Row numbers in ``data`` (not counted from ``first``).
    """
    last = data.n_samples if last is None else last
    k = min(k, last - first - 1)
    all_distances, all_indices = [], []
    for q_start, q_stop, queries in data.batches(batch_size, first, last):
        queries = queries.flatten(1)
        q_sq = queries.pow(2).sum(dim=1, keepdim=True)
        rows = torch.arange(q_start, q_stop, device=queries.device)
        best = best_index = None
        for k_start, k_stop, keys in data.batches(batch_size, first, last):
            keys = keys.flatten(1)
            d2 = q_sq - 2.0 * queries @ keys.T + keys.pow(2).sum(dim=1)
            columns = torch.arange(k_start, k_stop, device=keys.device).expand_as(d2)
            d2 = d2.masked_fill(columns == rows.unsqueeze(1), float("inf"))
            if best is not None:
                d2 = torch.cat([best, d2], dim=1)
                columns = torch.cat([best_index, columns], dim=1)
            best, position = d2.topk(min(k, d2.shape[1]), dim=1, largest=False)
            best_index = columns.gather(1, position)
        all_distances.append(best.clamp_min(0.0).sqrt())
        all_indices.append(best_index)
    return torch.cat(all_distances), torch.cat(all_indices)


def kth_neighbor_distances(data, k, batch_size):
    """Euclidean distance of every row of ``data`` to its ``k``-th neighbour.

    The last column of :func:`nearest_other_rows`; ``k`` is capped at
    ``n_samples - 1``.

    Parameters
    ----------
    data : TrainingData
        The rows, flattened to vectors.
    k : int
    batch_size : int
        Rows per block.

    Returns
    -------
    distances : torch.Tensor of shape (n_samples,) on ``data.device``
    """
    return nearest_other_rows(data, k, batch_size)[0][:, -1]
