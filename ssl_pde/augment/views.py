"""Two symmetry views of each trajectory of a batch, built on the batch's device, seeded.

Each view, independently: a random space-time crop (crop first, then transform the crop: the group
acts pointwise, so only the cropped points are transformed), a group element sampled with
``eps_i ~ U(-s_i, s_i)`` per generator and sample, composed by :func:`~ssl_pde.augment.lie.apply_group_element`.

Modes (``mode``):

- ``coords`` (the paper's form): no resampling. Output (B, 3, ct, cx): channels ``(t', x', u')``, the
  transformed coordinates of every crop point and the transformed field. With ``relative_coords`` the
  coordinate channels are measured from the transformed crop origin (so they stay O(crop size)).
- ``resample``: the transformed solution on a regular grid with the data's spacing, starting at the image
  of the crop origin. Output (B, 1, ct, cx): channel ``u~``. Values come from the pre-images of the grid
  points, read off the full trajectory by exact Fourier interpolation in periodic x and Lagrange
  interpolation (degree ``time_degree``) in t. Only generators that keep a periodic solution periodic
  (translations, Galilean boosts, scalings) can be used, since x must stay periodic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from ssl_pde.augment.base import SymmetryViews
from ssl_pde.augment.lie import apply_group_element, invert_coordinates
from ssl_pde.core.errors import UserError
from ssl_pde.pdes import PDES

Tensor = torch.Tensor
MODES = ("coords", "resample")


class LieViews(SymmetryViews):
    """Configured view builder (``configs/augment/<pde>.yaml``).

    Args:
        pde: registry name; its ``symmetries`` are the available generators.
        strengths: generator name -> maximal |eps| (0 switches it off); names must exist for the PDE.
        mode: ``"coords"`` or ``"resample"``.
        crop_t, crop_x: crop size in frames and points.
        order, steps: splitting order and steps of the composition.
        relative_coords: ``coords`` mode: coordinate channels relative to the transformed crop origin.
        time_degree: ``resample`` mode: Lagrange degree of the time interpolation.
    """

    def __init__(
        self,
        pde: str,
        strengths: Mapping[str, float],
        mode: str = "coords",
        crop_t: int = 32,
        crop_x: int = 128,
        order: int = 2,
        steps: int = 1,
        relative_coords: bool = True,
        time_degree: int = 5,
    ) -> None:
        self._keep_config(
            pde=pde,
            strengths=dict(strengths),
            mode=mode,
            crop_t=crop_t,
            crop_x=crop_x,
            order=order,
            steps=steps,
            relative_coords=relative_coords,
            time_degree=time_degree,
        )
        if mode not in MODES:
            raise UserError(f"unknown view mode {mode!r} (choose from: {', '.join(MODES)})")
        self._set_generators(pde, strengths)
        if mode == "resample":
            bad = [n for n in self.names if "whole line" in PDES[pde].symmetries[n].boundary]
            if bad:
                raise UserError(f"resample mode needs periodic-preserving generators; {bad} are whole-line only")
        self.mode, self.crop_t, self.crop_x = mode, crop_t, crop_x
        self.order, self.steps = order, steps
        self.relative_coords, self.time_degree = relative_coords, time_degree

    @staticmethod
    def view_channels(mode: str, crop_t: int | None = None) -> int:
        """Channels of a view: 3 (t', x', u') in ``coords`` mode, 1 (u~) in ``resample`` mode."""
        if mode not in MODES:
            raise UserError(f"unknown view mode {mode!r} (choose from: {', '.join(MODES)})")
        return 3 if mode == "coords" else 1

    @property
    def channels(self) -> int:
        """Channels of a view (see :meth:`view_channels`)."""
        return self.view_channels(self.mode)

    @staticmethod
    def inputs(batch: Mapping[str, Any]) -> tuple[Tensor, ...]:
        """The positional view arguments from a data-module batch: ``(u, t, x, length)``, u the first field."""
        return batch["u"][:, :, 0], batch["t"], batch["x"], batch["length"]

    def check_data(self, item_shape: tuple[int, ...]) -> None:
        """Refuse crops larger than the data before any work; ``item_shape``: one trajectory's (T, C, X)."""
        nt, nx = item_shape[0], item_shape[-1]
        if self.crop_t > nt or self.crop_x > nx:
            raise UserError(f"crop ({self.crop_t}, {self.crop_x}) larger than the data ({nt}, {nx})")

    def _crop_starts(self, b: int, nt: int, nx: int, generator: torch.Generator, device) -> tuple[Tensor, Tensor]:
        if self.crop_t > nt or self.crop_x > nx:
            raise UserError(f"crop ({self.crop_t}, {self.crop_x}) larger than the data ({nt}, {nx})")
        gd = generator.device
        t0 = torch.randint(0, nt - self.crop_t + 1, (b,), generator=generator, device=gd).to(device)
        x0 = torch.randint(0, nx, (b,), generator=generator, device=gd).to(device)  # periodic: wraps around
        return t0, x0

    def view(self, u: Tensor, t: Tensor, x: Tensor, length: Tensor, generator: torch.Generator, **params) -> Tensor:
        """One view of every trajectory.

        Args:
            u: (B, T, X) field (one channel).
            t: (B, T) frame times; x: (B, X) grid (uniform, periodic with period ``length``).
            length: (B,) domain length.
            generator: torch RNG driving crops and group parameters.
            params: PDE parameters, (B,) each, for generators that need them.

        Returns:
            (B, C, crop_t, crop_x) float32; C = :attr:`channels`.
        """
        b, nt, nx = u.shape
        dev = u.device
        f64 = torch.float64
        t0, x0 = self._crop_starts(b, nt, nx, generator, dev)
        eps = self.sample_eps(b, generator, dev)
        p = {k: v.to(dev, f64).reshape(b, 1, 1) for k, v in params.items()}
        ti = t0[:, None] + torch.arange(self.crop_t, device=dev)  # (B, ct)
        xi = x0[:, None] + torch.arange(self.crop_x, device=dev)  # (B, cx), may exceed nx: wraps
        tc = torch.gather(t.to(f64), 1, ti)  # (B, ct)
        dx = (length.to(dev, f64) / nx)[:, None]
        xc = x.to(f64)[:, :1] + xi.to(f64) * dx  # unwrapped coordinates (B, cx)
        if self.mode == "coords":
            uc = u[torch.arange(b, device=dev)[:, None, None], ti[:, :, None], (xi % nx)[:, None, :]].to(f64)
            tt, xx = torch.broadcast_tensors(tc[:, :, None], xc[:, None, :])
            tp, xp, up = apply_group_element(self.symmetries, eps, tt, xx, uc, self.order, steps=self.steps, **p)
            if self.relative_coords:
                tp = tp - tp[:, :1, :1]
                xp = xp - xp[:, :1, :1]
            return torch.stack([tp, xp, up], dim=1).float()
        # resample: regular grid at the image of the crop origin, with the data's spacing.
        o_t, o_x, _ = apply_group_element(
            self.symmetries,
            eps,
            tc[:, :1, None],
            xc[:, None, :1],
            torch.zeros(b, 1, 1, dtype=f64, device=dev),
            self.order,
            steps=self.steps,
            **p,
        )
        dt = (t[:, 1] - t[:, 0]).to(f64)[:, None, None]
        tg = o_t + dt * torch.arange(self.crop_t, device=dev, dtype=f64)[None, :, None]
        xg = o_x + dx[:, :, None] * torch.arange(self.crop_x, device=dev, dtype=f64)[None, None, :]
        # Keep every pre-image time inside the stored range: the time maps are increasing functions of t
        # alone, so slide the grid down in t' when its last row would read past the last frame.
        t_last, _, _ = apply_group_element(
            self.symmetries,
            eps,
            t[:, -1:, None].to(f64),
            xc[:, None, :1],
            torch.zeros(b, 1, 1, dtype=f64, device=dev),
            self.order,
            steps=self.steps,
            **p,
        )
        tg = tg - (tg[:, -1:, :1] - t_last).clamp(min=0)
        tg, xg = torch.broadcast_tensors(tg, xg)
        tpre, xpre = invert_coordinates(self.symmetries, eps, tg, xg, self.order, self.steps, **p)
        if bool((tpre[:, 0, 0] < t[:, 0].to(f64) - 1e-9 * dt[:, 0, 0]).any()):
            raise UserError(
                f"crop_t={self.crop_t} is too long for the time scalings sampled: pre-images leave the data"
            )
        upre = interpolate(
            u.to(f64), t.to(f64), length.to(dev, f64), x.to(f64)[:, 0], tpre, xpre, degree=self.time_degree
        )
        _, _, up = apply_group_element(self.symmetries, eps, tpre, xpre, upre, self.order, steps=self.steps, **p)
        return up[:, None].float()

    def eval_view(
        self, u: Tensor, t: Tensor, x: Tensor, length: Tensor, origin: tuple[int, int] | None = None
    ) -> Tensor:
        """Deterministic evaluation input: the central time window, x from the grid origin, no transform
        (``origin``: the crop's first frame and point instead).

        Same layout and channels as :meth:`view` (coordinates relative to the crop origin in ``coords``).
        """
        _, nt, nx = u.shape
        if self.crop_t > nt or self.crop_x > nx:
            raise UserError(f"crop ({self.crop_t}, {self.crop_x}) larger than the data ({nt}, {nx})")
        t0, x0 = ((nt - self.crop_t) // 2, 0) if origin is None else origin
        u, t, x = u[:, :, x0:], t, x[:, x0:]
        uc = u[:, t0 : t0 + self.crop_t, : self.crop_x]
        if self.mode == "resample":
            return uc[:, None].float()
        tc = t[:, t0 : t0 + self.crop_t].double()
        xc = x[:, : self.crop_x].double()
        tt = (tc - tc[:, :1])[:, :, None].expand(-1, -1, self.crop_x)
        xx = (xc - xc[:, :1])[:, None, :].expand(-1, self.crop_t, -1)
        if not self.relative_coords:
            tt, xx = tt + tc[:, :1, None], xx + xc[:, None, :1]
        return torch.stack([tt, xx, uc.double()], dim=1).float()

    def eval_views(self, u: Tensor, t: Tensor, x: Tensor, length: Tensor) -> list[Tensor]:
        """The evaluation crops of :attr:`eval_grid` (``(n_t, n_x)``), each (B, C, crop_t, crop_x): with one crop
        per axis :meth:`eval_view`'s, else origins spread evenly over the trajectory (:func:`crop_origins`), every
        crop inside the grid (none wraps around the period)."""
        _, nt, nx = u.shape
        origins = crop_origins(nt, nx, self.crop_t, self.crop_x, self.eval_grid)
        return [self.eval_view(u, t, x, length, o) for o in origins]

    def two_views(self, u: Tensor, t: Tensor, x: Tensor, length: Tensor, generator: torch.Generator, **params):
        """Two independent views ``(v1, v2)``, each (B, C, crop_t, crop_x)."""
        return (self.view(u, t, x, length, generator, **params), self.view(u, t, x, length, generator, **params))


def crop_origins(nt: int, nx: int, crop_t: int, crop_x: int, grid: tuple[int, int]) -> list[tuple[int, int]]:
    """Origins (first frame, first point) of the ``grid = (n_t, n_x)`` evaluation crops of a (nt, nx) trajectory:
    per axis one crop sits where :meth:`LieViews.eval_view` puts it (central in time, at x = 0), several are spread
    evenly from the first possible origin to the last (``round(i (n - crop) / (k - 1))``), so together they cover
    the trajectory; an axis asks for at most as many crops as it has distinct origins."""
    n_t, n_x = (int(k) for k in grid)
    for k, n, c, axis in ((n_t, nt, crop_t, "time"), (n_x, nx, crop_x, "space")):
        if not 1 <= k <= n - c + 1:
            raise UserError(f"eval_crops={[n_t, n_x]}: {k} crops of {c} in {axis} need 1 to {n - c + 1} ({n} points)")

    def spread(k: int, n: int, c: int, single: int) -> list[int]:
        return [single] if k == 1 else [round(i * (n - c) / (k - 1)) for i in range(k)]

    return [(a, b) for a in spread(n_t, nt, crop_t, (nt - crop_t) // 2) for b in spread(n_x, nx, crop_x, 0)]


def interpolate(
    u: Tensor, t: Tensor, length: Tensor, x_origin: Tensor, tq: Tensor, xq: Tensor, *, degree: int
) -> Tensor:
    """Evaluate stored trajectories at arbitrary points.

    Exact trigonometric interpolation in periodic x; Lagrange interpolation of degree ``degree`` over the
    nearest frames in t (clamped to the stored range; the pre-image times depend on t' only for the 1D
    groups, so each output row needs one set of weights).

    Args:
        u: (B, T, X) float64 on ``x_origin + j L / X``; t: (B, T) uniform frame times; length: (B,).
        tq, xq: (B, R, C) query points; ``tq`` constant along the last axis.

    Returns:
        (B, R, C) float64.
    """
    b, nt, nx = u.shape
    n = degree + 1
    coef = torch.fft.rfft(u, dim=-1) / nx  # (B, T, K)
    w = torch.full((coef.shape[-1],), 2.0, dtype=torch.float64, device=u.device)
    w[0] = 1.0
    if nx % 2 == 0:
        w[-1] = 1.0
    coef = coef * w
    dt = (t[:, 1] - t[:, 0])[:, None]
    row_t = tq[:, :, 0]  # (B, R)
    s = (row_t - t[:, :1]) / dt
    start = torch.clamp(torch.floor(s).long() - (n // 2 - 1), 0, nt - n)
    idx = start[:, :, None] + torch.arange(n, device=u.device)  # (B, R, n)
    nodes = torch.gather(t[:, None, :].expand(b, idx.shape[1], nt), 2, idx)  # (B, R, n)
    diff = row_t[:, :, None] - nodes
    lw = torch.ones_like(diff)
    for j in range(n):
        for m in range(n):
            if m != j:
                lw[:, :, j] = lw[:, :, j] * diff[:, :, m] / (nodes[:, :, j] - nodes[:, :, m])
    c_rows = (lw[..., None] * coef[torch.arange(b, device=u.device)[:, None, None], idx]).sum(2)  # (B, R, K)
    k = 2 * math.pi * torch.arange(coef.shape[-1], device=u.device, dtype=torch.float64)[None, :] / length[:, None]
    rel = xq - x_origin[:, None, None]  # (B, R, C)
    alpha = rel[:, :, :1]  # (B, R, 1)
    beta = (rel[:, :1, 1:2] - rel[:, :1, :1]) if rel.shape[-1] > 1 else torch.zeros_like(alpha[:, :1])
    steps = torch.arange(rel.shape[-1], device=u.device, dtype=torch.float64)
    if torch.allclose(rel, alpha + beta * steps, rtol=0, atol=1e-9 * float(length.max())):
        # Affine rows with a common slope (translations, boosts, scalings): phase = e^{ik alpha_r} z_k^j,
        # so each row is one batched matrix product with a (B, K, C) table built once.
        table = torch.exp(1j * k[:, :, None] * beta[:, 0, :, None] * steps[None, None, :])  # (B, K, C)
        rows = c_rows * torch.exp(1j * k[:, None, :] * alpha)  # (B, R, K)
        return torch.bmm(rows, table).real
    out = torch.empty_like(xq)
    for r in range(xq.shape[1]):  # general maps: rows one at a time bound memory at (B, C, K)
        phase = torch.exp(1j * k[:, None, :] * rel[:, r, :, None])
        out[:, r] = (c_rows[:, r, None, :] * phase).real.sum(-1)
    return out
