"""The DEC formulas: Student-t soft assignment, target distribution, KL loss.

Pure tensor functions, shared by training, prediction and the tests; see
``ALGORITHMS.md`` section 1 for the maths.
"""

import torch


def squared_distances(z, centers):
    """``|z_i - mu_j|^2`` for every sample and centre, shape (n, k)."""
    return (z.unsqueeze(1) - centers.unsqueeze(0)).pow(2).sum(dim=2)


def student_t_log_kernel(z, centers, alpha):
    """Unnormalised log soft assignment: ``-(alpha+1)/2 log(1 + d^2/alpha)``."""
    return -(alpha + 1.0) / 2.0 * torch.log1p(squared_distances(z, centers) / alpha)


def log_soft_assignment(z, centers, alpha):
    """``log q_ij``, computed in log space for numerical stability."""
    return torch.log_softmax(student_t_log_kernel(z, centers, alpha), dim=1)


def soft_assignment(z, centers, alpha):
    """Student-t soft assignment ``q_ij``; rows sum to 1."""
    return torch.softmax(student_t_log_kernel(z, centers, alpha), dim=1)


def target_distribution(q):
    """DEC's auxiliary target ``p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j')``.

    ``f_j = sum_i q_ij`` is the soft cluster frequency over the rows of ``q``.
    """
    weight = q.pow(2) / q.sum(dim=0).clamp_min(torch.finfo(q.dtype).tiny)
    return weight / weight.sum(dim=1, keepdim=True)


def kl_divergence(p, log_q):
    """``KL(P || Q) = sum_ij p_ij log(p_ij / q_ij)``, summed over all rows.

    ``0 log 0`` is taken as 0, so targets with exact zeros are fine.
    """
    return (torch.special.xlogy(p, p) - p * log_q).sum()
