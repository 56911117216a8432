"""Independent reference solver: the LPSDA method (serial scipy ``solve_ivp``, Radau, method of lines).

It shares nothing with :mod:`data_gen.spectral` but the equations: numpy/scipy instead of torch, the
advective form ``u u_x`` instead of the conservative ``(u^2/2)_x``, no dealiasing, and an implicit
adaptive Runge-Kutta (Radau IIA, order 5) instead of ETDRK4. Agreement between the two is evidence
that both solve the PDE, not that they share a bug. One trajectory at a time, on the CPU: it is also
the baseline of ``scripts/bench_datagen.py``.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import irfft, rfft
from scipy.integrate import solve_ivp

#: Coefficients of ``u_t = -u u_x + sum_m c_m d^m u / dx^m`` for each PDE (nu supplied for Burgers).
LINEAR_TERMS = {
    "burgers": lambda nu: {2: nu},
    "kdv": lambda nu: {3: -1.0},
    "ks": lambda nu: {2: -1.0, 4: -1.0},
}


def _derivative_symbols(nx: int, length: float, orders: list[int]) -> dict[int, np.ndarray]:
    k = 2 * np.pi * np.arange(nx // 2 + 1) / length
    out = {}
    for m in orders:
        s = (1j * k) ** m
        if m % 2 == 1:
            s[-1] = 0.0  # odd derivatives of the Nyquist mode are not real: drop it (as LPSDA's psdiff)
        out[m] = s
    return out


def reference_solve(
    pde: str,
    u0: np.ndarray,
    length: float,
    t_eval: np.ndarray,
    nu: float | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-10,
) -> np.ndarray:
    """Solve one trajectory with scipy Radau.

    Args:
        pde: "burgers", "kdv" or "ks".
        u0: (nx,) float64 initial condition at t = 0 on the grid ``arange(nx) * length / nx``.
        length: domain length.
        t_eval: (nt,) increasing output times (>= 0).
        nu: viscosity (Burgers only).
        rtol, atol: Radau tolerances.

    Returns:
        (nt, nx) float64 solution at ``t_eval``.

    Raises:
        RuntimeError: when the integrator fails.
    """
    nx = u0.shape[-1]
    terms = LINEAR_TERMS[pde](nu)
    sym = _derivative_symbols(nx, length, [1, *terms])

    def rhs(_t: float, u: np.ndarray) -> np.ndarray:
        uh = rfft(u)
        du = -u * irfft(sym[1] * uh, n=nx)
        lin = sum(c * sym[m] for m, c in terms.items())
        return du + irfft(lin * uh, n=nx)

    sol = solve_ivp(rhs, (0.0, float(t_eval[-1])), u0, method="Radau", t_eval=t_eval, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"reference solve failed: {sol.message}")
    return sol.y.T
