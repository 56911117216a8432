"""Transfer evaluations: the parameter extrapolated beyond the labelled range, the grid changed at test time.

Two options of ``ssl-pde-eval`` (``transfer`` in ``configs/eval.yaml``, typed by :class:`Transfer`;
``docs/evaluation.md``, "Transfer"), both off by default, for every method alike (SSL and supervised):

- ``extrapolate`` = q in (0, 1): the threshold is the q-quantile of the target over the *train* split (numpy's
  default, linear interpolation between order statistics), computed from train alone. The labelled sets are drawn
  from the train trajectories whose target is at or below it, and the valid split keeps only such trajectories
  too (every choice is made in range); the test split keeps only the trajectories above it (the extrapolation
  region). Predictions are clamped to a widened range (:func:`clamp_margin`), else no method could ever predict
  beyond the labelled range.
- ``resolution`` = a factor r > 0: the test split's periodic x grid of X points is replaced by one of ``r X``
  points over the same period (:func:`fourier_resample`: exact trigonometric resampling; truncation of the modes
  above the new Nyquist frequency when coarsening, zero-padding when refining), ``x`` recomputed on the new grid
  from the same origin, ``length`` (the period) unchanged. The labelled train and the valid split stay on the
  stored grid: every method is fitted and chosen at the native resolution and tested at another. 1D periodic data
  only: the 2D Navier-Stokes box has walls, where a Fourier series is not exact and no resampling is assumed.

Arrays are laid out as :class:`ssl_pde.eval.data.Split`'s: ``u`` (N, T, C, X), ``x`` (N, X), ``length`` (N,).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ssl_pde.core.errors import UserError
from ssl_pde.eval.data import Split

Tensor = torch.Tensor


@dataclass
class Transfer:
    """The transfer settings (``transfer`` in ``configs/eval.yaml``); None switches a setting off.

    Attributes:
        extrapolate: q in (0, 1): labels and valid at or below the train split's q-quantile of the target, the
            test split above it.
        resolution: factor > 0 of the test split's number of grid points (1D periodic data only).

    Raises:
        UserError: a value outside its range or not a number (one line naming the value).
    """

    extrapolate: float | None = None
    resolution: float | None = None

    def __post_init__(self) -> None:
        for name in ("extrapolate", "resolution"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise UserError(f"transfer.{name}={v!r}: must be a finite number or null")
            setattr(self, name, float(v))
        if self.extrapolate is not None and not 0 < self.extrapolate < 1:
            raise UserError(
                f"transfer.extrapolate={self.extrapolate!r}: the quantile of the labelled range must lie in (0, 1)"
            )
        if self.resolution is not None and self.resolution <= 0:
            raise UserError(f"transfer.resolution={self.resolution!r}: the grid factor must be > 0")

    @property
    def is_plain(self) -> bool:
        """True when neither setting is on (the evaluation is the usual one)."""
        return self.extrapolate is None and self.resolution is None

    @property
    def clamp_margin(self) -> float:
        """The prediction clamp's widening (:func:`clamp_margin` of ``extrapolate``; 0 without it: the clamp is
        the labelled range, as in every plain evaluation)."""
        return 0.0 if self.extrapolate is None else clamp_margin(self.extrapolate)

    def words(self) -> str:
        """The settings in words, e.g. ``transfer extrapolate=0.7 resolution=2`` (titles, messages)."""
        on = [f"{k}={getattr(self, k):g}" for k in ("extrapolate", "resolution") if getattr(self, k) is not None]
        return f"transfer {' '.join(on)}" if on else "no transfer"

    def test_points(self, nx: int, n_spatial_dims: int, periodic: bool) -> int:
        """The test split's number of grid points under ``resolution`` (``nx`` without it).

        Args:
            nx: stored points along x.
            n_spatial_dims: the data's spatial dimensions.
            periodic: x is periodic.

        Raises:
            UserError: 2D or non-periodic data, or ``resolution * nx`` not a whole number of at least 2 points.
        """
        r = self.resolution
        if r is None:
            return nx
        if n_spatial_dims != 1:
            raise UserError(
                f"transfer.resolution={r:g}: grid changes are implemented for 1D periodic data only, these data are "
                f"{n_spatial_dims}D (a box with walls has no exact Fourier resampling)"
            )
        if not periodic:
            raise UserError(
                f"transfer.resolution={r:g}: grid changes need a periodic x (exact Fourier resampling); x of these "
                "data is not periodic"
            )
        n = round(r * nx)
        if abs(r * nx - n) > 1e-9 * nx or n < 2:
            raise UserError(
                f"transfer.resolution={r:g}: {r:g} x {nx} stored points is not a whole number of at least 2 points"
            )
        return n


def clamp_margin(q: float) -> float:
    """The widening of the prediction clamp under ``extrapolate=q``, in units of the labelled range's width in
    target space: ``max(1, (1 - q) / q)``.

    Every regression method clamps its predictions to the labelled targets' range (log space for scale
    parameters); under extrapolation that would forbid any prediction in the test region. The clamp becomes
    ``[lo - m (hi - lo), hi + m (hi - lo)]``, from the labelled targets alone: one labelled width beyond each end,
    or more for q < 0.5, so that for a target spread uniformly (in target space) the whole test region, about
    ``(1 - q) / q`` labelled widths beyond ``hi``, lies inside it. It still bounds a wild extrapolation (a ridge
    on features of inputs unlike any labelled one; ``exp`` of a log-space prediction)."""
    return max(1.0, (1.0 - q) / q)


def extrapolation_threshold(train_y: Tensor, q: float) -> float:
    """The q-quantile of the train split's targets (``numpy.quantile``, linear interpolation): the upper end of
    the labelled range. ``train_y``: (N,) one scalar target per trajectory."""
    if train_y.dim() != 1:
        raise UserError(
            f"transfer.extrapolate: the target must be one scalar parameter per trajectory, got shape "
            f"{tuple(train_y.shape)}"
        )
    y = train_y.double().numpy()
    if not np.isfinite(y).all():
        raise UserError("transfer.extrapolate: the train split's target has non-finite values")
    return float(np.quantile(y, q))


def restrict_for_extrapolation(
    splits: dict[str, Split], q: float, param: str = "target"
) -> tuple[dict[str, Split], dict[str, Any]]:
    """Restrict ``train`` and ``valid`` to targets at or below the train split's q-quantile and ``test`` to targets
    above it (other splits unchanged; order kept within each split).

    Args:
        splits: at least ``train``, ``valid`` and ``test``; each target (N,).
        q: the quantile, in (0, 1).
        param: the target's name (records and messages).

    Returns:
        The restricted splits, and the record: ``q``, ``param``, ``threshold`` (from train only), the trajectories
        kept per split (``n``) out of those stored (``n_stored``), and the prediction clamp's ``clamp_margin``.

    Raises:
        UserError: a missing split, a target that is not one scalar per trajectory, or a restricted split of
            fewer than 2 trajectories.
    """
    missing = [s for s in ("train", "valid", "test") if s not in splits]
    if missing:
        raise UserError(f"transfer.extrapolate needs the splits train, valid and test ({missing[0]} not read)")
    for name in ("valid", "test"):
        if splits[name].y.dim() != 1:
            raise UserError(
                f"transfer.extrapolate: the target must be one scalar parameter per trajectory, {name} has "
                f"shape {tuple(splits[name].y.shape)}"
            )
    thr = extrapolation_threshold(splits["train"].y, q)
    keep = {
        "train": splits["train"].y <= thr,
        "valid": splits["valid"].y <= thr,
        "test": splits["test"].y > thr,
    }
    out = dict(splits)
    for name, mask in keep.items():
        if int(mask.sum()) < 2:  # a valid or test score needs a spread of targets
            side = "above" if name == "test" else "at or below"
            raise UserError(
                f"transfer.extrapolate={q:g}: {int(mask.sum())} {name} trajectories have {param} {side} the "
                f"threshold {thr:.6g} (the train split's quantile), at least 2 are needed; choose another quantile "
                "or more data"
            )
        out[name] = splits[name].subset(torch.nonzero(mask).squeeze(1))
    record = {
        "q": q,
        "param": param,
        "threshold": thr,
        "threshold_from": "train",
        "labelled_range": f"{param} <= threshold (train, valid)",
        "test_range": f"{param} > threshold",
        "n": {s: len(out[s]) for s in keep},
        "n_stored": {s: len(splits[s]) for s in keep},
        "clamp_margin": clamp_margin(q),
    }
    return out, record


def fourier_resample(u: Tensor, n: int, dim: int = -1) -> Tensor:
    """Samples of a periodic function on a uniform grid of ``m`` points resampled onto ``n`` points over the same
    period and from the same origin: the trigonometric interpolant of the samples, truncated to the modes the new
    grid holds, sampled at the new points.

    Refining (n > m) zero-pads the spectrum: the new values are the trigonometric interpolant itself, exact for any
    input, and a coarsening back to ``m`` returns the input. Coarsening (n < m) drops the modes at and above the new
    grid's Nyquist frequency except the cosine part of that mode itself (a low-pass, not a subsampling, which would
    alias them): exact for a function whose modes all lie below ``n / 2``. The Nyquist mode of an even grid carries
    weight 1 in the interpolant (as in :func:`ssl_pde.augment.views.interpolate`), every other nonzero mode weight
    2, and the coefficients are rescaled accordingly.

    Args:
        u: real samples, the periodic axis ``dim`` of length ``m``.
        n: points of the new grid (>= 1).
        dim: the periodic axis.

    Returns:
        ``u``'s shape with ``n`` points along ``dim``, ``u``'s dtype (computed in float64); ``u`` itself when
        ``n == m``.
    """
    dim = dim % u.dim()
    m = u.shape[dim]
    if n == m:
        return u
    if n < 1:
        raise ValueError(f"fourier_resample: n={n} must be >= 1")
    c = torch.fft.rfft(u.double(), dim=dim) / m  # (..., m // 2 + 1, ...) normalised coefficients
    k = min(m // 2, n // 2) + 1  # the modes both grids hold
    c = c.narrow(dim, 0, k)

    def weights(size: int) -> Tensor:  # weight of mode j in the interpolant of a grid of `size` points
        w = torch.full((k,), 2.0, dtype=torch.float64, device=u.device)
        w[0] = 1.0
        if size % 2 == 0 and size // 2 < k:
            w[size // 2] = 1.0
        return w

    shape = [1] * u.dim()
    shape[dim] = k
    c = c * (weights(m) / weights(n)).reshape(shape)
    if n % 2 == 0 and n // 2 < k:  # the new Nyquist mode: only its cosine part exists on the new grid
        nyq = c.narrow(dim, n // 2, 1)
        nyq.copy_(nyq.real.to(nyq.dtype))
    return torch.fft.irfft(c * n, n=n, dim=dim).to(u.dtype)


def resample_split(s: Split, n: int) -> Split:
    """A 1D periodic split on ``n`` grid points instead of its ``X``: ``u`` (N, T, C, X) -> (N, T, C, n) by
    :func:`fourier_resample` along x; ``x`` (N, n) = ``x[:, :1] + j length / n`` (same origin, same period);
    ``length`` (N,), times and parameters unchanged."""
    d = s.data
    nx = d["u"].shape[-1]
    length = d["length"].double() if "length" in d else nx * (d["x"][:, 1] - d["x"][:, 0]).double()
    x = d["x"][:, :1].double() + torch.arange(n, dtype=torch.float64) * (length / n)[:, None]
    u = fourier_resample(d["u"], n, dim=-1)
    return Split({**d, "u": u, "x": x.to(d["x"].dtype)}, s.y, dict(s.params))


def apply_transfer(
    splits: dict[str, Split],
    t: Transfer,
    param: str,
    n_spatial_dims: int,
    periodic: bool,
    check_crop: Callable[[tuple[int, ...]], None] | None = None,
) -> tuple[dict[str, Split], dict[str, Any] | None]:
    """The splits an evaluation under ``t`` reads, and the ``transfer`` record of ``results.json`` (None when
    ``t`` is plain): the extrapolation restriction (:func:`restrict_for_extrapolation`), then the test split's new
    grid (:func:`resample_split`).

    Args:
        splits: ``train``, ``valid``, ``test`` as loaded (and corrupted, if so).
        t: the settings.
        param: the target's name.
        n_spatial_dims, periodic: the data's dimensions and whether x is periodic (``resolution``).
        check_crop: called with the test split's new item shape (T, C, n) to refuse an evaluation crop larger
            than the new grid (the views' ``check_data``); None: not checked.
    """
    if t.is_plain:
        return splits, None
    record: dict[str, Any] = {"extrapolate": None, "resolution": None}
    out = dict(splits)
    if t.extrapolate is not None:
        out, record["extrapolate"] = restrict_for_extrapolation(out, t.extrapolate, param)
    if t.resolution is not None:
        if "test" not in out:
            raise UserError("transfer.resolution changes the test split's grid: the test split is not read")
        nx = out["test"].data["u"].shape[-1]
        n = t.test_points(nx, n_spatial_dims, periodic)
        if check_crop is not None:
            shape = (*out["test"].data["u"].shape[1:3], n)
            try:
                check_crop(shape)
            except UserError as e:
                raise UserError(f"transfer.resolution={t.resolution:g} ({nx} -> {n} points): {e}") from None
        out["test"] = resample_split(out["test"], n)
        record["resolution"] = {
            "factor": t.resolution,
            "splits": ["test"],
            "nx": {"stored": nx, "test": n},
            "method": "trigonometric (Fourier) resampling of periodic x: truncation when coarsening, zero-padding "
            "when refining; x from the same origin, length unchanged",
        }
    return out, record
