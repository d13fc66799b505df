"""The DEC formulas against the paper's (docs/user_guide/dec.rst)."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepcluster_sk._torch._dec_math import (
    kl_loss_and_gradients,
    log_soft_assignment,
    soft_assignment,
    target_distribution,
)
from deepcluster_sk._torch._information import kl_divergence

shapes = st.tuples(
    st.integers(1, 40), st.integers(1, 8), st.integers(1, 6)
)  # n, k, d
alphas = st.floats(0.05, 20.0)


def _random(n, k, d, seed):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=gen, dtype=torch.float64) * 2
    mu = torch.randn(k, d, generator=gen, dtype=torch.float64) * 2
    return z, mu


def _q_formula(z, mu, alpha):
    """q_ij written out exactly as in the paper, in NumPy."""
    z, mu = z.numpy(), mu.numpy()
    kernel = np.empty((len(z), len(mu)))
    for i in range(len(z)):
        for j in range(len(mu)):
            d2 = np.sum((z[i] - mu[j]) ** 2)
            kernel[i, j] = (1 + d2 / alpha) ** (-(alpha + 1) / 2)
    return kernel / kernel.sum(axis=1, keepdims=True)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, alpha=alphas, seed=st.integers(0, 2**16))
def test_soft_assignment_is_the_student_t_formula(shape, alpha, seed):
    z, mu = _random(*shape, seed)
    q = soft_assignment(z, mu, alpha)
    np.testing.assert_allclose(q.sum(dim=1).numpy(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(q.numpy(), _q_formula(z, mu, alpha), rtol=1e-9)
    np.testing.assert_allclose(
        log_soft_assignment(z, mu, alpha).exp().numpy(), q.numpy(), rtol=1e-9
    )


@settings(max_examples=40, deadline=None)
@given(shape=shapes, alpha=alphas, seed=st.integers(0, 2**16))
def test_target_distribution_is_the_formula(shape, alpha, seed):
    z, mu = _random(*shape, seed)
    q = soft_assignment(z, mu, alpha).numpy()
    f = q.sum(axis=0)
    expected = (q**2 / f) / (q**2 / f).sum(axis=1, keepdims=True)
    p = target_distribution(torch.from_numpy(q)).numpy()
    np.testing.assert_allclose(p, expected, rtol=1e-10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)


def _entropy(rows):
    return -(rows * np.log(np.clip(rows, 1e-300, None))).sum(axis=1)


@settings(max_examples=40, deadline=None)
@given(k=st.integers(2, 8), seed=st.integers(0, 2**16))
def test_target_is_sharper_than_q_with_balanced_clusters(k, seed):
    # Stacking every cyclic shift of a row gives equal soft frequencies f_j,
    # so p_ij is q_ij^2 renormalised: every row gets sharper (lower entropy)
    # unless it is uniform, and keeps its most likely cluster.
    rng = np.random.default_rng(seed)
    row = rng.dirichlet(np.ones(k))
    q = np.stack([np.roll(row, s) for s in range(k)])
    p = target_distribution(torch.from_numpy(q)).numpy()
    assert np.all(_entropy(p) <= _entropy(q) + 1e-12)
    np.testing.assert_array_equal(p.argmax(axis=1), q.argmax(axis=1))
    assert np.all(p.max(axis=1) >= q.max(axis=1) - 1e-12)


def test_target_favours_small_clusters_over_large_ones():
    # Two samples, equally unsure between a crowded and a rare cluster:
    # normalising by frequency pushes both targets towards the rare one.
    q = torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1], [0.9, 0.1]])
    p = target_distribution(q)
    assert torch.all(p[:2, 1] > 0.5)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, alpha=alphas, seed=st.integers(0, 2**16))
def test_kl_gradients_equal_the_closed_form(shape, alpha, seed):
    # dL/dz_i = (a+1)/a sum_j (1 + |z_i - mu_j|^2/a)^-1 (p_ij - q_ij)(z_i - mu_j)
    # dL/dmu_j = -(a+1)/a sum_i (1 + |z_i - mu_j|^2/a)^-1 (p_ij - q_ij)(z_i - mu_j)
    z, mu = _random(*shape, seed)
    z.requires_grad_(True)
    mu.requires_grad_(True)
    with torch.no_grad():
        p = target_distribution(soft_assignment(z, mu, alpha))
    loss = kl_divergence(p, log_soft_assignment(z, mu, alpha))
    loss.backward()

    with torch.no_grad():
        q = soft_assignment(z, mu, alpha)
        diff = z[:, None, :] - mu[None, :, :]
        inv = 1.0 / (1.0 + diff.pow(2).sum(-1) / alpha)
        weight = ((alpha + 1) / alpha * inv * (p - q))[:, :, None]
        grad_z = (weight * diff).sum(dim=1)
        grad_mu = -(weight * diff).sum(dim=0)
    np.testing.assert_allclose(z.grad.numpy(), grad_z.numpy(), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(mu.grad.numpy(), grad_mu.numpy(), rtol=1e-7, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, alpha=alphas, seed=st.integers(0, 2**16),
       dtype=st.sampled_from([torch.float64, torch.float32]))
def test_the_loss_and_gradients_by_hand_are_autograds(shape, alpha, seed, dtype):
    # Self-training's step by hand: KL(P || Q) per sample of the batch, for
    # any target (here random rows with exact zeros, not Q's sharpening).
    z, mu = (t.to(dtype) for t in _random(*shape, seed))
    gen = torch.Generator().manual_seed(seed + 1)
    p = torch.rand(shape[0], shape[1], generator=gen, dtype=torch.float64).to(dtype)
    p[p < 0.2] = 0
    p[:, 0] += 1e-3
    p = p / p.sum(dim=1, keepdim=True)
    loss, grad_z, grad_mu = kl_loss_and_gradients(z, mu, p, alpha)
    z.requires_grad_(True)
    mu.requires_grad_(True)
    reference = kl_divergence(p, log_soft_assignment(z, mu, alpha)) / shape[0]
    reference.backward()
    tolerance = {"rtol": 1e-4, "atol": 1e-6} if dtype == torch.float32 else {}
    torch.testing.assert_close(loss, reference.detach(), **tolerance)
    torch.testing.assert_close(grad_z, z.grad, **tolerance)
    torch.testing.assert_close(grad_mu, mu.grad, **tolerance)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_kl_divergence_is_nonnegative_and_zero_on_equal_distributions(shape, seed):
    z, mu = _random(*shape, seed)
    log_q = log_soft_assignment(z, mu, 1.0)
    q = log_q.exp()
    assert abs(kl_divergence(q, log_q).item()) < 1e-10
    assert kl_divergence(target_distribution(q), log_q).item() >= -1e-12


def test_kl_divergence_treats_zero_targets_as_zero():
    p = torch.tensor([[1.0, 0.0]])
    log_q = torch.log(torch.tensor([[0.5, 0.5]]))
    assert np.isclose(kl_divergence(p, log_q).item(), np.log(2))
