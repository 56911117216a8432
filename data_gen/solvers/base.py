"""Per-PDE trajectory generators: parameter sampling + batched solve.

A generator turns a vector of per-trajectory seeds into trajectories. Each trajectory's parameters are
drawn from ``numpy.random.default_rng(seed)`` in a fixed order, so the stored seed alone regenerates it.
:class:`TrajectoryGenerator` is the protocol the writer (:mod:`data_gen.writer`) relies on;
:class:`PeriodicGenerator1D` implements it for the periodic 1D equations (ETDRK4), and
:class:`data_gen.solvers.ns2d.NS2DGenerator` for 2D Navier-Stokes with buoyancy.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from data_gen.spectral import SpectralSolution, solve_periodic_1d
from ssl_pde.core.errors import UserError
from ssl_pde.pdes import PDES, PDESpec

Tensor = torch.Tensor


class ConfigError(UserError):
    """Settings that cannot produce valid data (bad value, unstable or under-resolved configuration)."""


@dataclass
class GeneratedBatch:
    """Trajectories of one batch.

    Attributes:
        u: (B, T, C, X) or (B, T, C, X, Y) float32 on the stored grid.
        t: (B, T) float64 stored times.
        x: (B, X) float64 stored grid.
        params: name -> (B,) or (B, k) float64.
        diagnostics: name -> (B,) float32.
        ok: (B,) bool, trajectory finite, bounded and resolved.
        reasons: (B,) str, why a trajectory is not ok ("" when ok).
        y: (B, Y) float64 second stored grid coordinate (2D only).
    """

    u: np.ndarray
    t: np.ndarray
    x: np.ndarray
    params: dict[str, np.ndarray]
    diagnostics: dict[str, np.ndarray]
    ok: np.ndarray
    reasons: list[str] = field(default_factory=list)
    y: np.ndarray | None = None


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be positive and finite, got {value!r}")


class TrajectoryGenerator(ABC):
    """What the writer needs from a generator of one PDE.

    Subclasses set ``pde`` (a key of ``PDES``) and ``solver_description`` (stored as the shard's ``solver``
    attribute), store their constructor arguments in ``self._init_kwargs`` and implement sampling,
    stored times and the batched :meth:`generate`.
    """

    pde: str = ""
    solver_description: str = ""
    _init_kwargs: dict

    @property
    def spec(self) -> PDESpec:
        """The registry entry of this generator's PDE."""
        return PDES[self.pde]

    def init_kwargs(self) -> dict:
        """The constructor arguments, so that a variant can be built with :meth:`with_overrides`."""
        return dict(self._init_kwargs)

    def with_overrides(self, **overrides) -> TrajectoryGenerator:
        """A generator of the same PDE with some constructor arguments replaced."""
        return type(self)(**{**self.init_kwargs(), **overrides})

    @abstractmethod
    def sampling_doc(self) -> dict[str, str]:
        """How each parameter is sampled, stored as the ``sampling`` attribute."""

    @abstractmethod
    def diagnostics_doc(self) -> dict[str, str]:
        """Description of each diagnostic, stored as its ``description`` attribute."""

    @abstractmethod
    def sample_params(self, seeds: np.ndarray) -> dict[str, np.ndarray]:
        """Every parameter of each trajectory, drawn from its own seed: name -> (B,) or (B, k) float64."""

    @abstractmethod
    def stored_times(self, params: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Stored frame times (B, nt) float64 and the interval between them (B,)."""

    @abstractmethod
    def total_steps(self, seeds: np.ndarray) -> int:
        """Internal steps of one batch's solve (the unit of ``generate``'s progress callback)."""

    @abstractmethod
    def generate(
        self,
        seeds: np.ndarray,
        device: torch.device | str = "cpu",
        progress: Callable[[int], None] | None = None,
    ) -> GeneratedBatch:
        """Sample parameters from ``seeds`` and solve all trajectories in one batch."""


class PeriodicGenerator1D(TrajectoryGenerator):
    """Sum-of-sines initial conditions on [0, L), solved with ETDRK4 on a grid of ``solver_nx`` points.

    ``u0(x) = sum_j A_j sin(2 pi l_j x / L + phi_j)`` with ``A_j ~ U(amp_min, amp_max)``,
    ``phi_j ~ U(0, 2 pi)``, ``l_j`` uniform on ``{l_min, ..., l_max}``. The domain length and horizon are
    ``L = length * U(1 - jitter, 1 + jitter)`` and likewise for ``t_end``. The full time grid has
    ``nt_total`` points on [0, t_end]; the last ``nt`` are stored (LPSDA convention). The solution is
    stored at every ``solver_nx / nx``-th solver grid point.

    Args:
        nx: stored grid points.
        nt: stored frames.
        nt_total: frames of the full grid on [0, t_end] (>= nt); earlier ones are a discarded transient.
        length: nominal domain length L0.
        length_jitter: relative half-width of the uniform jitter of L.
        t_end: nominal horizon T0.
        t_end_jitter: relative half-width of the uniform jitter of T.
        n_modes: number J of sines in the initial condition.
        amp_min, amp_max: amplitude range.
        l_min, l_max: inclusive integer wavenumber range.
        solver_nx: solver grid points (a multiple of ``nx``).
        dt_max: largest internal time step; the step is ``dt_store / ceil(dt_store_max / dt_max)``.
        max_spectral_tail: a trajectory whose spectral tail exceeds this is under-resolved.
        max_abs_limit: a trajectory exceeding this amplitude has blown up.
    """

    solver_description = "ETDRK4 (Kassam-Trefethen contour coefficients), 2/3 dealiasing, float64, stored float32"

    def __init__(
        self,
        nx: int,
        nt: int,
        nt_total: int,
        length: float,
        length_jitter: float,
        t_end: float,
        t_end_jitter: float,
        n_modes: int,
        amp_min: float,
        amp_max: float,
        l_min: int,
        l_max: int,
        solver_nx: int,
        dt_max: float,
        max_spectral_tail: float,
        max_abs_limit: float,
    ) -> None:
        self._init_kwargs = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        for name in ("nx", "nt", "nt_total", "n_modes", "solver_nx"):
            v = locals()[name]
            if not isinstance(v, int) or v <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        for name in ("length", "t_end", "dt_max", "max_spectral_tail", "max_abs_limit"):
            _positive(name, locals()[name])
        if nx % 2:
            raise ConfigError(f"nx must be even, got {nx}")
        if solver_nx % nx:
            raise ConfigError(f"solver_nx={solver_nx} must be a multiple of nx={nx}")
        if nt_total < nt:
            raise ConfigError(f"nt_total={nt_total} must be >= nt={nt}")
        if not 0 <= length_jitter < 1 or not 0 <= t_end_jitter < 1:
            raise ConfigError(f"jitters must lie in [0, 1), got {length_jitter}, {t_end_jitter}")
        if amp_max < amp_min or l_max < l_min or l_min < 0:
            raise ConfigError(f"bad ranges: amp [{amp_min}, {amp_max}], l [{l_min}, {l_max}]")
        self.nx, self.nt, self.nt_total = nx, nt, nt_total
        self.length, self.length_jitter = float(length), float(length_jitter)
        self.t_end, self.t_end_jitter = float(t_end), float(t_end_jitter)
        self.n_modes, self.amp_min, self.amp_max = n_modes, float(amp_min), float(amp_max)
        self.l_min, self.l_max = l_min, l_max
        self.solver_nx, self.dt_max = solver_nx, float(dt_max)
        self.max_spectral_tail, self.max_abs_limit = float(max_spectral_tail), float(max_abs_limit)

    # ------------------------------------------------------------------ per-PDE hooks
    def sample_extra(self, rng: np.random.Generator) -> dict[str, float]:
        """PDE coefficients drawn before the domain and initial condition (none by default)."""
        return {}

    @abstractmethod
    def linear_operator(self, k: Tensor, extra: dict[str, Tensor]) -> Tensor:
        """Fourier symbol of the linear part: (B, K) complex128 from wavenumbers k (B, K)."""

    def sampling_doc(self) -> dict[str, str]:
        """How each parameter is sampled, stored as the ``sampling`` attribute."""
        j = self.length_jitter
        return {
            "domain_length": f"{self.length} * uniform[{1 - j}, {1 + j}]",
            "t_end": f"{self.t_end} * uniform[{1 - self.t_end_jitter}, {1 + self.t_end_jitter}]",
            "ic_amplitude": f"uniform[{self.amp_min}, {self.amp_max}] x {self.n_modes}",
            "ic_phase": f"uniform[0, 2 pi] x {self.n_modes}",
            "ic_wavenumber": f"integers {self.l_min}..{self.l_max} x {self.n_modes}",
        }

    def diagnostics_doc(self) -> dict[str, str]:
        return {
            "spectral_tail": (
                "max over stored frames of the energy fraction (mean excluded) in the top third of the "
                "retained (2/3-rule) modes of the solver grid"
            ),
            "max_abs": "max |u| over stored frames",
        }

    # ------------------------------------------------------------------ sampling
    def sample_params(self, seeds: np.ndarray) -> dict[str, np.ndarray]:
        """Draw every parameter of each trajectory from its own seed.

        Args:
            seeds: (B,) int64.

        Returns:
            name -> (B,) or (B, n_modes) float64, in ``spec.param_names``.
        """
        rows = []
        for s in seeds:
            rng = np.random.default_rng(int(s))
            row: dict[str, np.ndarray | float] = dict(self.sample_extra(rng))
            row["domain_length"] = self.length * rng.uniform(1 - self.length_jitter, 1 + self.length_jitter)
            row["t_end"] = self.t_end * rng.uniform(1 - self.t_end_jitter, 1 + self.t_end_jitter)
            row["ic_amplitude"] = rng.uniform(self.amp_min, self.amp_max, self.n_modes)
            row["ic_phase"] = rng.uniform(0.0, 2 * np.pi, self.n_modes)
            row["ic_wavenumber"] = rng.integers(self.l_min, self.l_max + 1, self.n_modes).astype(np.float64)
            rows.append(row)
        return {name: np.stack([np.asarray(r[name], dtype=np.float64) for r in rows]) for name in rows[0]}

    def stored_times(self, params: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Stored frame times (B, nt) float64 and the interval between them (B,)."""
        dt = params["t_end"] / max(self.nt_total - 1, 1)
        k = np.arange(self.nt_total - self.nt, self.nt_total)
        return dt[:, None] * k[None, :], dt

    # ------------------------------------------------------------------ solve
    def substeps(self, dt_store: np.ndarray) -> int:
        """Internal steps per stored interval for a batch."""
        return max(1, math.ceil(float(np.max(dt_store)) / self.dt_max - 1e-9))

    def total_steps(self, seeds: np.ndarray) -> int:
        return self.substeps(self.stored_times(self.sample_params(seeds[:1]))[1]) * (self.nt_total - 1)

    def solve(
        self,
        params: dict[str, np.ndarray],
        device: torch.device | str = "cpu",
        progress: Callable[[int], None] | None = None,
        substeps: int | None = None,
    ) -> tuple[SpectralSolution, Tensor]:
        """Solve trajectories with the given parameters on the solver grid, in float64.

        Args:
            params: as returned by :meth:`sample_params`.
            device: torch device for the solve.
            progress: forwarded to the time stepper (internal steps done).
            substeps: internal steps per stored interval (default: from ``dt_max``).

        Returns:
            The :class:`~data_gen.spectral.SpectralSolution` (u: (B, nt, solver_nx)) and the solver
            grids (B, solver_nx) float64.
        """
        _, dt_store = self.stored_times(params)
        f64 = dict(dtype=torch.float64, device=torch.device(device))
        length = torch.as_tensor(params["domain_length"], **f64)
        xs = torch.arange(self.solver_nx, **f64)[None, :] * length[:, None] / self.solver_nx
        u0 = self.initial_condition(xs, params)
        extra = {k: torch.as_tensor(params[k], **f64) for k in self.sample_extra(np.random.default_rng(0))}
        sol = solve_periodic_1d(
            u0,
            length,
            lambda k: self.linear_operator(k, extra),
            torch.as_tensor(dt_store, **f64),
            n_warmup=self.nt_total - self.nt,
            n_store=self.nt,
            substeps=substeps or self.substeps(dt_store),
            progress=progress,
        )
        return sol, xs

    def generate(
        self,
        seeds: np.ndarray,
        device: torch.device | str = "cpu",
        progress: Callable[[int], None] | None = None,
    ) -> GeneratedBatch:
        """Sample parameters from ``seeds`` and solve all trajectories in one batch.

        Args:
            seeds: (B,) int64 per-trajectory seeds.
            device: torch device for the solve (float64 throughout).
            progress: forwarded to the time stepper (internal steps done).

        Returns:
            A :class:`GeneratedBatch`; ``ok`` flags trajectories that are finite, bounded by
            ``max_abs_limit`` and resolved (spectral tail <= ``max_spectral_tail``).
        """
        params = self.sample_params(seeds)
        t, _ = self.stored_times(params)
        sol, xs = self.solve(params, device, progress)
        stride = self.solver_nx // self.nx
        u = sol.u[:, :, None, ::stride].to(torch.float32).cpu().numpy()
        tail = sol.spectral_tail.cpu().numpy()
        max_abs = sol.max_abs.cpu().numpy()
        finite = sol.finite.cpu().numpy()
        reasons = []
        for b in range(len(seeds)):
            if not finite[b]:
                reasons.append("non-finite values (blow-up)")
            elif max_abs[b] > self.max_abs_limit:
                reasons.append(f"max |u| = {max_abs[b]:.3g} > max_abs_limit = {self.max_abs_limit:g}")
            elif tail[b] > self.max_spectral_tail:
                reasons.append(
                    f"under-resolved: spectral tail {tail[b]:.3g} > max_spectral_tail {self.max_spectral_tail:g}"
                )
            else:
                reasons.append("")
        diagnostics = {"spectral_tail": tail.astype(np.float32), "max_abs": max_abs.astype(np.float32)}
        return GeneratedBatch(
            u=u,
            t=t,
            x=xs[:, ::stride].cpu().numpy(),
            params=params,
            diagnostics=diagnostics,
            ok=np.array([r == "" for r in reasons]),
            reasons=reasons,
        )

    def initial_condition(self, x: Tensor, params: dict[str, np.ndarray]) -> Tensor:
        """Sum of sines on grids x (B, X) float64 -> (B, X) float64."""
        dev = x.device
        amp = torch.as_tensor(params["ic_amplitude"], dtype=torch.float64, device=dev)
        phase = torch.as_tensor(params["ic_phase"], dtype=torch.float64, device=dev)
        ell = torch.as_tensor(params["ic_wavenumber"], dtype=torch.float64, device=dev)
        length = torch.as_tensor(params["domain_length"], dtype=torch.float64, device=dev)
        arg = 2 * math.pi * ell[:, :, None] * x[:, None, :] / length[:, None, None] + phase[:, :, None]
        return (amp[:, :, None] * torch.sin(arg)).sum(dim=1)
