"""Composition of sampled group elements: splitting orders, Suzuki's coefficient, exactness of factors."""

from __future__ import annotations

import math

import pytest
import torch

from ssl_pde.augment.lie import apply_group_element, invert_coordinates, splitting_sequence, suzuki_p
from ssl_pde.core.errors import UserError
from ssl_pde.pdes import PDES
from ssl_pde.pdes.residual import relative_residual
from tests.exact import burgers_exact

SYMS = [PDES["burgers"].symmetries[n] for n in ("galilean_boost", "scaling", "projective", "space_translation")]


def _points():
    g = torch.Generator().manual_seed(0)
    t = 0.2 + 0.5 * torch.rand(3, 50, generator=g, dtype=torch.float64)
    x = 6 * torch.rand(3, 50, generator=g, dtype=torch.float64)
    u = torch.randn(3, 50, generator=g, dtype=torch.float64)
    eps = torch.tensor([[0.4, -0.3, 0.2], [0.3, 0.2, -0.25], [0.3, -0.2, 0.1], [0.5, 1.0, -0.7]], dtype=torch.float64)
    return eps, t, x, u


def test_suzuki_coefficient():
    """p = 1 / (4 - 4^{1/3}) = 0.4145 for order 4 (the reference code's 0.3596 is wrong)."""
    assert suzuki_p(4) == pytest.approx(0.41449077179437573, rel=1e-14)
    seq = splitting_sequence(3, 4, 1)
    for i in range(3):  # each generator's fractions sum to 1: the sampled eps is fully applied
        assert sum(f for j, f in seq if j == i) == pytest.approx(1.0, abs=1e-14)


@pytest.mark.parametrize(("order", "lo", "hi"), [(1, 0.9, 1.2), (2, 1.8, 2.3), (4, 3.6, 4.6)])
def test_splitting_error_falls_at_the_claimed_order(order, lo, hi):
    """Error against the exponential (a 4th-order run with 512 steps) falls as steps^-order for
    non-commuting Burgers generators (Galilean, scaling, projective, translation)."""
    eps, t, x, u = _points()
    ref = torch.stack(apply_group_element(SYMS, eps, t, x, u, order=4, steps=512))
    errs = []
    for s in (4, 8, 16):
        out = torch.stack(apply_group_element(SYMS, eps, t, x, u, order=order, steps=s))
        errs.append(float((out - ref).norm() / ref.norm()))
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert lo <= orders[-1] <= hi, (errs, orders)


@pytest.mark.parametrize("order", [1, 2, 4])
def test_composed_element_is_an_exact_symmetry(order):
    """Whatever the splitting, the composed map sends an exact Burgers solution to a solution."""
    eps = torch.tensor([[0.3], [-0.2], [0.15], [0.8]], dtype=torch.float64)
    nu = torch.tensor(0.1, dtype=torch.float64)

    def u_new(tp, xp):
        t, x = invert_coordinates(SYMS, eps, tp[None], xp[None], order=order, steps=2)
        return apply_group_element(SYMS, eps, t, x, burgers_exact(t, x), order=order, steps=2)[2][0]

    g = torch.Generator().manual_seed(2)
    t = 0.2 + 0.5 * torch.rand(40, generator=g, dtype=torch.float64)
    x = 6 * torch.rand(40, generator=g, dtype=torch.float64)
    tp, xp, _ = apply_group_element(
        SYMS, eps, t[None], x[None], torch.zeros(1, 40, dtype=torch.float64), order=order, steps=2
    )
    r = relative_residual(PDES["burgers"].residual_terms, u_new, tp[0], xp[0], 2, nu=nu)
    assert r < 1e-12, r


def test_bad_order_is_refused():
    with pytest.raises(UserError, match="order=3"):
        splitting_sequence(2, 3, 1)
