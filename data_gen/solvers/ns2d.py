"""2D incompressible Navier-Stokes with Boussinesq buoyancy in a closed box (PDEArena "conditioned smoke").

Equations on [0, Lx] x [0, Ly]::

    s_t + u . grad s = 0
    u_t + (u . grad) u = -grad p + nu lap u + b s y_hat,    div u = 0

with no-slip walls (u = 0 on the boundary) and no smoke flux through them. Fluid at rest at t = 0;
the smoke starts from smooth noise, ``s0 = |n(x, y)|`` (see :meth:`NS2DGenerator.sample_params`);
one buoyancy ``b`` per trajectory.

Discretisation (everything batched over trajectories, float64, CPU or CUDA, same code):

* staggered MAC grid: ``s`` and ``p`` at cell centres, ``vx`` on the ``nx + 1`` vertical faces, ``vy`` on
  the ``ny + 1`` horizontal faces; the wall faces hold the boundary value 0. Arrays are indexed
  ``[b, i, j]`` with ``i`` along x and ``j`` along y (the storage order of ``/u``).
* advection in conservative (flux) form, finite-volume, with the upwind-biased kappa = 1/3 (third-order)
  reconstruction at faces; the smoke uses Koren's limiter on it (TVD: no new extrema, ``s >= 0`` kept),
  the momentum optionally too (``momentum_limiter``). Smoke mass is conserved to round-off and no smoke
  crosses a wall (the wall faces carry zero velocity). This method-of-lines form (rather than
  semi-Lagrangian MacCormack) keeps the scheme consistent as dt -> 0 at a fixed grid, so its error
  converges in time and in space separately (see ``ssl-pde-verify pde=ns2d``).
* viscosity: 5-point Laplacian on the face grids, the wall value 0 imposed directly on wall-normal
  faces and by an odd ghost value for the tangential component (explicit; the diffusion number
  ``nu dt (1/dx^2 + 1/dy^2)`` is checked against 0.5).
* buoyancy ``b s`` averaged from the two cell centres adjacent to each interior ``vy`` face.
* time: three-stage strong-stability-preserving Runge-Kutta (SSP-RK3, Shu-Osher) with an exact
  pressure projection after every stage, so every stage and every stored frame is discretely
  divergence-free to round-off.
* projection: the discrete Neumann Poisson problem ``D G phi = D u`` (``G`` the MAC gradient, zero
  on wall faces; ``D`` the MAC divergence) is the 5-point Laplacian at cell centres with mirrored
  ghosts, which the 2D DCT-II diagonalises exactly; the DCT is computed with ``torch.fft`` on the
  even extension, the zero mode (the constant, in the kernel) is set to 0.

Stored: ``u`` (B, T, 3, nx, ny) with channels ("smoke", "vx", "vy"), velocities averaged from the two
faces of each cell to its centre; ``x``/``y`` cell centres.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from data_gen.solvers.base import ConfigError, GeneratedBatch, TrajectoryGenerator, _positive
from data_gen.solvers.mac_grid import (
    NS2DStepper,
    NSState,
    centre_velocity,
    divergence,
)

Tensor = torch.Tensor

#: ``compile=auto`` threshold of :meth:`NS2DGenerator.use_compile` (batch x cells x internal steps): about a
#: minute of eager stepping on one CPU core, below one trajectory of the generation setting (6.8e7).
COMPILE_MIN_CELL_STEPS = 5 * 10**7


def noise_modes(max_mode: int, scale: float, length_x: float, length_y: float) -> np.ndarray:
    """Integer wavevectors (M, 2) of the smoke noise: a half plane of ``|m_x|, |m_y| <= max_mode``.

    One of each pair +-m (``m_x > 0``, or ``m_x = 0`` and ``m_y > 0``), keeping PhiFlow's cut
    ``|k|^2 > 0.1`` with ``k = m scale / L``.
    """
    out = []
    for mx in range(0, max_mode + 1):
        for my in range(-max_mode, max_mode + 1):
            if mx == 0 and my <= 0:
                continue
            k2 = (mx * scale / length_x) ** 2 + (my * scale / length_y) ** 2
            if k2 > 0.1:
                out.append((mx, my))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


class NS2DGenerator(TrajectoryGenerator):
    """Buoyancy-driven smoke in a closed box, PDEArena "conditioned smoke" setting by default.

    Per trajectory, from ``numpy.random.default_rng(seed)`` in this order: the buoyancy
    ``b ~ U(buoyancy_min, buoyancy_max)``, then the smoke noise coefficients. The smoke starts as
    ``s0 = smoke_amplitude |n(x, y)| / std(n)``, ``n = sum_m a_m cos(theta_m) + c_m sin(theta_m)``,
    ``theta_m = 2 pi (m_x x / Lx + m_y y / Ly)`` over the modes of :func:`noise_modes`, with
    ``a_m, c_m ~ N(0, std = |k_m|^(-2 smoothness))``, ``|k_m| = scale |(m_x / Lx, m_y / Ly)|``: the spectrum
    of PhiFlow's ``Noise(scale, smoothness)`` (amplitude ``(1 / |k|^2)^smoothness`` on the FFT modes with
    ``|k|^2 > 0.1``, ``phi/field/_noise.py``) used by PDEArena (scale 11, smoothness 6), truncated at
    ``noise_max_mode`` (with smoothness 6, mode 4's amplitude is ``4^-12 ~ 6e-8`` of mode 1's, so the field
    is dominated by the four wavevectors (+-1, 0), (0, +-1)). The normalised coefficients are stored as
    ``ic_noise_coef`` (N, 2M): the M cosine then the M sine coefficients, so ``s0`` can be rebuilt
    without the random stream. The fluid starts at rest.

    Stored frames: ``nt`` at ``t = linspace(t_start, t_end, nt)`` (PDEArena: 56 frames on [18, 102]);
    the transient [0, t_start] is simulated and not stored. Internal step: each stored interval is cut
    into ``ceil(dt_store / dt_max)`` equal steps, the transient into ``ceil(t_start / dt)`` steps.

    Args:
        nx, ny: cells along x and y (stored and solver grid).
        length_x, length_y: box size.
        nt: stored frames.
        t_start, t_end: first and last stored time.
        nu: kinematic viscosity.
        buoyancy_min, buoyancy_max: range of the uniform buoyancy b.
        noise_scale, noise_smoothness, noise_max_mode: smoke noise spectrum (above).
        smoke_amplitude: factor of the normalised noise.
        dt_max: largest internal time step.
        smoke_limiter: Koren limiter on the smoke reconstruction (keeps ``s >= 0``).
        momentum_limiter: Koren limiter on the momentum reconstruction (default: unlimited kappa = 1/3).
        max_cfl: a trajectory whose CFL number (:meth:`NS2DStepper.cfl`) exceeds this is rejected.
        max_abs_limit: a trajectory exceeding this amplitude (any channel) is rejected.
        max_divergence: a trajectory whose stored divergence ``max |D u|`` (MAC, 1/time) exceeds this is rejected.
        compile: run the internal step through ``torch.compile`` (``true``), eagerly (``false``), or decide by the
            amount of work (``auto``, :meth:`use_compile`). How the step is computed, not what: the two agree
            to round-off (tested), and the setting is not part of a shard's generation key.
        advection_dtype: precision of the right-hand side (advection, viscosity, buoyancy): ``float64`` or
            ``float32``; the state, the Runge-Kutta combinations and the projection stay float64 either way.
            Changes the result (at the level measured in docs/data.md), so it is part of the generation key.
        poisson_method: transforms of the projection (:class:`~data_gen.solvers.mac_grid.NeumannPoisson`):
            ``auto`` (dense DCT matrices up to 512 cells per axis, else FFTs), ``matmul`` or ``fft``; they agree
            to round-off, so like ``compile`` it is not part of the generation key.
    """

    pde = "ns2d"
    solver_description = (
        "MAC grid, finite-volume advection (kappa=1/3 upwind-biased, Koren-limited smoke), explicit viscosity, "
        "SSP-RK3 with an exact DCT pressure projection per stage, float64 (right-hand side optionally float32), "
        "stored float32"
    )

    def __init__(
        self,
        nx: int = 128,
        ny: int = 128,
        length_x: float = 32.0,
        length_y: float = 32.0,
        nt: int = 56,
        t_start: float = 18.0,
        t_end: float = 102.0,
        nu: float = 0.01,
        buoyancy_min: float = 0.2,
        buoyancy_max: float = 0.5,
        noise_scale: float = 11.0,
        noise_smoothness: float = 6.0,
        noise_max_mode: int = 4,
        smoke_amplitude: float = 1.0,
        dt_max: float = 0.025,
        smoke_limiter: bool = True,
        momentum_limiter: bool = False,
        max_cfl: float = 1.0,
        max_abs_limit: float = 100.0,
        max_divergence: float = 1.0e-9,
        compile: bool | str = "auto",
        advection_dtype: str = "float64",
        poisson_method: str = "auto",
    ) -> None:
        self._init_kwargs = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        for name in ("nx", "ny", "nt", "noise_max_mode"):
            v = locals()[name]
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if nx < 4 or ny < 4:
            raise ConfigError(f"grid must have at least 4 cells per axis, got nx={nx}, ny={ny}")
        for name in ("length_x", "length_y", "nu", "dt_max", "max_cfl", "max_abs_limit", "max_divergence"):
            _positive(name, locals()[name])
        for name in ("noise_scale", "noise_smoothness", "smoke_amplitude", "t_end"):
            _positive(name, locals()[name])
        if not (isinstance(t_start, int | float) and 0 <= t_start < t_end):
            raise ConfigError(f"need 0 <= t_start < t_end, got t_start={t_start!r}, t_end={t_end!r}")
        if nt < 2 and t_start != t_end:
            raise ConfigError(f"nt must be >= 2, got {nt}")
        if not (0 <= buoyancy_min <= buoyancy_max and math.isfinite(buoyancy_max)):
            raise ConfigError(f"need 0 <= buoyancy_min <= buoyancy_max, got [{buoyancy_min}, {buoyancy_max}]")
        self.nx, self.ny, self.nt = nx, ny, nt
        self.length_x, self.length_y = float(length_x), float(length_y)
        self.t_start, self.t_end = float(t_start), float(t_end)
        self.nu = float(nu)
        self.buoyancy_min, self.buoyancy_max = float(buoyancy_min), float(buoyancy_max)
        self.noise_scale, self.noise_smoothness = float(noise_scale), float(noise_smoothness)
        self.noise_max_mode, self.smoke_amplitude = noise_max_mode, float(smoke_amplitude)
        self.dt_max = float(dt_max)
        self.smoke_limiter, self.momentum_limiter = bool(smoke_limiter), bool(momentum_limiter)
        self.max_cfl, self.max_abs_limit = float(max_cfl), float(max_abs_limit)
        self.max_divergence = float(max_divergence)
        if compile not in (True, False, "auto"):
            raise ConfigError(f"compile must be true, false or auto, got {compile!r}")
        self.compile = compile
        if advection_dtype not in ("float32", "float64"):
            raise ConfigError(f"advection_dtype must be float32 or float64, got {advection_dtype!r}")
        self.advection_dtype = advection_dtype
        if poisson_method not in ("auto", "matmul", "fft"):
            raise ConfigError(f"poisson_method must be auto, matmul or fft, got {poisson_method!r}")
        self.poisson_method = poisson_method
        self.dx, self.dy = self.length_x / nx, self.length_y / ny
        self.modes = noise_modes(noise_max_mode, self.noise_scale, self.length_x, self.length_y)
        if len(self.modes) == 0:
            raise ConfigError(f"no noise mode passes |k|^2 > 0.1 with noise_max_mode={noise_max_mode}")
        dn = self.diffusion_number(self.dt_max)
        if dn > 0.5:
            raise ConfigError(
                f"time step too large for explicit viscosity: nu dt_max (1/dx^2 + 1/dy^2) = {dn:.3g} > 0.5 "
                f"(nu={nu:g}, dt_max={dt_max:g}, dx={self.dx:g}, dy={self.dy:g}); lower solver.dt_max"
            )

    # ------------------------------------------------------------------ protocol
    @property
    def nt_total(self) -> int:
        """Stored frames (the transient is not made of stored-interval frames here)."""
        return self.nt

    def diffusion_number(self, dt: float) -> float:
        """``nu dt (1/dx^2 + 1/dy^2)``; explicit 5-point diffusion under SSP-RK3 is stable below ~0.63."""
        return self.nu * dt * (1 / self.dx**2 + 1 / self.dy**2)

    def use_compile(self, batch: int, steps: int) -> bool:
        """Whether a solve of ``batch`` trajectories over ``steps`` internal steps runs the compiled step.

        ``compile=auto`` compiles when the eager run would take well over the compiler's one-off cost (tens of
        seconds on a CPU, seconds once torch's cache holds the graph): at least :data:`COMPILE_MIN_CELL_STEPS`
        cell-steps (batch x cells x steps; one trajectory of the generation setting, the CPU batch, does 6.8e7), so
        tests and the preflight's small proxies stay eager.
        """
        if self.compile != "auto":
            return bool(self.compile)
        return batch * self.nx * self.ny * steps >= COMPILE_MIN_CELL_STEPS

    def sampling_doc(self) -> dict[str, str]:
        modes = ";".join(f"{mx},{my}" for mx, my in self.modes)
        return {
            "buoyancy": f"uniform[{self.buoyancy_min}, {self.buoyancy_max}]",
            "ic_noise_coef": (
                f"a_m, c_m ~ normal(0, std |k_m|^-{2 * self.noise_smoothness:g}), |k_m| = {self.noise_scale:g} |m/L|, "
                f"then scaled so that std(n) = 1 and multiplied by {self.smoke_amplitude:g}; "
                f"{len(self.modes)} modes (m_x,m_y): {modes}"
            ),
        }

    def diagnostics_doc(self) -> dict[str, str]:
        return {
            "divergence": "max over stored frames and cells of |MAC divergence| of the projected face velocities",
            "cfl": "max over internal steps and cells of dt (|vx|/dx + |vy|/dy), each from the larger of two faces",
            "max_abs": "max |smoke|, |vx|, |vy| over stored frames",
            "smoke_mass_drift": "max over stored frames of |sum(s) - sum(s0)| / sum(s0) (zero-flux walls)",
        }

    def sample_params(self, seeds: np.ndarray) -> dict[str, np.ndarray]:
        """Buoyancy (B,) and smoke noise coefficients (B, 2M), each trajectory from its own seed."""
        k = self.noise_scale * np.hypot(self.modes[:, 0] / self.length_x, self.modes[:, 1] / self.length_y)
        sigma = (k * k) ** (-self.noise_smoothness)  # PhiFlow: (1 / |k|^2) ** smoothness
        bs, coefs = [], []
        for s in seeds:
            rng = np.random.default_rng(int(s))
            bs.append(rng.uniform(self.buoyancy_min, self.buoyancy_max))
            ab = rng.standard_normal((2, len(self.modes))) * sigma[None, :]
            std = math.sqrt(0.5 * float(np.sum(ab**2)))  # mean square of sum a cos + c sin over the box
            coefs.append(self.smoke_amplitude * ab.reshape(-1) / std)
        return {"buoyancy": np.array(bs, dtype=np.float64), "ic_noise_coef": np.stack(coefs).astype(np.float64)}

    def grids(self, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
        """Cell-centre coordinates along x (nx,) and y (ny,), float64."""
        f64 = dict(dtype=torch.float64, device=torch.device(device))
        return (torch.arange(self.nx, **f64) + 0.5) * self.dx, (torch.arange(self.ny, **f64) + 0.5) * self.dy

    def initial_smoke(self, params: dict[str, np.ndarray], device: torch.device | str = "cpu") -> Tensor:
        """``s0`` (B, nx, ny) float64 at the cell centres."""
        x, y = self.grids(device)
        m = torch.as_tensor(self.modes, dtype=torch.float64, device=x.device)
        coef = torch.as_tensor(params["ic_noise_coef"], dtype=torch.float64, device=x.device)
        a, c = coef[:, : len(m)], coef[:, len(m) :]
        # theta (M, nx, ny) = phase along x + phase along y, built from separable cos/sin tables
        px = 2 * math.pi * m[:, 0:1] * x[None, :] / self.length_x  # (M, nx)
        py = 2 * math.pi * m[:, 1:2] * y[None, :] / self.length_y  # (M, ny)
        cx, sx = torch.cos(px)[:, :, None], torch.sin(px)[:, :, None]
        cy, sy = torch.cos(py)[:, None], torch.sin(py)[:, None]
        cos_t, sin_t = cx * cy - sx * sy, sx * cy + cx * sy
        n = torch.einsum("bm,mij->bij", a, cos_t) + torch.einsum("bm,mij->bij", c, sin_t)
        return n.abs()

    def stored_times(self, params: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Stored frame times (B, nt) and the interval between them (B,)."""
        b = len(params["buoyancy"])
        t = np.linspace(self.t_start, self.t_end, self.nt)
        dt = (self.t_end - self.t_start) / max(self.nt - 1, 1)
        return np.tile(t, (b, 1)), np.full(b, dt)

    def substeps(self, dt_store: np.ndarray | float) -> int:
        """Internal steps per stored interval."""
        return max(1, math.ceil(float(np.max(dt_store)) / self.dt_max - 1e-9))

    def warmup_steps(self, substeps: int) -> int:
        """Internal steps over the unstored transient [0, t_start] for ``substeps`` per stored interval."""
        if self.t_start == 0:
            return 0
        dt_store = (self.t_end - self.t_start) / max(self.nt - 1, 1)
        return max(1, math.ceil(self.t_start * substeps / dt_store - 1e-9))

    def total_steps(self, seeds: np.ndarray) -> int:
        s = self.substeps(self.stored_times(self.sample_params(seeds[:1]))[1])
        return self.warmup_steps(s) + s * (self.nt - 1)

    # ------------------------------------------------------------------ solve
    def solve(
        self,
        params: dict[str, np.ndarray],
        device: torch.device | str = "cpu",
        progress: Callable[[int], None] | None = None,
        substeps: int | None = None,
        keep_float64: bool = False,
    ) -> dict[str, Tensor]:
        """Simulate; return the stored frames and diagnostics.

        Returns:
            ``u`` (B, nt, 3, nx, ny) (float32 on the CPU, or float64 on ``device`` with ``keep_float64``),
            and per trajectory (B,) float64: ``divergence``, ``cfl``, ``max_abs``, ``smoke_mass_drift``
            and ``finite`` (bool).
        """
        dev = torch.device(device)
        _, dt_store = self.stored_times(params)
        s_int = substeps or self.substeps(dt_store)
        dt = float(dt_store[0]) / s_int
        n_warm = self.warmup_steps(s_int)
        dt_warm = self.t_start / n_warm if n_warm else 0.0
        b = torch.as_tensor(params["buoyancy"], dtype=torch.float64, device=dev)
        nb = len(b)
        stepper = NS2DStepper(
            self.nx,
            self.ny,
            self.length_x,
            self.length_y,
            self.nu,
            b,
            smoke_limiter=self.smoke_limiter,
            momentum_limiter=self.momentum_limiter,
            compile=self.use_compile(nb, n_warm + s_int * (self.nt - 1)),
            advection_dtype=getattr(torch, self.advection_dtype),
            poisson_method=self.poisson_method,
        )
        s0 = self.initial_smoke(params, dev)
        st = NSState(
            s0,
            torch.zeros(nb, self.nx + 1, self.ny, dtype=torch.float64, device=dev),
            torch.zeros(nb, self.nx, self.ny + 1, dtype=torch.float64, device=dev),
        )
        mass0 = s0.sum(dim=(1, 2))
        shape = (nb, self.nt, 3, self.nx, self.ny)
        frames = torch.empty(shape, dtype=torch.float64, device=dev) if keep_float64 else torch.empty(shape)
        zeros = torch.zeros(nb, dtype=torch.float64, device=dev)
        cfl, div, drift = zeros.clone(), zeros.clone(), zeros.clone()

        def store(k: int) -> None:
            nonlocal div, drift
            vxc, vyc = centre_velocity(st.vx, st.vy)
            fr = torch.stack([st.s, vxc, vyc], dim=1)
            frames[:, k] = fr if keep_float64 else fr.to(torch.float32).cpu()
            d = divergence(st.vx, st.vy, self.dx, self.dy).abs().amax(dim=(1, 2))
            div = torch.maximum(div, d)
            drift = torch.maximum(drift, (st.s.sum(dim=(1, 2)) - mass0).abs() / mass0)

        def advance(n_steps: int, h: float) -> None:
            nonlocal st, cfl
            for _ in range(n_steps):
                cfl = torch.maximum(cfl, stepper.cfl(st, h))
                st = stepper.step(st, h)
            if progress is not None and n_steps:
                progress(n_steps)

        advance(n_warm, dt_warm)
        store(0)
        for k in range(1, self.nt):
            advance(s_int, dt)
            store(k)
        cfl = torch.maximum(cfl, stepper.cfl(st, dt))
        absmax = frames.abs().amax(dim=(1, 2, 3, 4)).to(torch.float64)
        finite = torch.isfinite(frames).flatten(1).all(dim=1)
        return {
            "u": frames,
            "divergence": div,
            "cfl": cfl,
            "max_abs": absmax,
            "smoke_mass_drift": drift,
            "finite": finite,
        }

    def generate(
        self,
        seeds: np.ndarray,
        device: torch.device | str = "cpu",
        progress: Callable[[int], None] | None = None,
    ) -> GeneratedBatch:
        """Sample parameters from ``seeds`` and simulate all trajectories in one batch.

        ``ok`` flags trajectories that are finite, bounded by ``max_abs_limit``, keep the CFL number
        below ``max_cfl`` and the stored divergence below ``max_divergence``.
        """
        params = self.sample_params(seeds)
        t, _ = self.stored_times(params)
        out = self.solve(params, device, progress)
        diag = {k: out[k].cpu().numpy() for k in ("divergence", "cfl", "max_abs", "smoke_mass_drift")}
        finite = out["finite"].cpu().numpy()
        reasons = []
        for i in range(len(seeds)):
            if not finite[i] or not np.isfinite(diag["cfl"][i]):
                reasons.append("non-finite values (blow-up)")
            elif diag["max_abs"][i] > self.max_abs_limit:
                reasons.append(f"max |u| = {diag['max_abs'][i]:.3g} > max_abs_limit = {self.max_abs_limit:g}")
            elif diag["cfl"][i] > self.max_cfl:
                reasons.append(f"CFL too large: {diag['cfl'][i]:.3g} > max_cfl = {self.max_cfl:g}")
            elif diag["divergence"][i] > self.max_divergence:
                reasons.append(f"divergence: {diag['divergence'][i]:.3g} > max_divergence = {self.max_divergence:g}")
            else:
                reasons.append("")
        x, y = self.grids("cpu")
        nb = len(seeds)
        return GeneratedBatch(
            u=out["u"].numpy(),
            t=t,
            x=np.tile(x.numpy(), (nb, 1)),
            y=np.tile(y.numpy(), (nb, 1)),
            params=params,
            diagnostics={k: v.astype(np.float32) for k, v in diag.items()},
            ok=np.array([r == "" for r in reasons]),
            reasons=reasons,
        )

    def estimate_time_error(
        self, seeds: np.ndarray, device: torch.device | str = "cpu", horizon: float = 20.0, proxy_cells: int = 32
    ) -> float:
        """Preflight: Richardson estimate of the time-step error and a stability check, on a coarse proxy.

        Simulates ``seeds`` on [0, ``horizon``] (the initial burst, where the velocity peaks) on the same
        box coarsened to about ``proxy_cells`` cells per axis, with the internal step scaled up by the
        coarsening factor (so the proxy runs at about the generation grid's CFL number), and once more
        with half that step. Returns ``8/7`` (Richardson, third order in time: see ``ssl-pde-verify
        pde=ns2d``) times the relative L2 difference of the two runs' frames; ``inf`` when a run is not
        finite or the proxy's CFL number exceeds ``max_cfl`` (the step is unstable or too large).
        """
        horizon = min(horizon, self.t_end)
        f = max(1, min(self.nx, self.ny) // proxy_cells)
        dt_store = (self.t_end - self.t_start) / max(self.nt - 1, 1)
        dt = dt_store / self.substeps(dt_store)
        proxy = self.with_overrides(nx=self.nx // f, ny=self.ny // f, nt=3, t_start=0.0, t_end=horizon)
        s = max(1, round(horizon / 2 / (dt * f)))
        params = proxy.sample_params(seeds)
        coarse = proxy.solve(params, device, substeps=s, keep_float64=True)
        fine = proxy.solve(params, device, substeps=2 * s, keep_float64=True)
        if not (bool(coarse["finite"].all()) and bool(fine["finite"].all())):
            return math.inf
        if float(coarse["cfl"].max()) > self.max_cfl:
            return math.inf
        a, b = coarse["u"], fine["u"]
        return 8 / 7 * float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))
