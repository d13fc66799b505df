"""Squared Euclidean distances between rows, and k-th neighbour distances."""

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
def kth_neighbor_distances(data, k, batch_size):
    """Euclidean distance of every row of ``data`` to its ``k``-th neighbour.

    The row itself is not its own neighbour. Exact, by blocks of
    ``batch_size`` x ``batch_size`` distances on ``data.device``, keeping the
    ``k + 1`` smallest per row; ``k`` is capped at ``n_samples - 1``.

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
    k = min(k, data.n_samples - 1)
    result = []
    for _, _, queries in data.batches(batch_size):
        queries = queries.flatten(1)
        q_sq = queries.pow(2).sum(dim=1, keepdim=True)
        best = None
        for _, _, keys in data.batches(batch_size):
            keys = keys.flatten(1)
            d2 = q_sq - 2.0 * queries @ keys.T + keys.pow(2).sum(dim=1)
            candidates = d2 if best is None else torch.cat([best, d2], dim=1)
            n_keep = min(k + 1, candidates.shape[1])
            best = candidates.topk(n_keep, dim=1, largest=False).values
        result.append(best[:, k].clamp_min(0.0).sqrt())
    return torch.cat(result)
