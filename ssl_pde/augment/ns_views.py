"""Two symmetry views of 2D Navier-Stokes + smoke trajectories, built on the batch's device, seeded.

Each view, independently: a random crop of ``crop_t`` consecutive frames and ``crop_x`` x ``crop_y``
cells lying inside the box (the box is closed, not periodic: crops never wrap), then a group element with
``eps_i ~ U(-s_i, s_i)`` per enabled generator and sample, composed of the exact one-parameter flows of
``PDES["ns2d"].symmetries`` by the Lie-Trotter / Strang / Suzuki sequence of
:func:`~ssl_pde.augment.lie.splitting_sequence` (the same composition as
:func:`~ssl_pde.augment.lie.apply_group_element`, which only takes one field and two coordinates).

``coords`` mode (the paper's form): no resampling; every crop point keeps its array position and carries
its transformed coordinates ``(t', x', y')`` as channels beside the transformed fields
``(smoke, u', v')``. Channel layout of a view with every field (B, 6 * crop_t, crop_x, crop_y), quantity-major:
``[t'(frame 0..ct-1), x'(...), y'(...), smoke(...), vx'(...), vy'(...)]``, i.e. channel ``q * crop_t + k``
is quantity ``q`` at frame ``k`` of the window. ``fields`` selects (and orders) the field quantities, e.g.
``["vx", "vy"]``: (B, 5 * crop_t, crop_x, crop_y), the reference code's input. With ``relative_coords`` the
coordinate channels are measured from the transformed crop origin (so they stay O(crop size); translations
then act only through the crop position).

Pressure is not stored. All nine registered flows act on ``(t, x, y, u, v)`` without reading ``p``
(``p`` only receives its own transformation, e.g. ``p - 2 eps x`` for the quadratic boosts), so each can be
applied with a dummy pressure that is discarded. The smoke is a passive scalar for every flow: invariant.

Which of them are symmetries of the stored system (Boussinesq NS with buoyancy force ``b s y^`` from the
advected smoke ``s``, no-slip walls of a closed box, fluid at rest at t = 0)? Of *pure* NS all nine are
exact; the smoke equation ``s_t + u . grad s = kappa lap s`` is also invariant under all nine with
``s' = s``. The coupling through ``b s y^`` and the box make the rest approximate:

- ``time_translation``: exact (autonomous equations). The random time window is this translation.
- ``x_translation``, ``y_translation``: exact in an unbounded domain, but move the walls: approximate.
- ``boost_x``, ``boost_y`` (Galilean): leave ``b s y^`` unchanged, but the walls move and get velocity
  ``eps`` (breaks no-slip): approximate.
- ``quadratic_boost_x/_y`` (accelerating frames): the uniform fictitious force is absorbed by the
  pressure, so exact in an unbounded domain; the walls move and accelerate: approximate. Their coordinate
  shift ``eps t^2`` is large at the stored times (t up to ~100), hence off by default.
- ``scaling``: maps the data to a solution with buoyancy ``b e^{-3 eps}`` (and a rescaled box): the label
  changes; approximate as an invariance of the buoyancy.
- ``rotation``: turns gravity (and the walls): not a symmetry of the buoyant system; approximate.

Strengths are therefore kept small by default (``configs/augment/ns2d.yaml``); 0 switches a generator off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ssl_pde.augment.base import SymmetryViews
from ssl_pde.augment.lie import splitting_sequence
from ssl_pde.core.errors import UserError
from ssl_pde.pdes import PDES

Tensor = torch.Tensor
MODES = ("coords",)
EVAL_WINDOWS = ("start", "center", "end")
FIELDS = ("smoke", "vx", "vy")  # the stored fields, in the data's order
N_FIELDS = len(FIELDS)
N_COORDS = 3  # t, x, y


def check_fields(fields: Sequence[str] | None) -> tuple[str, ...]:
    """The view's fields as a tuple, validated: a non-empty selection of :data:`FIELDS` without repeats (None:
    all of them)."""
    if fields is None:
        return FIELDS
    if isinstance(fields, str):
        raise UserError(f"fields must be a list of field names, got the string {fields!r} (e.g. [vx, vy])")
    fields = tuple(fields)
    bad = [f for f in fields if f not in FIELDS]
    if not fields or bad or len(set(fields)) != len(fields):
        what = f"unknown field {bad[0]!r}" if bad else f"fields must be distinct and non-empty, got {list(fields)}"
        raise UserError(f"{what} (choose from: {', '.join(FIELDS)})")
    return fields


def eval_window_start(window: str, n_frames: int, crop_t: int) -> int:
    """First frame of the ``crop_t``-frame evaluation window ``window`` (start, center, end) of ``n_frames``."""
    if window not in EVAL_WINDOWS:
        raise UserError(f"unknown eval_window {window!r} (choose from: {', '.join(EVAL_WINDOWS)})")
    return {"start": 0, "center": (n_frames - crop_t) // 2, "end": n_frames - crop_t}[window]


class NSViews(SymmetryViews):
    """Configured 2D view builder (``configs/augment/ns2d.yaml``).

    Args:
        pde: registry name (``ns2d``); its ``symmetries`` are the available generators.
        strengths: generator name -> maximal |eps| (0 switches it off); names must exist for the PDE.
        mode: ``"coords"`` (the only mode: transformed coordinates as channels, no resampling).
        crop_t, crop_x, crop_y: crop size in frames and cells.
        order, steps: splitting order and steps of the composition.
        relative_coords: coordinate channels relative to the transformed crop origin.
        same_window: both views of a trajectory share one crop (time window and position); only their group
            elements differ. Off (the paper's form), the two windows differ, which asks the encoder to be
            invariant to where in time a window lies - not a symmetry of a flow started from rest.
        normalize_coords: divide the coordinate channels by the untransformed crop's extent along each axis
            (``(crop_t - 1) dt``, ``(crop_x - 1) dx``, ``(crop_y - 1) dy``), so that with ``relative_coords`` they
            lie near [0, 1] like the fields, instead of reaching tens of units beside O(1) velocities.
        eval_window: which ``crop_t`` frames the deterministic evaluation input reads: ``"center"`` (the
            middle of the stored window), ``"start"`` (the first frames, where the flow is fastest) or ``"end"``.
            The config's default is ``"start"``; this argument's, ``"center"``, is what encoders exported
            before the option existed were evaluated with, so their exports keep their meaning.
        fields: which stored fields the view carries as channels, in this order (default all three:
            smoke, vx, vy). ``["vx", "vy"]`` is the reference code's NS input (it never loads the smoke): the
            smoke pattern identifies a trajectory at every time, an invariant the encoder can match views by
            without learning anything about the buoyancy.
    """

    def __init__(
        self,
        pde: str = "ns2d",
        strengths: Mapping[str, float] | None = None,
        mode: str = "coords",
        crop_t: int = 16,
        crop_x: int = 128,
        crop_y: int = 128,
        order: int = 2,
        steps: int = 1,
        relative_coords: bool = True,
        same_window: bool = False,
        normalize_coords: bool = False,
        eval_window: str = "center",
        fields: Sequence[str] | None = FIELDS,  # keep all three: exports made before the option carry none
    ) -> None:
        strengths = dict(strengths or {})
        self._keep_config(
            pde=pde,
            strengths=strengths,
            mode=mode,
            crop_t=crop_t,
            crop_x=crop_x,
            crop_y=crop_y,
            order=order,
            steps=steps,
            relative_coords=relative_coords,
            same_window=same_window,
            normalize_coords=normalize_coords,
            eval_window=eval_window,
            fields=fields,
        )
        self.fields = check_fields(fields)
        spec = PDES[pde]
        if spec.n_spatial_dims != 2:
            raise UserError(f"NSViews needs a 2D PDE, {pde} has {spec.n_spatial_dims} spatial dimension(s)")
        if mode not in MODES:
            raise UserError(f"unknown view mode {mode!r} for {pde} (choose from: {', '.join(MODES)})")
        self._set_generators(pde, strengths)
        for name, c in (("crop_t", crop_t), ("crop_x", crop_x), ("crop_y", crop_y)):
            if c < 1:
                raise UserError(f"{name} must be >= 1, got {c}")
        eval_window_start(eval_window, crop_t, crop_t)  # validates eval_window
        splitting_sequence(1, order, steps)  # validates order and steps
        self.mode, self.crop_t, self.crop_x, self.crop_y = mode, crop_t, crop_x, crop_y
        self.order, self.steps, self.relative_coords = order, steps, relative_coords
        self.same_window, self.normalize_coords, self.eval_window = same_window, normalize_coords, eval_window

    @staticmethod
    def view_channels(mode: str, crop_t: int, fields: Sequence[str] | None = None) -> int:
        """Channels of a view: ``crop_t * (3 coordinates + number of fields)`` in ``coords`` mode (fields: all
        three when None)."""
        if mode not in MODES:
            raise UserError(f"unknown view mode {mode!r} (choose from: {', '.join(MODES)})")
        return int(crop_t) * (N_COORDS + len(check_fields(fields)))

    @property
    def channels(self) -> int:
        """Channels of a view (see :meth:`view_channels`)."""
        return self.view_channels(self.mode, self.crop_t, self.fields)

    @staticmethod
    def inputs(batch: Mapping[str, Any]) -> tuple[Tensor, ...]:
        """The positional view arguments from a data-module batch: ``(u, t, x, y)``."""
        return batch["u"], batch["t"], batch["x"], batch["y"]

    def check_data(self, item_shape: tuple[int, ...]) -> None:
        """Refuse crops larger than the data before any work; ``item_shape``: one trajectory's (T, C, X, Y)."""
        nt, nx, ny = item_shape[0], item_shape[-2], item_shape[-1]
        if self.crop_t > nt or self.crop_x > nx or self.crop_y > ny:
            raise UserError(
                f"crop ({self.crop_t}, {self.crop_x}, {self.crop_y}) larger than the data ({nt}, {nx}, {ny})"
            )

    def _check(self, u: Tensor) -> None:
        if u.dim() != 5 or u.shape[2] != N_FIELDS:
            raise ValueError(f"expected u of shape (B, T, {N_FIELDS}, X, Y), got {tuple(u.shape)}")
        _, nt, _, nx, ny = u.shape
        if self.crop_t > nt or self.crop_x > nx or self.crop_y > ny:
            raise UserError(
                f"crop ({self.crop_t}, {self.crop_x}, {self.crop_y}) larger than the data ({nt}, {nx}, {ny})"
            )

    def crop_starts(self, u: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """Random crop origins (B,) each, in frames and cells; every crop lies inside the box."""
        self._check(u)
        b, nt, _, nx, ny = u.shape
        gd = generator.device
        t0 = torch.randint(0, nt - self.crop_t + 1, (b,), generator=generator, device=gd)
        x0 = torch.randint(0, nx - self.crop_x + 1, (b,), generator=generator, device=gd)
        y0 = torch.randint(0, ny - self.crop_y + 1, (b,), generator=generator, device=gd)
        return t0.to(u.device), x0.to(u.device), y0.to(u.device)

    def _crop(self, u: Tensor, t: Tensor, x: Tensor, y: Tensor, starts: tuple[Tensor, Tensor, Tensor]):
        """Cropped fields (3 x (B, ct, cx, cy)) and grids (B, ct, 1, 1), (B, 1, cx, 1), (B, 1, 1, cy), float64;
        ``starts``: the crop origins (t0, x0, y0), (B,) each."""
        t0, x0, y0 = starts
        dev, f64 = u.device, torch.float64
        ti = t0[:, None] + torch.arange(self.crop_t, device=dev)
        xi = x0[:, None] + torch.arange(self.crop_x, device=dev)
        yi = y0[:, None] + torch.arange(self.crop_y, device=dev)
        bi = torch.arange(u.shape[0], device=dev)
        # advanced indices around the field slice: result (B, ct, cx, cy, 3)
        uc = u[bi[:, None, None, None], ti[:, :, None, None], :, xi[:, None, :, None], yi[:, None, None, :]].to(f64)
        tc = torch.gather(t.to(dev, f64), 1, ti)[:, :, None, None]
        xc = torch.gather(x.to(dev, f64), 1, xi)[:, None, :, None]
        yc = torch.gather(y.to(dev, f64), 1, yi)[:, None, None, :]
        return uc.unbind(-1), tc, xc, yc

    def transform(self, eps: Tensor, t: Tensor, x: Tensor, y: Tensor, vx: Tensor, vy: Tensor):
        """Apply the split group element to points: returns ``(t', x', y', vx', vy')`` (smoke is invariant).

        Args:
            eps: (n_generators, B); t, x, y, vx, vy: (B, ...) broadcastable, float64.
        """
        shape = (eps.shape[1],) + (1,) * (max(a.dim() for a in (t, x, y, vx, vy)) - 1)
        p = torch.zeros((), dtype=t.dtype, device=t.device)  # pressure is not stored; no flow reads it
        for i, frac in splitting_sequence(len(self.symmetries), self.order, self.steps):
            e = eps[i].reshape(shape) * frac
            if torch.any(e != 0):
                t, x, y, vx, vy, p = self.symmetries[i](e, t, x, y, vx, vy, p)
        return t, x, y, vx, vy

    def _coord_channels(self, coords: tuple[Tensor, ...], grids: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """Coordinate channels from the (transformed) coordinates ``(t', x', y')`` (B, ct, cx, cy) each: measured
        from the crop origin with ``relative_coords``, divided by the extents of the untransformed crop grids
        ``(tc, xc, yc)`` ((B, ct, 1, 1), (B, 1, cx, 1), (B, 1, 1, cy)) with ``normalize_coords``."""
        if self.relative_coords:
            coords = tuple(c - c[:, :1, :1, :1] for c in coords)
        if self.normalize_coords:
            ext = [g.flatten(1).amax(1) - g.flatten(1).amin(1) for g in grids]  # (B,) each; 0 for a 1-point axis
            ext = [torch.where(e > 0, e, torch.ones_like(e)) for e in ext]
            coords = tuple(c / e[:, None, None, None] for c, e in zip(coords, ext, strict=True))
        return coords

    def _stack(self, tp, xp, yp, s, vx, vy) -> Tensor:
        """Coordinate channels, then the selected ``fields``, each (B, ct, cx, cy) -> (B, ct * (3 + F), cx, cy)."""
        shape = s.shape  # (B, ct, cx, cy)
        field = dict(zip(FIELDS, (s, vx, vy), strict=True))
        parts = [torch.broadcast_to(a, shape) for a in (tp, xp, yp, *(field[f] for f in self.fields))]
        return torch.cat(parts, dim=1).float()

    def view(
        self,
        u: Tensor,
        t: Tensor,
        x: Tensor,
        y: Tensor,
        generator: torch.Generator,
        starts: tuple[Tensor, Tensor, Tensor] | None = None,
        **_: Tensor,
    ) -> Tensor:
        """One view of every trajectory.

        Args:
            u: (B, T, 3, X, Y) fields (smoke, vx, vy); t: (B, T) frame times; x: (B, X), y: (B, Y) cell centres.
            generator: torch RNG driving crops and group parameters.
            starts: crop origins (B,) x 3 (frames, cells) to use instead of drawing them.

        Returns:
            (B, (3 + len(fields)) * crop_t, crop_x, crop_y) float32 (layout in the module docstring).
        """
        t0, x0, y0 = self.crop_starts(u, generator) if starts is None else starts
        eps = self.sample_eps(u.shape[0], generator, u.device)
        (s, vx, vy), tc, xc, yc = self._crop(u, t, x, y, (t0, x0, y0))
        tt, xx, yy = torch.broadcast_tensors(tc, xc, yc)
        tp, xp, yp, vx, vy = self.transform(eps, tt, xx, yy, vx, vy)
        return self._stack(*self._coord_channels((tp, xp, yp), (tc, xc, yc)), s, vx, vy)

    def eval_view(self, u: Tensor, t: Tensor, x: Tensor, y: Tensor, *_: Tensor) -> Tensor:
        """Deterministic evaluation input, no transform, same layout: the central cells in x and y, and in t the
        frames ``eval_window`` names (the middle ones by default)."""
        self._check(u)
        b, nt, _, nx, ny = u.shape
        dev = u.device
        t0 = eval_window_start(self.eval_window, nt, self.crop_t)
        starts = [
            torch.full((b,), s0, dtype=torch.long, device=dev)
            for s0 in (t0, (nx - self.crop_x) // 2, (ny - self.crop_y) // 2)
        ]
        (s, vx, vy), tc, xc, yc = self._crop(u, t, x, y, starts)
        return self._stack(*self._coord_channels((tc, xc, yc), (tc, xc, yc)), s, vx, vy)

    def two_views(self, u: Tensor, t: Tensor, x: Tensor, y: Tensor, generator: torch.Generator, **params: Tensor):
        """Two views ``(v1, v2)``, each (B, (3 + len(fields)) * crop_t, crop_x, crop_y): independent, or with
        ``same_window`` one shared crop and independent group elements."""
        starts = self.crop_starts(u, generator) if self.same_window else None
        return (
            self.view(u, t, x, y, generator, starts=starts, **params),
            self.view(u, t, x, y, generator, starts=starts, **params),
        )
