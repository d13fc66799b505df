"""The DEC formulas: Student-t soft assignment and target distribution.

Pure tensor functions, shared by training, prediction and the tests; the
user guide's page on DEC (``docs/user_guide/dec.rst``) gives the maths. The
loss, ``KL(P || Q)``, is :func:`~deepcluster_sk._torch._information.kl_divergence`.
"""

import torch

from ._distances import squared_distances
from ._information import kl_divergence
from ._precision import full_precision


def _log_kernel(distances, alpha):
    """``-(alpha+1)/2 log(1 + d^2/alpha)`` of the squared distances ``d^2``."""
    return -(alpha + 1.0) / 2.0 * torch.log1p(distances / alpha)


@full_precision
def student_t_log_kernel(z, centers, alpha):
    """Unnormalised log soft assignment: ``-(alpha+1)/2 log(1 + d^2/alpha)``."""
    return _log_kernel(squared_distances(z, centers), alpha)


@full_precision
def log_soft_assignment(z, centers, alpha):
    """``log q_ij``, computed in log space for numerical stability."""
    return torch.log_softmax(student_t_log_kernel(z, centers, alpha), dim=1)


@full_precision
def soft_assignment(z, centers, alpha):
    """Student-t soft assignment ``q_ij``; rows sum to 1."""
    return torch.softmax(student_t_log_kernel(z, centers, alpha), dim=1)


@full_precision
def target_distribution(q, frequencies=None):
    """DEC's auxiliary target ``p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j')``.

    ``f_j = sum_i q_ij`` is the soft cluster frequency over the rows of
    ``q``, or ``frequencies`` where given: over all the rows, of which ``q``
    holds a block.
    """
    frequencies = q.sum(dim=0) if frequencies is None else frequencies
    weight = q.pow(2) / frequencies.clamp_min(torch.finfo(q.dtype).tiny)
    return weight / weight.sum(dim=1, keepdim=True)


@torch.no_grad()
def kl_loss_and_gradients(z, centers, p, alpha):
    """DEC's loss ``KL(P || Q) / batch`` and its gradients, without autograd.

    With ``w_ij = -(alpha + 1) (q_ij - p_ij) / (batch (alpha + d_ij))`` and
    ``d_ij = |z_i - mu_j|^2``, the gradients are ``sum_j w_ij (z_i - mu_j)``
    for ``z_i`` and ``-sum_i w_ij (z_i - mu_j)`` for ``mu_j`` (Xie et al.,
    2016, eqs. 4-5, per sample of the batch): the same values as autograd
    through :func:`log_soft_assignment` and
    :func:`~._information.kl_divergence` (``tests/test_dec_math.py``), for
    self-training's step by hand, which builds no autograd graph.

    Parameters
    ----------
    z : torch.Tensor of shape (batch, n_components)
    centers : torch.Tensor of shape (n_clusters, n_components)
    p : torch.Tensor of shape (batch, n_clusters)
        The target distribution of the rows.
    alpha : float

    Returns
    -------
    loss : torch.Tensor of shape ()
    grad_z : torch.Tensor of shape (batch, n_components)
    grad_centers : torch.Tensor of shape (n_clusters, n_components)
    """
    batch = z.shape[0]
    diff = z.unsqueeze(1) - centers.unsqueeze(0)
    distances = diff.pow(2).sum(dim=2)
    log_q = torch.log_softmax(_log_kernel(distances, alpha), dim=1)
    loss = kl_divergence(p, log_q) / batch
    weights = (log_q.exp_().sub_(p)).mul_(-(alpha + 1.0) / batch).div_(distances.add_(alpha))
    weighted = diff.mul_(weights.unsqueeze(2))
    return loss, weighted.sum(dim=1), weighted.sum(dim=0).neg_()
