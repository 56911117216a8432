"""MAC-grid numerics of the 2D Navier-Stokes + Boussinesq solver (:mod:`data_gen.solvers.ns2d`), batched over
trajectories, float64, CPU or CUDA.

* staggered MAC grid: ``s`` and ``p`` at cell centres, ``vx`` on the ``nx + 1`` vertical faces, ``vy`` on
  the ``ny + 1`` horizontal faces; the wall faces hold the boundary value 0. Arrays are indexed ``[b, i, j]``
  with ``i`` along x and ``j`` along y.
* advection in conservative (flux) form with the upwind-biased kappa = 1/3 reconstruction at faces, Koren's
  limiter optional (:func:`upwind_flux`, :func:`smoke_rhs`, :func:`momentum_rhs`).
* time: SSP-RK3 with a projection after every stage (:func:`ssp_rk3_step`, a pure function of tensors;
  :class:`NS2DStepper` on :class:`NSState` runs it eagerly or through ``torch.compile``).
* projection: the Neumann Poisson problem ``D G phi = D u`` diagonalised exactly by the 2D DCT-II
  (:class:`NeumannPoisson`, :func:`project`): dense orthonormal DCT matrices (four batched matmuls) up to 512
  cells per axis, FFTs of the even extension beyond.
* precision: float64 state and projection; the right-hand side optionally float32 (``advection_dtype``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

Tensor = torch.Tensor


# ---------------------------------------------------------------------------------------------- DCT / Poisson
def dct2(x: Tensor, dim: int = -1) -> Tensor:
    """DCT-II along ``dim``: ``X_k = sum_n x_n cos(pi k (2 n + 1) / (2 N))`` (half of scipy's ``type=2``).

    Computed from the FFT of the even extension ``[x, flip(x)]`` (length 2N):
    ``X_k = Re(exp(-i pi k / 2N) Y_k) / 2``.
    """
    x = x.movedim(dim, -1)
    n = x.shape[-1]
    y = torch.fft.rfft(torch.cat([x, x.flip(-1)], dim=-1), dim=-1)[..., :n]
    k = torch.arange(n, device=x.device, dtype=x.dtype)
    w = torch.polar(torch.ones_like(k), -math.pi * k / (2 * n))
    return (0.5 * (y * w).real).movedim(-1, dim)


def idct2(x: Tensor, dim: int = -1) -> Tensor:
    """Inverse of :func:`dct2` (a scaled DCT-III) along ``dim``.

    ``x_n = (2 / N) (X_0 / 2 + sum_{k=1}^{N-1} X_k cos(pi k (2 n + 1) / (2 N)))``, evaluated as
    ``4 Re(ifft_{2N}(w_k X_k exp(i pi k / 2N)))[:N]`` with ``w_0 = 1/2``, ``w_k = 1``, zero-padded to 2N.
    """
    x = x.movedim(dim, -1)
    n = x.shape[-1]
    k = torch.arange(n, device=x.device, dtype=x.dtype)
    w = torch.polar(torch.ones_like(k), math.pi * k / (2 * n))
    w[0] = 0.5
    z = torch.fft.ifft(x * w, n=2 * n, dim=-1)[..., :n]
    return (4.0 * z.real).movedim(-1, dim)


#: Largest axis length for which :class:`NeumannPoisson` uses dense DCT matrices by default (``method="auto"``):
#: on a CPU core the four batched matmuls beat the FFT route about 5x at 128 cells; the matmul's cost per cell
#: grows as n against the FFT's log n, so finer grids go through the FFT (the crossover is measured in
#: docs/benchmarks/datagen_ns2d_cpu.md).
MATMUL_DCT_MAX = 256


def dct_matrix(n: int, device: torch.device | str = "cpu") -> Tensor:
    """Orthonormal DCT-II matrix ``C`` (n, n) float64: ``C[k, i] = a_k cos(pi k (2 i + 1) / (2 n))``.

    ``a_0 = sqrt(1/n)``, ``a_k = sqrt(2/n)``; ``C^T C = I``, so ``C^T`` is the inverse transform.
    """
    f64 = dict(dtype=torch.float64, device=torch.device(device))
    k, i = torch.arange(n, **f64), torch.arange(n, **f64)
    c = torch.cos(math.pi * k[:, None] * (2 * i[None, :] + 1) / (2 * n)) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    return c


class NeumannPoisson:
    """Exact solver of the cell-centred 5-point Laplacian with homogeneous Neumann walls, batched.

    ``L phi = (phi_{i+1,j} - 2 phi_ij + phi_{i-1,j}) / dx^2 + (...)_y / dy^2`` with mirrored ghost values
    (zero normal gradient on the walls). Its eigenvectors are the DCT-II modes
    ``cos(pi k (i + 1/2) / nx) cos(pi l (j + 1/2) / ny)`` with eigenvalues
    ``-(2/dx sin(pi k / 2nx))^2 - (2/dy sin(pi l / 2ny))^2``. The constant mode is the kernel: the
    right-hand side must have zero mean (a MAC divergence with zero wall fluxes does) and the returned
    solution has zero mean.

    ``method``: ``"matmul"`` transforms with the dense orthonormal DCT matrices (four batched matmuls,
    ``4 B n^3``-ish flops but near the machine's matmul rate), ``"fft"`` with :func:`dct2` / :func:`idct2`
    (FFTs of the even extension), ``"auto"`` the matmul when both axes have at most :data:`MATMUL_DCT_MAX`
    cells. Both diagonalise the same operator; they agree to round-off (tested).
    """

    def __init__(
        self, nx: int, ny: int, dx: float, dy: float, device: torch.device | str = "cpu", method: str = "auto"
    ) -> None:
        if method not in ("auto", "matmul", "fft"):
            raise ValueError(f"method must be 'auto', 'matmul' or 'fft', got {method!r}")
        f64 = dict(dtype=torch.float64, device=torch.device(device))
        lx = -(((2.0 / dx) * torch.sin(math.pi * torch.arange(nx, **f64) / (2 * nx))) ** 2)
        ly = -(((2.0 / dy) * torch.sin(math.pi * torch.arange(ny, **f64) / (2 * ny))) ** 2)
        lam = lx[:, None] + ly[None, :]
        inv = torch.zeros_like(lam)
        inv[lam != 0] = 1.0 / lam[lam != 0]
        self.eigenvalues = lam
        self.inverse = inv  # zero on the constant mode
        if method == "auto":
            method = "matmul" if max(nx, ny) <= MATMUL_DCT_MAX else "fft"
        self.method = method
        if method == "matmul":
            self.cx, self.cy = dct_matrix(nx, device), dct_matrix(ny, device)

        else:
            self.cx = self.cy = None

    def solve(self, f: Tensor) -> Tensor:
        """``phi`` (B, nx, ny) with ``L phi = f - mean(f)`` and ``mean(phi) = 0``, for ``f`` (B, nx, ny)."""
        return poisson_solve(f, self.inverse, self.cx, self.cy)


def poisson_solve(f: Tensor, inverse: Tensor, cx: Tensor | None, cy: Tensor | None) -> Tensor:
    """:meth:`NeumannPoisson.solve` as a pure function: ``inverse`` (nx, ny) the inverse eigenvalues (0 on the
    constant mode); ``cx`` (nx, nx), ``cy`` (ny, ny) the orthonormal DCT matrices, or None for the FFT route."""
    if cx is not None and cy is not None:
        fh = cx @ f @ cy.T  # (nx, nx) @ (B, nx, ny) @ (ny, ny): both axes transformed
        return cx.T @ (fh * inverse) @ cy
    fh = dct2(dct2(f, -2), -1)
    return idct2(idct2(fh * inverse, -1), -2)


def neumann_laplacian(phi: Tensor, dx: float, dy: float) -> Tensor:
    """The 5-point Laplacian of cell-centred ``phi`` (B, nx, ny) with mirrored (zero-gradient) ghosts."""
    px = torch.cat([phi[:, :1], phi, phi[:, -1:]], dim=1)
    py = torch.cat([phi[:, :, :1], phi, phi[:, :, -1:]], dim=2)
    return (px[:, 2:] - 2 * phi + px[:, :-2]) / dx**2 + (py[:, :, 2:] - 2 * phi + py[:, :, :-2]) / dy**2


def _is_compiler_failure(e: BaseException) -> bool:
    """Whether ``e`` is a failure of torch's compiler backend (inductor, its C++ / Triton toolchain), not of the
    traced code: dynamo's own errors for a bug in the step (e.g. a shape mismatch) are not."""
    if type(e).__name__ == "BackendCompilerFailed":
        return True
    return (type(e).__module__ or "").startswith("torch._inductor")


# ---------------------------------------------------------------------------------------------- MAC operators
def divergence(vx: Tensor, vy: Tensor, dx: float, dy: float) -> Tensor:
    """MAC divergence at cell centres: (B, nx, ny) from ``vx`` (B, nx+1, ny) and ``vy`` (B, nx, ny+1)."""
    return (vx[:, 1:] - vx[:, :-1]) / dx + (vy[:, :, 1:] - vy[:, :, :-1]) / dy


def gradient(phi: Tensor, dx: float, dy: float) -> tuple[Tensor, Tensor]:
    """MAC gradient of cell-centred ``phi`` on the faces, zero on the wall faces."""
    gx = torch.nn.functional.pad((phi[:, 1:] - phi[:, :-1]) / dx, (0, 0, 1, 1))
    gy = torch.nn.functional.pad((phi[:, :, 1:] - phi[:, :, :-1]) / dy, (1, 1))
    return gx, gy


def project(vx: Tensor, vy: Tensor, poisson: NeumannPoisson, dx: float, dy: float) -> tuple[Tensor, Tensor]:
    """Divergence-free part of a face velocity field (wall faces unchanged): ``u - G L^{-1} D u``."""
    phi = poisson.solve(divergence(vx, vy, dx, dy))
    gx, gy = gradient(phi, dx, dy)
    return vx - gx, vy - gy


def centre_velocity(vx: Tensor, vy: Tensor) -> tuple[Tensor, Tensor]:
    """Face velocities averaged to cell centres, each (B, nx, ny)."""
    return 0.5 * (vx[:, 1:] + vx[:, :-1]), 0.5 * (vy[:, :, 1:] + vy[:, :, :-1])


def _ghost(q: Tensor, dim: int, mode: str) -> Tensor:
    """``q`` with two ghost entries on each side along ``dim``.

    ``"even"``: mirror about the boundary half a cell away (zero-gradient cell data); ``"odd"``: the
    negated mirror (a quantity vanishing on a wall half a cell away: tangential velocity, no slip);
    ``"wall"``: mirror about the first/last entry, which lies on the wall (wall-normal velocity).
    """
    n = q.shape[dim]
    if mode == "wall":
        lo, hi = q.narrow(dim, 1, 2).flip(dim), q.narrow(dim, n - 3, 2).flip(dim)
    else:
        lo, hi = q.narrow(dim, 0, 2).flip(dim), q.narrow(dim, n - 2, 2).flip(dim)
        if mode == "odd":
            lo, hi = -lo, -hi
    return torch.cat([lo, q, hi], dim=dim)


def _slope(a: Tensor, b: Tensor, limited: bool) -> Tensor:
    """Twice the reconstruction increment: ``(a + 2 b) / 3`` (kappa = 1/3) or Koren's limited form.

    With ``r = b / a``, Koren's limiter is ``phi(r) = max(0, min(2 r, (1 + 2 r) / 3, 2))``; here
    ``phi(r) a`` is evaluated without division.
    """
    if not limited:
        return (a + 2.0 * b) / 3.0
    m = torch.minimum(torch.minimum(2.0 * b.abs(), (a + 2.0 * b).abs() / 3.0), 2.0 * a.abs())
    return torch.where(a * b > 0, torch.sign(a) * m, torch.zeros_like(a))


def upwind_flux(q: Tensor, vel: Tensor, dim: int, ghost: str, limited: bool) -> Tensor:
    """Upwind-biased flux ``vel * q_face`` at the ``n + 1`` interfaces of ``q`` (n entries along ``dim``).

    Interface ``k`` lies between entries ``k - 1`` and ``k`` (0 and ``n`` are the outer ones, next to the
    ghosts). ``vel`` has ``n + 1`` entries along ``dim``. The face value is reconstructed from the
    upwind side: ``q_L = q_{k-1} + S(q_{k-1} - q_{k-2}, q_k - q_{k-1}) / 2`` for ``vel > 0`` and the
    mirror image for ``vel < 0``, ``S`` from :func:`_slope`.
    """
    p = _ghost(q, dim, ghost)
    d = p.diff(dim=dim)  # d[j] = p[j+1] - p[j], n + 3 entries
    n1 = q.shape[dim] + 1

    def sl(t: Tensor, start: int) -> Tensor:
        return t.narrow(dim, start, n1)

    q_left = sl(p, 1) + 0.5 * _slope(sl(d, 0), sl(d, 1), limited)
    q_right = sl(p, 2) + 0.5 * _slope(-sl(d, 2), -sl(d, 1), limited)
    return vel * torch.where(vel > 0, q_left, q_right)


def smoke_rhs(s: Tensor, vx: Tensor, vy: Tensor, dx: float, dy: float, limited: bool = True) -> Tensor:
    """``-div(u s)`` at cell centres in flux form; no flux through the walls (the wall faces have u = 0)."""
    fx = upwind_flux(s, vx, 1, "even", limited)
    fy = upwind_flux(s, vy, 2, "even", limited)
    return -((fx[:, 1:] - fx[:, :-1]) / dx + (fy[:, :, 1:] - fy[:, :, :-1]) / dy)


def _momentum_normal(w: Tensor, t: Tensor, dn: float, dt_: float, nu: float, limited: bool) -> Tensor:
    """``-div(u w) + nu lap w`` at the interior faces of the face-normal component ``w``.

    ``w`` (B, n + 1, m) lives on the faces normal to the first spatial axis (walls at 0 and n); ``t``
    (B, n, m + 1) is the other component. ``dn``, ``dt_`` are the spacings along / across. Returns
    (B, n - 1, m).
    """
    # fluxes through the cell centres (between consecutive w faces), advecting velocity averaged from w
    un = 0.5 * (w[:, 1:] + w[:, :-1])  # (B, n, m)
    fn = upwind_flux(w, torch.nn.functional.pad(un, (0, 0, 1, 1)), 1, "wall", limited)[:, 1:-1]  # (B, n, m)
    # fluxes through the cell corners (interior w faces, all m + 1 corner rows), velocity averaged from t
    ut = 0.5 * (t[:, 1:] + t[:, :-1])  # (B, n - 1, m + 1)
    ft = upwind_flux(w[:, 1:-1], ut, 2, "odd", limited)  # (B, n - 1, m + 1)
    conv = (fn[:, 1:] - fn[:, :-1]) / dn + (ft[:, :, 1:] - ft[:, :, :-1]) / dt_
    wi = w[:, 1:-1]
    wy = torch.cat([-wi[:, :, :1], wi, -wi[:, :, -1:]], dim=2)  # no slip: odd ghosts along the wall
    lap = (w[:, 2:] - 2 * wi + w[:, :-2]) / dn**2 + (wy[:, :, 2:] - 2 * wi + wy[:, :, :-2]) / dt_**2
    return -conv + nu * lap


def momentum_rhs(
    vx: Tensor, vy: Tensor, s: Tensor, buoyancy: Tensor, nu: float, dx: float, dy: float, limited: bool = False
) -> tuple[Tensor, Tensor]:
    """Advection, viscosity and buoyancy on the faces (zero on the wall faces), before projection.

    Args:
        vx, vy: face velocities (B, nx+1, ny), (B, nx, ny+1).
        s: smoke (B, nx, ny).
        buoyancy: (B,) factor b of the force ``b s`` along +y.
    """
    rx = _momentum_normal(vx, vy, dx, dy, nu, limited)
    ry = _momentum_normal(vy.transpose(1, 2), vx.transpose(1, 2), dy, dx, nu, limited).transpose(1, 2)
    ry = ry + buoyancy[:, None, None] * 0.5 * (s[:, :, 1:] + s[:, :, :-1])
    return torch.nn.functional.pad(rx, (0, 0, 1, 1)), torch.nn.functional.pad(ry, (1, 1))


@dataclass
class NSState:
    """Smoke at cell centres and face velocities, (B, nx, ny), (B, nx+1, ny), (B, nx, ny+1) float64."""

    s: Tensor
    vx: Tensor
    vy: Tensor


@dataclass(frozen=True)
class StepSettings:
    """The scalar settings of :func:`ssp_rk3_step` (constants of a compiled step: one graph per distinct value)."""

    dx: float
    dy: float
    nu: float
    smoke_limiter: bool
    momentum_limiter: bool
    advection_dtype: torch.dtype


def rhs_arrays(s: Tensor, vx: Tensor, vy: Tensor, buoyancy: Tensor, k: StepSettings) -> tuple[Tensor, Tensor, Tensor]:
    """Advection, viscosity and buoyancy of every field, evaluated in ``k.advection_dtype`` and returned in the
    state's dtype (the stage combinations and the projection stay in the state's float64)."""
    a = k.advection_dtype
    s_, vx_, vy_, b_ = (q.to(a) for q in (s, vx, vy, buoyancy))
    rs = smoke_rhs(s_, vx_, vy_, k.dx, k.dy, k.smoke_limiter)
    rx, ry = momentum_rhs(vx_, vy_, s_, b_, k.nu, k.dx, dy=k.dy, limited=k.momentum_limiter)
    return rs.to(s.dtype), rx.to(s.dtype), ry.to(s.dtype)


def ssp_rk3_step(
    s: Tensor,
    vx: Tensor,
    vy: Tensor,
    dt: Tensor,
    buoyancy: Tensor,
    inverse: Tensor,
    cx: Tensor | None,
    cy: Tensor | None,
    k: StepSettings,
) -> tuple[Tensor, Tensor, Tensor]:
    """One SSP-RK3 (Shu-Osher) step with a projection after every stage, as a pure function of tensors.

    Args:
        s, vx, vy: the state (B, nx, ny), (B, nx+1, ny), (B, nx, ny+1).
        dt: step per trajectory (B,).
        buoyancy: (B,).
        inverse, cx, cy: the projection's Poisson solve (:func:`poisson_solve`).
        k: grid spacings, viscosity, limiters and the right-hand side's precision.
    """
    dtb = dt[:, None, None]
    s0, vx0, vy0 = s, vx, vy

    def stage(a: float, c: float, s1: Tensor, vx1: Tensor, vy1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Projected ``a u0 + c (u1 + dt rhs(u1))``."""
        rs, rx, ry = rhs_arrays(s1, vx1, vy1, buoyancy, k)
        sn = a * s0 + c * (s1 + dtb * rs)
        vxn = a * vx0 + c * (vx1 + dtb * rx)
        vyn = a * vy0 + c * (vy1 + dtb * ry)
        phi = poisson_solve(divergence(vxn, vyn, k.dx, k.dy), inverse, cx, cy)
        gx, gy = gradient(phi, k.dx, k.dy)
        return sn, vxn - gx, vyn - gy

    s1 = stage(0.0, 1.0, s0, vx0, vy0)
    s2 = stage(0.75, 0.25, *s1)
    return stage(1.0 / 3.0, 2.0 / 3.0, *s2)


#: Compiled :func:`ssp_rk3_step`, made once per process: every stepper shares it, so a new batch (a new stepper)
#: reuses the graph compiled for earlier ones with the same settings instead of compiling again. The batch dimension
#: is marked dynamic (:meth:`NS2DStepper.step`), so the last, smaller batch of a shard and the replacement batches
#: after rejections reuse it too (a batch of one gets its own graph: torch specialises sizes 0 and 1).
_COMPILED_STEP: list = []
#: Set when the compiler failed once in this process: later steppers go straight to the eager step.
_COMPILE_FAILED: list[str] = []


def compiled_ssp_rk3_step():
    """The process-wide ``torch.compile`` of :func:`ssp_rk3_step`."""
    if not _COMPILED_STEP:
        _COMPILED_STEP.append(torch.compile(ssp_rk3_step, dynamic=None))
    return _COMPILED_STEP[0]


class NS2DStepper:
    """SSP-RK3 time stepper with a pressure projection after every stage (see the module docstring).

    ``advection_dtype=torch.float32`` evaluates the right-hand side (the flux stencils, limiters, viscosity and
    buoyancy) in single precision; the state, the stage combinations and the projection stay float64, so every
    stage is still divergence-free to double-precision round-off (the smoke's mass, whose fluxes are then summed in
    single precision, is conserved to about 1e-7 instead of 1e-14).

    ``compile=True`` runs :meth:`step` through ``torch.compile`` (:func:`compiled_ssp_rk3_step`: the stencils,
    limiters and stage combinations fuse into a few loops; the transforms stay library calls); the eager code is
    the reference it is tested against. When the compiler is unavailable (e.g. no C++ compiler on a CPU machine)
    the first step warns once and the stepper continues eagerly.
    """

    def __init__(
        self,
        nx: int,
        ny: int,
        length_x: float,
        length_y: float,
        nu: float,
        buoyancy: Tensor,
        smoke_limiter: bool = True,
        momentum_limiter: bool = False,
        compile: bool = False,
        poisson_method: str = "auto",
        advection_dtype: torch.dtype = torch.float64,
    ) -> None:
        self.dx, self.dy = length_x / nx, length_y / ny
        self.nu, self.buoyancy = nu, buoyancy
        self.settings = StepSettings(
            self.dx, self.dy, float(nu), bool(smoke_limiter), bool(momentum_limiter), advection_dtype
        )
        self.poisson = NeumannPoisson(nx, ny, self.dx, self.dy, buoyancy.device, method=poisson_method)
        self.compiled = bool(compile)

    def rhs(self, st: NSState) -> NSState:
        """The right-hand side of every field (:func:`rhs_arrays`), before projection."""
        return NSState(*rhs_arrays(st.s, st.vx, st.vy, self.buoyancy, self.settings))

    def _args(self, st: NSState, dt: Tensor | float) -> tuple:
        dtv = torch.as_tensor(dt, dtype=st.s.dtype, device=st.s.device).expand(st.s.shape[0]).contiguous()
        p = self.poisson
        return st.s, st.vx, st.vy, dtv, self.buoyancy, p.inverse, p.cx, p.cy, self.settings

    def eager_step(self, st: NSState, dt: Tensor | float) -> NSState:
        """One SSP-RK3 step of size ``dt`` (scalar or per trajectory (B,)), op by op."""
        return NSState(*ssp_rk3_step(*self._args(st, dt)))

    def step(self, st: NSState, dt: Tensor | float) -> NSState:
        """One SSP-RK3 step of size ``dt`` (scalar or per trajectory (B,)), compiled when asked for."""
        if self.compiled and _COMPILE_FAILED:
            self.compiled = False
        if not self.compiled:
            return self.eager_step(st, dt)
        args = self._args(st, dt)
        if st.s.shape[0] > 1:
            for a in args[:5]:  # s, vx, vy, dt, buoyancy: one graph for every batch size
                torch._dynamo.mark_dynamic(a, 0)
        try:
            return NSState(*compiled_ssp_rk3_step()(*args))
        except Exception as e:  # the compiler itself failed (missing toolchain, unsupported backend)
            if not _is_compiler_failure(e):
                raise
            _COMPILE_FAILED.append(f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
            warnings.warn(
                f"torch.compile of the ns2d step failed ({_COMPILE_FAILED[-1]}); continuing with the eager step "
                "for the rest of this process (set solver.compile=false to skip the attempt)",
                RuntimeWarning,
                stacklevel=2,
            )
            self.compiled = False
            return self.eager_step(st, dt)

    def cfl(self, st: NSState, dt: Tensor | float) -> Tensor:
        """Per trajectory (B,): ``dt max_cells (max|vx| / dx + max|vy| / dy)``, each max over the cell's two faces."""
        ax, ay = st.vx.abs(), st.vy.abs()
        rate = torch.maximum(ax[:, 1:], ax[:, :-1]) / self.dx + torch.maximum(ay[:, :, 1:], ay[:, :, :-1]) / self.dy
        return dt * rate.amax(dim=(1, 2))


# ---------------------------------------------------------------------------------------------- generator
