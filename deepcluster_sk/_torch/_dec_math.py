"""The DEC formulas: Student-t soft assignment and target distribution.

Pure tensor functions, shared by training, prediction and the tests; the
user guide's page on DEC (``docs/user_guide/dec.rst``) gives the maths. The
loss, ``KL(P || Q)``, is :func:`~deepcluster_sk._torch._information.kl_divergence`.
"""

import torch

from ._distances import squared_distances
from ._precision import full_precision


@full_precision
def student_t_log_kernel(z, centers, alpha):
    """Unnormalised log soft assignment: ``-(alpha+1)/2 log(1 + d^2/alpha)``."""
    return -(alpha + 1.0) / 2.0 * torch.log1p(squared_distances(z, centers) / alpha)


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
