"""Composition of one-parameter flows into one group element, by Lie-Trotter / Strang / Suzuki splitting.

Given generators X_1..X_n with exact flows ``g_i(eps)`` and a sampled parameter vector
``(eps_1, ..., eps_n)``, the group element ``exp(sum_i eps_i X_i)`` is approximated by products of the
exact flows. Every factor is an exact symmetry, so any product maps solutions to solutions; the
splitting order only decides how close the product is to the exponential of the summed generator,
i.e. which group element is sampled.

- order 1 (Lie-Trotter): ``(g_n(eps_n / s) ... g_1(eps_1 / s))^s``, error O(1/s);
- order 2 (Strang): ``S2(tau) = g_n(tau eps_n/2)..g_1(tau eps_1/2) g_1(tau eps_1/2)..g_n(tau eps_n/2)``;
- order 2k (Suzuki): ``S_k(tau) = S_{k-2}(p tau)^2 S_{k-2}((1-4p) tau) S_{k-2}(p tau)^2`` with
  ``p = 1 / (4 - 4^{1/(k-1)})`` (the reference code's ``4^{1/(2k-1)}`` gives only second order).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ssl_pde.core.errors import UserError
from ssl_pde.pdes.symmetry import Symmetry

Tensor = torch.Tensor


def suzuki_p(order: int) -> float:
    """Suzuki's coefficient for raising an even order ``order - 2`` symmetric scheme to ``order``."""
    return 1.0 / (4.0 - 4.0 ** (1.0 / (order - 1)))


def splitting_sequence(n: int, order: int = 2, steps: int = 1) -> list[tuple[int, float]]:
    """Factors ``(generator index, fraction of its eps)`` in the order they are applied to points.

    Adjacent factors of the same generator are merged (their flows compose additively).

    Raises:
        UserError: ``order`` not 1 or a positive even number, or ``steps < 1``.
    """
    if steps < 1 or not (order == 1 or (order >= 2 and order % 2 == 0)):
        raise UserError(f"splitting order must be 1 or even >= 2 and steps >= 1, got order={order}, steps={steps}")

    def strang(tau: float) -> list[tuple[int, float]]:
        return [(i, tau / 2) for i in reversed(range(n))] + [(i, tau / 2) for i in range(n)]

    def suzuki(k: int, tau: float) -> list[tuple[int, float]]:
        if k == 2:
            return strang(tau)
        p = suzuki_p(k)
        outer = suzuki(k - 2, p * tau)
        return outer + outer + suzuki(k - 2, (1 - 4 * p) * tau) + outer + outer

    one = [(i, 1.0 / steps) for i in range(n)] if order == 1 else suzuki(order, 1.0 / steps)
    seq: list[tuple[int, float]] = []
    for i, f in one * steps:
        if seq and seq[-1][0] == i:
            seq[-1] = (i, seq[-1][1] + f)
        else:
            seq.append((i, f))
    return seq


def apply_group_element(
    symmetries: Sequence[Symmetry],
    eps: Tensor,
    t: Tensor,
    x: Tensor,
    u: Tensor,
    order: int = 2,
    steps: int = 1,
    **params: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """Apply the split approximation of ``exp(sum_i eps_i X_i)`` to points of the graph.

    Args:
        symmetries: the n generators' flows.
        eps: (n, B) parameters, one per generator and sample.
        t, x, u: (B, ...) coordinates and field values, broadcastable.
        order, steps: splitting order (1, 2, 4, ...) and number of steps.
        params: PDE parameters the flows need, broadcastable to (B, ...).

    Returns:
        Transformed ``(t', x', u')``, same shapes.
    """
    shape = (eps.shape[1],) + (1,) * (u.dim() - 1)
    for i, frac in splitting_sequence(len(symmetries), order, steps):
        e = eps[i].reshape(shape) * frac
        if torch.any(e != 0):
            t, x, u = symmetries[i](e, t, x, u, **params)
    return t, x, u


def invert_coordinates(
    symmetries: Sequence[Symmetry], eps: Tensor, tp: Tensor, xp: Tensor, order: int = 2, steps: int = 1, **params
) -> tuple[Tensor, Tensor]:
    """Pre-images ``(t, x)`` of transformed coordinates: the factors in reverse order with negated eps.

    Valid for generators whose coordinate maps do not depend on u (all registered ones).
    """
    shape = (eps.shape[1],) + (1,) * (tp.dim() - 1)
    zero = torch.zeros_like(tp)
    for i, frac in reversed(splitting_sequence(len(symmetries), order, steps)):
        e = eps[i].reshape(shape) * frac
        if torch.any(e != 0):
            tp, xp, _ = symmetries[i](-e, tp, xp, zero, **params)
    return tp, xp
