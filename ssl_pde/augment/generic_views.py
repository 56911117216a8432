"""Views of an external dataset: only the symmetries its boundary conditions allow, whatever its equation.

An external dataset (shards with ``pde="external"``: LPSDA's heat files, the datasets of The Well) has no registry
spec, so no Lie point symmetry of its equation is known here. Two kinds of transformation map a solution to a
solution of every autonomous evolution equation (no coefficient, forcing or source depending explicitly on t or
on position), and only these are used:

- ``time_translation``: the view's ``crop_t`` frames start at a random stored frame (off: the frames
  ``eval_window`` names). Shifting t maps a solution to a solution; the two views of a trajectory are two windows
  of it.
- ``x_translation`` / ``y_translation``, only along an axis whose boundary is periodic (read from the shards'
  ``/boundary_conditions`` or ``boundary`` attribute, :func:`~ssl_pde.data.schema.periodic_axes`): the crop starts
  at a random grid point and wraps around the period. A shift by whole grid steps permutes the stored values:
  exact, no interpolation. Along any other axis (walls, open or unknown boundaries) a translation moves the
  boundary, so the crop there is fixed at the centre of the domain.

Nothing else: scalings, boosts, rotations and the like depend on the equation (and change its parameters or
boundaries), so they are not guessed. A dataset that *is* a registry PDE is better served by that PDE's views
(its config names the PDE, e.g. ``pde=heat`` for LPSDA's heat files; ``docs/symmetries.md``).

Layout (``mode``), F the number of selected ``fields``:

- 1D: ``coords`` (B, 2 + F, crop_t, crop_x), channels t', x', then the fields; ``fields`` (B, F, crop_t, crop_x).
- 2D: ``coords`` (B, (3 + F) * crop_t, crop_x, crop_y), quantity-major (channel ``q * crop_t + k`` is quantity q
  at frame k: t', x', y', then the fields, as :class:`~ssl_pde.augment.ns_views.NSViews`); ``fields``
  (B, F * crop_t, crop_x, crop_y).

With ``relative_coords`` the coordinate channels are measured from the crop origin (x continues past the period
where a crop wraps): the translations are invisible in them, which then carry the grid spacing only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ssl_pde.augment.base import SymmetryViews
from ssl_pde.augment.ns_views import eval_window_start
from ssl_pde.core.errors import UserError
from ssl_pde.data.schema import EXTERNAL, SPATIAL_NAMES

Tensor = torch.Tensor
MODES = ("coords", "fields")
TIME = "time_translation"


def _translation(axis: str) -> str:
    return f"{axis}_translation"


class GenericViews(SymmetryViews):
    """Configured view builder of an external dataset (``configs/augment/external.yaml``).

    Args:
        dataset: the dataset's name (messages only).
        fields: the channels the views carry, in this order (names of the dataset's ``field_names``).
        n_spatial_dims: 1 or 2.
        generators: the enabled translations (``time_translation``, ``x_translation``, ``y_translation``); None:
            time translation and a translation along every periodic axis.
        periodic: the periodic axes; None until read from the data by :meth:`check_dataset`.
        data_fields: the dataset's channels in stored order; None until read from the data.
        mode: ``"coords"`` (coordinate channels, then the fields) or ``"fields"`` (the fields only).
        crop_t, crop_x, crop_y: crop size in frames and grid points (2D: ``crop_y`` None is ``crop_x``).
        relative_coords: coordinate channels measured from the crop origin.
        eval_window: frames of the evaluation input, and of every view without time translation: ``start``,
            ``center`` or ``end`` of the stored window.
    """

    def __init__(
        self,
        dataset: str,
        fields: Sequence[str],
        n_spatial_dims: int = 1,
        generators: Sequence[str] | None = None,
        periodic: Sequence[str] | None = None,
        data_fields: Sequence[str] | None = None,
        mode: str = "coords",
        crop_t: int = 16,
        crop_x: int = 64,
        crop_y: int | None = None,
        relative_coords: bool = True,
        eval_window: str = "center",
    ) -> None:
        self.fields = self._names(fields, "fields")
        self.n_spatial_dims = int(n_spatial_dims)
        if self.n_spatial_dims not in (1, 2):
            raise UserError(f"n_spatial_dims must be 1 or 2 (views of 3D data: not yet), got {n_spatial_dims}")
        if mode not in MODES:
            raise UserError(f"unknown view mode {mode!r} for an external dataset (choose from: {', '.join(MODES)})")
        self.axes = SPATIAL_NAMES[: self.n_spatial_dims]
        crop_y = crop_x if crop_y is None and self.n_spatial_dims == 2 else crop_y
        self.crops = (crop_x,) if self.n_spatial_dims == 1 else (crop_x, crop_y)
        for name, c in zip(("crop_t", "crop_x", "crop_y"), (crop_t, *self.crops), strict=False):
            if not isinstance(c, int) or c < 1:
                raise UserError(f"{name} must be a positive integer, got {c!r}")
        eval_window_start(eval_window, crop_t, crop_t)  # validates eval_window
        self.dataset, self.mode, self.crop_t, self.crop_x = dataset, mode, crop_t, crop_x
        self.relative_coords, self.eval_window = relative_coords, eval_window
        self.pde, self.names = EXTERNAL, []
        self.symmetries = []  # no finite action: the group acts through the crop positions
        self.strengths = torch.zeros(0, dtype=torch.float64)
        self._keep_config(
            dataset=dataset,
            fields=list(self.fields),
            n_spatial_dims=self.n_spatial_dims,
            generators=None if generators is None else list(generators),
            periodic=periodic,
            data_fields=data_fields,
            mode=mode,
            crop_t=crop_t,
            crop_x=crop_x,
            crop_y=crop_y if self.n_spatial_dims == 2 else None,
            relative_coords=relative_coords,
            eval_window=eval_window,
        )
        self._bind(periodic, data_fields)

    @staticmethod
    def _names(names: Sequence[str] | None, what: str) -> tuple[str, ...]:
        if isinstance(names, str) or names is None:
            raise UserError(f"{what} must be a list of names, got {names!r} (e.g. [u])")
        out = tuple(str(n) for n in names)
        if len(set(out)) != len(out) or (what == "fields" and not out):
            raise UserError(f"{what} must be distinct names{', at least one' * (what == 'fields')}, got {list(out)}")
        return out

    def _bind(self, periodic: Sequence[str] | None, data_fields: Sequence[str] | None) -> None:
        """Enable the generators the periodic axes allow and find the fields' channels (when both are known)."""
        self.periodic = None if periodic is None else self._names(periodic, "periodic")
        self.data_fields = None if data_fields is None else self._names(data_fields, "data_fields")
        cfg = self._config
        if self.periodic is not None:
            bad = [a for a in self.periodic if a not in self.axes]
            if bad:
                raise UserError(f"periodic axes {bad} are not axes of {self.n_spatial_dims}D data ({list(self.axes)})")
            allowed = [TIME, *(_translation(a) for a in self.axes if a in self.periodic)]
            names = allowed if cfg["generators"] is None else list(self._names(cfg["generators"], "generators"))
            wrong = [n for n in names if n not in allowed]
            if wrong:
                known = [TIME, *(_translation(a) for a in self.axes)]
                why = "unknown" if wrong[0] not in known else "not periodic in " + self.dataset
                raise UserError(
                    f"generator {wrong[0]!r} for {self.dataset}: {why} (allowed: {', '.join(allowed)}; a translation "
                    "along a non-periodic axis moves its boundary, so it is no symmetry)"
                )
            self.names = [n for n in allowed if n in names]
            self.strengths = torch.ones(len(self.names), dtype=torch.float64)
        if self.data_fields is not None:
            missing = [f for f in self.fields if f not in self.data_fields]
            if missing:
                raise UserError(f"fields {missing} are not channels of {self.dataset} (have: {list(self.data_fields)})")
            self.field_index = [self.data_fields.index(f) for f in self.fields]
        cfg["periodic"] = None if self.periodic is None else list(self.periodic)
        cfg["data_fields"] = None if self.data_fields is None else list(self.data_fields)

    def check_dataset(self, ds: Any) -> dict[str, Any]:
        """Check the views against a dataset (:class:`~ssl_pde.data.datasets.TrajectoryDataset`: its
        ``n_spatial_dims``, ``field_names``, ``periodic_axes``, ``item_shape``) and bind them to it. Returns the
        settings read from the data, ``periodic`` and ``data_fields``, for the run's config and the encoder export.

        Raises:
            UserError: other dimensions, a field the data lack, stated periodic axes or channels the data
                contradict, crops larger than the data.
        """
        if ds.n_spatial_dims != self.n_spatial_dims:
            raise UserError(
                f"{self.dataset} is {ds.n_spatial_dims}D, the views are {self.n_spatial_dims}D: set "
                f"augment.n_spatial_dims={ds.n_spatial_dims}"
            )
        for name, mine, data in (
            ("periodic", self.periodic, tuple(ds.periodic_axes)),
            ("data_fields", self.data_fields, tuple(ds.field_names)),
        ):
            if mine is not None and tuple(mine) != data:
                raise UserError(f"augment.{name}={list(mine)}, but the data under {ds.dataset_name} have {list(data)}")
        self._bind(tuple(ds.periodic_axes), tuple(ds.field_names))
        self.check_data(ds.item_shape)
        return {"periodic": list(self.periodic), "data_fields": list(self.data_fields)}

    def without_symmetries(self) -> GenericViews:
        """The same crops and layout with every translation off: one deterministic crop per trajectory."""
        return type(self)(**{**self._config, "generators": []})

    # ------------------------------------------------------------------ layout
    @staticmethod
    def view_channels(mode: str, crop_t: int, fields: Sequence[str], n_spatial_dims: int) -> int:
        """Channels of a view: ``2 + F`` (1D) or ``(3 + F) * crop_t`` (2D) in ``coords`` mode, without the
        coordinate channels in ``fields`` mode; F = ``len(fields)``."""
        if mode not in MODES:
            raise UserError(f"unknown view mode {mode!r} for an external dataset (choose from: {', '.join(MODES)})")
        q = (1 + int(n_spatial_dims)) * (mode == "coords") + len(fields)
        return q if int(n_spatial_dims) == 1 else q * int(crop_t)

    @property
    def channels(self) -> int:
        """Channels of a view (see :meth:`view_channels`)."""
        return self.view_channels(self.mode, self.crop_t, self.fields, self.n_spatial_dims)

    @staticmethod
    def inputs(batch: Mapping[str, Any]) -> tuple[Tensor | None, ...]:
        """The positional view arguments from a data-module batch: ``(u, t, x, y)``, ``y`` None for 1D data."""
        return batch["u"], batch["t"], batch["x"], batch.get("y")

    def check_data(self, item_shape: tuple[int, ...]) -> None:
        """Refuse crops larger than the data before any work; ``item_shape``: one trajectory's (T, C, X[, Y])."""
        sizes = (item_shape[0], *item_shape[2:])
        crops = (self.crop_t, *self.crops)
        if len(sizes) != len(crops) or any(c > n for c, n in zip(crops, sizes, strict=False)):
            raise UserError(f"crop {crops} larger than the data {sizes} of {self.dataset}")

    # ------------------------------------------------------------------ views
    def _starts(self, u: Tensor, generator: torch.Generator | None) -> tuple[Tensor, list[Tensor]]:
        """Crop origins (B,) in frames and per axis: random for the enabled translations, else the fixed crop."""
        if self.periodic is None or self.data_fields is None:
            raise RuntimeError("GenericViews used before check_dataset bound it to its data")
        self.check_data((u.shape[1], u.shape[2], *u.shape[3:]))
        b, nt, dev = u.shape[0], u.shape[1], u.device
        on = set(self.names) if generator is not None else set()

        def draw(name: str, high: int, fixed: int) -> Tensor:
            if name in on:
                return torch.randint(0, high, (b,), generator=generator, device=generator.device).to(dev)
            return torch.full((b,), fixed, dtype=torch.long, device=dev)

        t0 = draw(TIME, nt - self.crop_t + 1, eval_window_start(self.eval_window, nt, self.crop_t))
        space = [
            draw(_translation(a), n, (n - c) // 2) for a, n, c in zip(self.axes, u.shape[3:], self.crops, strict=True)
        ]
        return t0, space

    def _crop(self, u: Tensor, t: Tensor, grids: list[Tensor], starts: tuple[Tensor, list[Tensor]]) -> Tensor:
        """The view (B, Q, crop_t, *crops) before the 2D channel flattening; Q coordinate + field quantities."""
        t0, s0 = starts
        b, nd, dev, f64 = u.shape[0], self.n_spatial_dims, u.device, torch.float64
        ti = t0[:, None] + torch.arange(self.crop_t, device=dev)  # (B, ct)
        tc = torch.gather(t.to(dev, f64), 1, ti).reshape(b, self.crop_t, *[1] * nd)
        idx, coords = [], [tc - tc[:, :1] if self.relative_coords else tc]
        for k, (g, s, c, n) in enumerate(zip(grids, s0, self.crops, u.shape[3:], strict=True)):
            i = s[:, None] + torch.arange(c, device=dev)  # (B, c), past n where a crop wraps
            w = i % n
            g = g.to(dev, f64)
            gc = torch.gather(g, 1, w) + (i >= n) * (n * (g[:, 1:2] - g[:, :1]))  # unwrapped across the period
            gc = gc - gc[:, :1] if self.relative_coords else gc
            shape = [b, 1, *[1] * nd]
            shape[2 + k] = c
            idx.append(w.reshape(shape))
            coords.append(gc.reshape(shape))
        bi = torch.arange(b, device=dev).reshape(b, *[1] * (nd + 1))
        uc = u[(bi, ti.reshape(b, self.crop_t, *[1] * nd), slice(None), *idx)]  # (B, ct, *crops, C)
        out_shape = (b, self.crop_t, *self.crops)
        quantities = [*(coords if self.mode == "coords" else []), *(uc[..., j].to(f64) for j in self.field_index)]
        return torch.stack([torch.broadcast_to(q, out_shape) for q in quantities], dim=1).float()

    def view(
        self, u: Tensor, t: Tensor, x: Tensor, y: Tensor | None, generator: torch.Generator | None, **_: Tensor
    ) -> Tensor:
        """One view of every trajectory.

        Args:
            u: (B, T, C, X) or (B, T, C, X, Y) every stored channel; t: (B, T) frame times; x: (B, X) and
                y: (B, Y) (None for 1D data) uniform grids.
            generator: torch RNG of the crop positions; None: the deterministic crop (no translation).

        Returns:
            (B, channels, crop_t, crop_x) for 1D data, (B, channels, crop_x, crop_y) for 2D data; float32.
        """
        grids = [x] if self.n_spatial_dims == 1 else [x, y]
        v = self._crop(u, t, grids, self._starts(u, generator))
        return v if self.n_spatial_dims == 1 else v.flatten(1, 2)

    def eval_view(self, u: Tensor, t: Tensor, x: Tensor, y: Tensor | None = None, *_: Tensor) -> Tensor:
        """Deterministic evaluation input, same layout: the ``eval_window`` frames, the central crop in space."""
        return self.view(u, t, x, y, None)

    def two_views(self, u: Tensor, t: Tensor, x: Tensor, y: Tensor | None, generator: torch.Generator, **_: Tensor):
        """Two independent views ``(v1, v2)`` (layout of :meth:`view`)."""
        return self.view(u, t, x, y, generator), self.view(u, t, x, y, generator)
