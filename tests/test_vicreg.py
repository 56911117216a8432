"""VICReg loss: exact values of the pinned convention, behaviour, reduced precision (the DDP gather test of every
objective, VICReg included, is in test_objectives.py)."""

from __future__ import annotations

import math

import pytest
import torch

from ssl_pde.losses import covariance_loss, gather_with_grad, invariance_loss, variance_loss, vicreg_loss

EPS = 1e-4


def _hand_terms(a: list[list[float]], b: list[list[float]]) -> tuple[float, float, float, float, float]:
    """(inv, v(a), v(b), c(a), c(b)) by explicit loops, independent of the implementation."""
    n, d = len(a), len(a[0])
    inv = sum((a[i][j] - b[i][j]) ** 2 for i in range(n) for j in range(d)) / (n * d)

    def var_term(z):
        hinge = 0.0
        for j in range(d):
            m = sum(z[i][j] for i in range(n)) / n
            var = sum((z[i][j] - m) ** 2 for i in range(n)) / (n - 1)
            hinge += max(0.0, 1.0 - math.sqrt(var + EPS))
        return hinge / d

    def cov_term(z):
        m = [sum(z[i][j] for i in range(n)) / n for j in range(d)]
        total = 0.0
        for p in range(d):
            for q in range(d):
                if p != q:
                    c = sum((z[i][p] - m[p]) * (z[i][q] - m[q]) for i in range(n)) / (n - 1)
                    total += c**2
        return total / d

    return inv, var_term(a), var_term(b), cov_term(a), cov_term(b)


def test_exact_values_pin_convention():
    """Terms and total match hand-computed formulas: variance averaged over branches, covariance summed."""
    k = torch.arange(15, dtype=torch.float64)
    z1 = ((k**2 % 7) / 10).reshape(5, 3)  # small spread: the variance hinge is active
    rows = torch.arange(5, dtype=torch.float64)[:, None]
    z2 = rows * torch.tensor([1.0, -0.5, 0.8], dtype=torch.float64) + ((3 * k % 5) / 4).reshape(5, 3)  # correlated
    inv, v1, v2, c1, c2 = _hand_terms(z1.tolist(), z2.tolist())
    assert abs(v1 - v2) > 0.5 and c1 > 0 and c2 > 1

    torch.testing.assert_close(invariance_loss(z1, z2).item(), inv, rtol=1e-12, atol=0)
    torch.testing.assert_close(variance_loss(z1).item(), v1, rtol=1e-12, atol=0)
    torch.testing.assert_close(variance_loss(z2).item(), v2, rtol=1e-12, atol=0)
    torch.testing.assert_close(covariance_loss(z1).item(), c1, rtol=1e-12, atol=0)
    torch.testing.assert_close(covariance_loss(z2).item(), c2, rtol=1e-12, atol=0)

    out = vicreg_loss(z1, z2, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0, gather=False)
    expected = 25 * inv + 25 * (v1 + v2) / 2 + 1 * (c1 + c2)
    torch.testing.assert_close(out["loss"].item(), expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(out["invariance"].item(), inv, rtol=1e-12, atol=0)
    torch.testing.assert_close(out["variance"].item(), (v1 + v2) / 2, rtol=1e-12, atol=0)
    torch.testing.assert_close(out["covariance"].item(), c1 + c2, rtol=1e-12, atol=0)
    # the other conventions give clearly different numbers on this input
    for alt in (25 * inv + 25 * (v1 + v2) + (c1 + c2), 25 * inv + 25 * (v1 + v2) / 2 + (c1 + c2) / 2):
        assert abs(out["loss"].item() - alt) > 1

    # coefficients are applied to the right terms
    out = vicreg_loss(z1, z2, sim_coeff=2.0, std_coeff=3.0, cov_coeff=5.0, gather=False)
    torch.testing.assert_close(out["loss"].item(), 2 * inv + 3 * (v1 + v2) / 2 + 5 * (c1 + c2), rtol=1e-12, atol=0)


def _hadamard(n: int) -> torch.Tensor:
    h = torch.ones(1, 1)
    while h.shape[0] < n:
        h = torch.kron(torch.tensor([[1.0, 1.0], [1.0, -1.0]]), h)
    return h


def test_zero_terms():
    """Invariance 0 for identical views; variance 0 when every std >= 1; covariance 0 for decorrelated columns."""
    z = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    assert invariance_loss(z, z).item() == 0.0
    h = _hadamard(8)[:, 1:]  # (8, 7): zero-mean, orthogonal +-1 columns, unbiased var 8/7
    for scale in (1.0, 3.0):
        assert variance_loss(scale * h).item() == 0.0
        assert covariance_loss(scale * h).item() == pytest.approx(0.0, abs=1e-10)
        out = vicreg_loss(scale * h, scale * h, gather=False)
        assert out["loss"].item() == pytest.approx(0.0, abs=1e-10)
    assert variance_loss(0.5 * h).item() == pytest.approx(1 - math.sqrt(2 / 7 + EPS))  # hinge active below std 1


def test_reduced_precision_computed_in_float32():
    """bf16 inputs and bf16 autocast: variance and covariance are computed in float32."""
    gen = torch.Generator().manual_seed(0)
    mix = torch.randn(16, 16, generator=gen) * 0.3
    z1, z2 = (torch.randn(32, 16, generator=gen) @ mix for _ in range(2))
    ref = vicreg_loss(z1, z2, gather=False)
    b1, b2 = z1.bfloat16(), z2.bfloat16()
    low = vicreg_loss(b1, b2, gather=False)
    exact = vicreg_loss(b1.float(), b2.float(), gather=False)  # same values, float32 path
    for key in ("variance", "covariance"):
        assert low[key].dtype == torch.float32
        torch.testing.assert_close(low[key], exact[key], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(low[key], ref[key], rtol=1e-2, atol=0)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        auto = vicreg_loss(z1, z2, gather=False)
    for key in ("variance", "covariance"):
        assert auto[key].dtype == torch.float32
        torch.testing.assert_close(auto[key], ref[key], rtol=1e-6, atol=1e-7)


def test_small_batch_raises():
    """N < 2 (and malformed shapes) raise a ValueError."""
    z = torch.zeros(1, 4)
    for fn in (lambda: vicreg_loss(z, z), lambda: variance_loss(z), lambda: covariance_loss(z)):
        with pytest.raises(ValueError, match="at least 2"):
            fn()
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        vicreg_loss(torch.zeros(4, 3), torch.zeros(4, 2))


def test_gather_is_identity_without_process_group():
    z = torch.randn(4, 3)
    assert gather_with_grad(z) is z
