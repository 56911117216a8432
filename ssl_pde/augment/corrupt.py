"""Messy observations: measurement noise, missing sensors, missing frames (pure functions, seeded).

The evaluation corrupts the splits it reads with them (``ssl-pde-eval corrupt.noise=0.05``,
:func:`ssl_pde.eval.setup.load_inputs`), and pretraining may use them as an augmentation of each view
(``method.corrupt``, :class:`ssl_pde.lit.vicreg.JointEmbeddingModule`); both import this module, which sits with
the other augmentations below the evaluation (``docs/architecture.md``, the layer rule).

Arrays are laid out as the data module's batches (:class:`ssl_pde.eval.data.Split`): ``u`` (N, T, C, X) for 1D
data or (N, T, C, X, Y) for 2D, ``t`` (N, T) frame times, ``x`` (N, X) grid points, ``length`` (N,) the period
along x. Three corruptions, each with a level:

- ``noise``: additive Gaussian noise of standard deviation ``level * rms``, ``rms`` each trajectory's
  root-mean-square per channel over time and space (of the clean field).
- ``drop_x``: ``round(level * X)`` spatial points missing (at least 2 kept), one random set per trajectory, the
  same at every frame (a sensor layout); the field seen is the linear interpolation in x from the kept points back
  onto the grid, across the period for periodic data (constant beyond the outermost kept points otherwise). 1D only.
- ``drop_t``: ``round(level * (T - 2))`` interior frames missing per trajectory (the first and last frames are
  kept), filled by linear interpolation in time at the stored times ``t`` (irregular sampling).

:func:`corrupt` applies them in that order: the noise is measured on the clean field and added to every value (the
observations are noisy), then the missing points and frames are refilled from the kept noisy values. The two
refills are linear maps along different axes with masks that do not depend on the field, so their order does not
matter. Each corruption draws from its own generator, seeded from the caller's: switching one on does not change
another's draws. Within one seed the draws are shared across levels: the noise at level ``2a`` is twice the noise
at level ``a``, and the points (frames) missing at a level are among those missing at every higher level (nested
layouts), so a sweep over levels is paired.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ssl_pde.core.errors import UserError

Tensor = torch.Tensor
#: Trajectories corrupted at a time (bounds the temporary memory of a large split). The noise is drawn chunk by
#: chunk: changing it changes the draws of a seed.
CHUNK = 64


@dataclass
class Corruption:
    """Levels of the three corruptions and the seed of their draws (``corrupt`` in ``configs/eval.yaml``).

    Attributes:
        noise: noise standard deviation relative to each trajectory's RMS per channel (>= 0).
        drop_x: fraction of spatial points missing, in [0, 1) (1D data only).
        drop_t: fraction of interior frames missing, in [0, 1).
        seed: seed of the draws (the evaluation derives one per split: :meth:`split_seed`).

    Raises:
        UserError: a level outside its range, or a seed that is not an integer (one line naming the value).
    """

    noise: float = 0.0
    drop_x: float = 0.0
    drop_t: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("noise", "drop_x", "drop_t"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise UserError(f"corrupt.{name}={v!r}: must be a finite number")
            if name == "noise" and v < 0:
                raise UserError(f"corrupt.noise={v!r}: the noise level (std / RMS) must be >= 0")
            if name != "noise" and not 0 <= v < 1:
                raise UserError(f"corrupt.{name}={v!r}: a fraction of missing values must lie in [0, 1)")
            setattr(self, name, float(v))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UserError(f"corrupt.seed={self.seed!r}: must be an integer")

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any] | None, where: str = "corrupt") -> Corruption:
        """From a config mapping (None: clean); an unknown key is refused naming ``where``."""
        d = dict(m or {})
        unknown = sorted(set(d) - {"noise", "drop_x", "drop_t", "seed"})
        if unknown:
            raise UserError(f"{where}: unknown key {unknown[0]!r} (have: noise, drop_x, drop_t, seed)")
        try:
            return cls(**d)
        except UserError as e:  # name the setting where it was given
            raise UserError(f"{where}.{str(e).removeprefix('corrupt.')}") from None

    @property
    def is_clean(self) -> bool:
        """True when every level is 0 (nothing is changed, nothing is drawn)."""
        return self.noise == 0 and self.drop_x == 0 and self.drop_t == 0

    def split_seed(self, name: str) -> int:
        """The seed of split ``name``'s draws: :func:`derived_seed` of :attr:`seed` and the name."""
        return derived_seed(self.seed, name)

    def check_dims(self, n_spatial_dims: int, where: str = "corrupt") -> None:
        """Refuse ``drop_x`` for data that are not 1D (before any data are read); ``where``: the setting's name."""
        if self.drop_x > 0 and n_spatial_dims != 1:
            raise UserError(
                f"{where}.drop_x={self.drop_x}: missing spatial points are implemented for 1D data only, these data "
                f"are {n_spatial_dims}D (use noise and drop_t, or drop_x=0)"
            )

    def record(self) -> dict[str, Any]:
        """The levels and seed as plain data (for results files)."""
        return {"noise": self.noise, "drop_x": self.drop_x, "drop_t": self.drop_t, "seed": self.seed}


