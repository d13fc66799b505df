"""Out-of-sample manifold coordinates: UMAP's average over a point's neighbours.

UMAP places a new point at the average of its neighbours' coordinates,
weighted by their fuzzy membership, then refines it by stochastic gradient
steps whose negative samples depend on the other points of the call. Only
the first part is a function of the point alone: :func:`neighbour_average`
computes it, with exact neighbours, so that a prediction does not depend on
the batch it comes in.
"""

import math

import torch

from ._precision import full_precision

#: Elements of the (queries, keys) distance block that one chunk may hold
#: (128 MiB in float64).
_BLOCK_ELEMENTS = 2**24

#: Bisection steps of the bandwidth search, and the smallest bandwidth
#: relative to the mean neighbour distance (umap-learn's ``SMOOTH_K_TOLERANCE``
#: iterations and ``MIN_K_DIST_SCALE``).
_BISECTION_STEPS = 64
_MIN_BANDWIDTH_SCALE = 1e-3


def membership_weights(distances):
    """Normalised fuzzy-membership weights of each row's neighbours.

    The bandwidth ``sigma_i`` of each row solves
    ``sum_j exp(-d_ij / sigma_i) = log2(k)`` by bisection, as umap-learn's
    ``smooth_knn_dist`` does for new points (no local connectivity), and is
    at least ``1e-3`` times the row's mean neighbour distance.

    Parameters
    ----------
    distances : torch.Tensor of shape (n_rows, k)
        Distances to the ``k`` nearest neighbours, float32.

    Returns
    -------
    weights : torch.Tensor of shape (n_rows, k)
        Non-negative, each row summing to 1.
    """
    n_rows, k = distances.shape
    target = math.log2(k) if k > 1 else 1.0
    low = torch.zeros(n_rows, device=distances.device)
    high = torch.full((n_rows,), math.inf, device=distances.device)
    bandwidth = torch.ones(n_rows, device=distances.device)
    for _ in range(_BISECTION_STEPS):
        total = torch.exp(-distances / bandwidth[:, None]).sum(dim=1)
        too_wide = total > target
        high = torch.where(too_wide, bandwidth, high)
        low = torch.where(too_wide, low, bandwidth)
        bandwidth = torch.where(
            torch.isinf(high), bandwidth * 2.0, (low + high) / 2.0
        )
    floor = _MIN_BANDWIDTH_SCALE * distances.mean(dim=1)
    bandwidth = torch.maximum(bandwidth, floor).clamp_min(torch.finfo(torch.float32).tiny)
    weights = torch.exp(-distances / bandwidth[:, None])
    return weights / weights.sum(dim=1, keepdim=True)


@full_precision
@torch.no_grad()
def nearest_neighbours(queries, keys, n_neighbors):
    """Exact Euclidean neighbours of each query among ``keys``, nearest first.

    Distances are computed in float64, by chunks of queries that keep the
    (queries, keys) block at 128 MiB: in float32 the rounding of the matrix
    product depends on how many rows it multiplies, and would swap near-tied
    neighbours between a batch and a single row. A query that is also a key
    is its own first neighbour, at distance 0.

    Parameters
    ----------
    queries : torch.Tensor of shape (n_queries, n_features)
    keys : torch.Tensor of shape (n_keys, n_features)
    n_neighbors : int
        Neighbours per query, capped at ``n_keys``.

    Returns
    -------
    distances : torch.Tensor of shape (n_queries, k), float64
    index : torch.Tensor of shape (n_queries, k), int64
        Rows of ``keys``.
    """
    k = min(n_neighbors, keys.shape[0])
    keys = keys.double()
    keys_sq = keys.pow(2).sum(dim=1)
    chunk = max(1, _BLOCK_ELEMENTS // keys.shape[0])
    distances, indices = [], []
    for rows in queries.double().split(chunk):
        # The expansion, not the exact sum of squares: a (rows, keys, features)
        # difference tensor would be features times larger.
        d2 = rows.pow(2).sum(dim=1, keepdim=True) - 2.0 * rows @ keys.T + keys_sq
        d2, index = d2.clamp_min_(0.0).topk(k, dim=1, largest=False)
        distances.append(d2.sqrt_())
        indices.append(index)
    return torch.cat(distances), torch.cat(indices)


@full_precision
@torch.no_grad()
def neighbour_average(queries, keys, values, n_neighbors, chunk_rows=4096):
    """Each query's membership-weighted average of its neighbours' ``values``.

    Parameters
    ----------
    queries : torch.Tensor of shape (n_queries, n_features)
        The new points, in the space the neighbours are searched in.
    keys : torch.Tensor of shape (n_keys, n_features)
        The training points in that space.
    values : torch.Tensor of shape (n_keys, n_values)
        The training points' coordinates to average (their UMAP embedding).
    n_neighbors : int
        Neighbours per query, capped at ``n_keys``.
    chunk_rows : int, default=4096
        Queries whose neighbours are held at once.

    Returns
    -------
    averages : torch.Tensor of shape (n_queries, n_values)
    """
    averages = []
    for rows in queries.split(chunk_rows):
        distances, index = nearest_neighbours(rows, keys, n_neighbors)
        weights = membership_weights(distances.float())
        averages.append(torch.einsum("qk,qkv->qv", weights, values[index]))
    return torch.cat(averages)
