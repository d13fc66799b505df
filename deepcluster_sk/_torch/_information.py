"""Entropies and the Kullback-Leibler divergence of discrete distributions.

Rows of a tensor are distributions over clusters. The information-maximising
estimators (IMSAT, DAC) and DEC's loss use these.
"""

import torch

from ._precision import full_precision

#: Added inside logarithms of probabilities, as in the reference
#: implementations of IMSAT and DAC.
LOG_EPS = 1e-8


@full_precision
def entropy(p, dim=-1):
    """Shannon entropy ``-sum p log p`` along ``dim`` (natural log)."""
    return -(p * torch.log(p + LOG_EPS)).sum(dim=dim)


@full_precision
def conditional_entropy(p):
    """``H(Y|X)`` estimated on a batch: the mean entropy of the rows of ``p``."""
    return entropy(p).mean()


@full_precision
def marginal_entropy(p):
    """``H(Y)`` with ``p(y)`` estimated as the mean of the rows of ``p``."""
    return entropy(p.mean(dim=0))


@full_precision
def kl_divergence(p, log_q, reduction="sum"):
    """``KL(P || Q) = sum_ij p_ij log(p_ij / q_ij)``, with ``0 log 0 = 0``.

    Parameters
    ----------
    p : torch.Tensor of shape (n, k)
        Target distributions, one per row; exact zeros are fine.
    log_q : torch.Tensor of shape (n, k)
        Logarithms of the other distributions.
    reduction : {"sum", "batchmean"}, default="sum"
        ``"sum"`` adds the divergences of all rows (DEC's loss);
        ``"batchmean"`` averages them over the rows.

    Returns
    -------
    divergence : torch.Tensor of shape ()
    """
    pointwise = torch.special.xlogy(p, p) - p * log_q
    if reduction == "sum":
        return pointwise.sum()
    if reduction == "batchmean":
        return pointwise.sum(dim=1).mean()
    raise ValueError(f"reduction={reduction!r} is not 'sum' or 'batchmean'.")