def derived_seed(seed: int, name: str) -> int:
    """A seed in [0, 2^63) from ``seed`` and a name (e.g. a split), the same in every process and on every
    machine (the first 8 bytes of the SHA-256 of ``"<seed>/<name>"``)."""
    digest = hashlib.sha256(f"{int(seed)}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _spatial_dims(u: Tensor) -> int:
    if u.dim() not in (4, 5):
        raise ValueError(f"expected u of shape (N, T, C, X) or (N, T, C, X, Y), got {tuple(u.shape)}")
    return u.dim() - 3


def add_noise(u: Tensor, level: float, generator: torch.Generator) -> Tensor:
    """``u + level * rms * z``, z standard normal drawn from ``generator`` (on its device), rms (N, 1, C, 1[, 1])
    each trajectory's root-mean-square per channel over time and space.

    Args:
        u: (N, T, C, X) or (N, T, C, X, Y).
        level: noise standard deviation relative to the RMS (>= 0).
        generator: the draws' generator.

    Returns:
        A new tensor of ``u``'s shape, dtype and device.
    """
    space = tuple(range(3, 3 + _spatial_dims(u)))
    rms = u.double().square().mean(dim=(1, *space), keepdim=True).sqrt()
    z = torch.randn(u.shape, generator=generator, device=generator.device, dtype=torch.float64).to(u.device)
    return (u.double() + level * rms * z).to(u.dtype)


def _n_missing(level: float, n: int) -> int:
    return round(level * n)


def missing_points(n: int, nx: int, level: float, generator: torch.Generator) -> Tensor:
    """(N, X) bool, True where a spatial point is missing: the ``round(level * X)`` points of lowest uniform score
    per trajectory (at most ``X - 2``: two points are always kept)."""
    if nx < 2:
        raise UserError(f"corrupt.drop_x needs at least 2 spatial points, the data have {nx}")
    k = min(_n_missing(level, nx), nx - 2)
    scores = torch.rand(n, nx, generator=generator, device=generator.device, dtype=torch.float64)
    return _lowest(scores, k)


def missing_frames(n: int, nt: int, level: float, generator: torch.Generator) -> Tensor:
    """(N, T) bool, True where a frame is missing: the ``round(level * (T - 2))`` interior frames of lowest uniform
    score per trajectory (the first and last frames are always kept)."""
    if nt < 3:  # no interior frame
        return torch.zeros(n, nt, dtype=torch.bool, device=generator.device)
    scores = torch.rand(n, nt - 2, generator=generator, device=generator.device, dtype=torch.float64)
    edge = torch.zeros(n, 1, dtype=torch.bool, device=scores.device)
    return torch.cat([edge, _lowest(scores, _n_missing(level, nt - 2)), edge], dim=1)


def _lowest(scores: Tensor, k: int) -> Tensor:
    """(N, L) bool: the k lowest scores of each row."""
    out = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    if k > 0:
        out.scatter_(1, scores.argsort(dim=1)[:, :k], True)
    return out


def fill_linear(u: Tensor, pos: Tensor, missing: Tensor, dim: int, period: Tensor | None = None) -> Tensor:
    """Replace the missing entries of ``u`` along ``dim`` by linear interpolation between the nearest kept entries.

    Args:
        u: (N, ...) values; ``dim`` its interpolated axis, of length L.
        pos: (N, L) float64 positions of the entries along ``dim`` (times, or x coordinates), increasing.
        missing: (N, L) bool, True where missing (at least one entry kept per row).
        dim: the axis of ``u`` (> 0) the positions belong to.
        period: (N,) the period of a periodic axis (the interpolation wraps around it); None: not periodic, and
            missing entries before the first (after the last) kept one take its value.

    Returns:
        A new tensor of ``u``'s shape and dtype; kept entries are unchanged (bit for bit).
    """
    missing = missing.to(u.device)
    n, size = missing.shape
    j = torch.arange(size, device=missing.device).expand(n, size)
    kept = ~missing
    left = torch.where(kept, j, -1).cummax(dim=1).values
    right = torch.where(kept, j, size).flip(1).cummin(dim=1).values.flip(1)
    pos = pos.to(missing.device, torch.float64)
    if period is None:  # constant beyond the outermost kept entries
        left, right = torch.where(left < 0, right, left), torch.where(right >= size, left, right)
        pos_l, pos_r = pos.gather(1, left), pos.gather(1, right)
    else:  # wrap: before the first kept entry, the last one a period earlier; after the last, the first one later
        last, first = left[:, -1:], right[:, :1]
        per = period.to(pos.device, torch.float64)[:, None]
        wrap_l, wrap_r = left < 0, right >= size
        left, right = torch.where(wrap_l, last, left), torch.where(wrap_r, first, right)
        pos_l = pos.gather(1, left) - wrap_l * per
        pos_r = pos.gather(1, right) + wrap_r * per
    gap = pos_r - pos_l
    w = torch.where(gap > 0, (pos - pos_l) / torch.where(gap > 0, gap, 1.0), 0.0)  # 0 at kept entries
    v = u.movedim(dim, -1)
    shape = (n,) + (1,) * (v.dim() - 2) + (size,)
    il, ir = left.reshape(shape).expand(v.shape), right.reshape(shape).expand(v.shape)
    vl, vr = v.gather(-1, il), v.gather(-1, ir)
    out = vl.double() + w.reshape(shape) * (vr.double() - vl.double())
    out = torch.where(missing.reshape(shape).to(v.device), out.to(u.dtype), v)
    return out.movedim(-1, dim).contiguous()


def _period(x: Tensor, length: Tensor | None) -> Tensor:
    """(N,) the period along x: ``length``, else X times the grid step of a uniform periodic grid."""
    if length is not None:
        return length.reshape(-1).double()
    return x.shape[1] * (x[:, 1] - x[:, 0]).double()


def drop_x(
    u: Tensor,
    x: Tensor,
    level: float,
    generator: torch.Generator,
    length: Tensor | None = None,
    periodic: bool = True,
) -> Tensor:
    """Missing sensors: :func:`missing_points` per trajectory, refilled by :func:`fill_linear` in x.

    Args:
        u: (N, T, C, X); 2D data (N, T, C, X, Y) are refused.
        x: (N, X) grid points.
        level: fraction of points missing, in [0, 1).
        generator: draws the layouts.
        length: (N,) the period (None: X times the grid step).
        periodic: interpolate across the period (else constant beyond the outermost kept points).

    Returns:
        (N, T, C, X), ``u``'s dtype.
    """
    if _spatial_dims(u) != 1:
        raise UserError(
            f"drop_x={level}: missing spatial points are implemented for 1D data only, u is {tuple(u.shape)}"
        )
    missing = missing_points(u.shape[0], u.shape[-1], level, generator)
    return fill_linear(u, x, missing, dim=3, period=_period(x, length) if periodic else None)


def drop_t(u: Tensor, t: Tensor, level: float, generator: torch.Generator) -> Tensor:
    """Missing frames: :func:`missing_frames` per trajectory, refilled by :func:`fill_linear` in time at the
    stored times.

    Args:
        u: (N, T, C, X) or (N, T, C, X, Y).
        t: (N, T) frame times.
        level: fraction of interior frames missing, in [0, 1).
        generator: draws the frames.

    Returns:
        ``u``'s shape and dtype.
    """
    missing = missing_frames(u.shape[0], u.shape[1], level, generator)
    return fill_linear(u, t, missing, dim=1)


def sub_generators(generator: torch.Generator) -> tuple[torch.Generator, torch.Generator, torch.Generator]:
    """Three generators (noise, missing frames, missing points) on ``generator``'s device, seeded from three
    draws of it."""
    seeds = torch.randint(0, 2**62, (3,), generator=generator, device=generator.device).tolist()
    return tuple(torch.Generator(device=generator.device).manual_seed(int(s)) for s in seeds)  # type: ignore[return-value]


def corrupt(
    u: Tensor,
    t: Tensor,
    x: Tensor,
    c: Corruption,
    generator: torch.Generator,
    length: Tensor | None = None,
    periodic: bool = True,
) -> Tensor:
    """Messy observations of ``u``: noise, then missing frames, then missing points (module docstring).

    Args:
        u: (N, T, C, X) or (N, T, C, X, Y).
        t: (N, T) frame times; x: (N, X) grid points; length: (N,) the period along x (None: from ``x``).
        c: the levels (``c.seed`` is not read: ``generator`` draws everything).
        generator: seeds the three corruptions' own generators (:func:`sub_generators`).
        periodic: x is periodic (``drop_x``).

    Returns:
        A new tensor of ``u``'s shape, dtype and device (``u`` itself when ``c`` is clean: nothing is drawn).
    """
    if c.is_clean:
        return u
    c.check_dims(_spatial_dims(u))
    g_noise, g_t, g_x = sub_generators(generator)
    n = u.shape[0]
    gone_t = missing_frames(n, u.shape[1], c.drop_t, g_t) if c.drop_t > 0 else None
    gone_x = missing_points(n, u.shape[-1], c.drop_x, g_x) if c.drop_x > 0 else None
    period = _period(x, length) if periodic and gone_x is not None else None
    out = torch.empty_like(u)
    for a in range(0, n, CHUNK):
        s = slice(a, a + CHUNK)
        v = u[s]
        if c.noise > 0:
            v = add_noise(v, c.noise, g_noise)
        if gone_t is not None:
            v = fill_linear(v, t[s], gone_t[s], dim=1)
        if gone_x is not None:
            v = fill_linear(v, x[s], gone_x[s], dim=3, period=None if period is None else period[s])
        out[s] = v
    return out
