"""Views of a batch mixing several 1D PDEs (``augment=mixed_1d``): each element transformed by its own PDE's views.

A :class:`MixedViews` holds one :class:`~ssl_pde.augment.views.LieViews` per PDE (each built from that PDE's
``configs/augment/<pde>.yaml``: its generators and strengths) and has the interface the training module uses
(``inputs``, ``view``, ``two_views``, ``eval_view``, ``channels``, ``check_dataset``, ``without_symmetries``). It
splits a batch by the registry index of each element's PDE (the ``pde`` entry of
:class:`~ssl_pde.data.mixed.MixedDataset` batches), builds each PDE's views from its elements only, and puts them
back in the batch's order: a view never applies another equation's generator. The PDEs' views share one mode and
one crop size (``mode``, ``crop_t``, ``crop_x``), so that every element's view is one (C, crop_t, crop_x) tensor
and the encoder reads them as one batch:

- ``resample`` (1 channel, u~): the transformed field on crop_t x crop_x grid points of its own trajectory's
  spacing. Spacing, time step and domain length are not in the input; they show only through the patterns
  (wavelengths and speeds in grid units) and the amplitudes.
- ``coords`` (3 channels, t', x', u'): the same crop with the transformed coordinates of every point, relative to
  the crop origin: the time step and the grid spacing (hence each KdV / KS trajectory's domain length, L = nx dx)
  are read off the coordinate channels, and they tell the PDEs apart at a glance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from ssl_pde.augment.views import LieViews
from ssl_pde.core.errors import UserError
from ssl_pde.pdes import PDES, pde_index

Tensor = torch.Tensor


class MixedViews:
    """Per-PDE symmetry views of mixed batches, dispatched by each element's PDE.

    Args:
        views: PDE name -> its view builder (a :class:`~ssl_pde.augment.views.LieViews` of that PDE, built by Hydra
            from the PDE's augment config). Each must have this ``mode``, ``crop_t`` and ``crop_x``.
        mode, crop_t, crop_x: the common view mode and crop size (declared once in ``configs/augment/mixed_1d.yaml``,
            read by every PDE's views through interpolation).

    Attributes:
        views: the builders; codes: PDE name -> registry index (:func:`~ssl_pde.pdes.pde_index`).
        pde: ``"mixed"``; names: the PDEs.
    """

    pde = "mixed"

    def __init__(self, views: Mapping[str, LieViews], mode: str, crop_t: int, crop_x: int) -> None:
        if not views:
            raise UserError("augment.views: no PDE's views given")
        for name, v in views.items():
            if name not in PDES:
                raise UserError(f"augment.views.{name}: not a registry PDE (have: {', '.join(PDES)})")
            if not isinstance(v, LieViews) or v.pde != name:
                raise UserError(f"augment.views.{name} must be the 1D Lie views of {name}, got {v!r}")
            got = (v.mode, v.crop_t, v.crop_x)
            if got != (mode, crop_t, crop_x):
                raise UserError(
                    f"augment.views.{name} has mode, crop_t, crop_x {got}; every PDE's views of a mix share "
                    f"{(mode, crop_t, crop_x)} (set augment.mode / crop_t / crop_x once)"
                )
        self.views = dict(views)
        self.names = list(self.views)
        self.codes = {n: pde_index(n) for n in self.names}
        self.mode, self.crop_t, self.crop_x = mode, crop_t, crop_x

    @staticmethod
    def view_channels(mode: str, crop_t: int | None = None) -> int:
        """Channels of a view: those of the 1D views (:meth:`LieViews.view_channels`)."""
        return LieViews.view_channels(mode, crop_t)

    @property
    def channels(self) -> int:
        """Channels of a view (3 in ``coords`` mode, 1 in ``resample`` mode)."""
        return self.view_channels(self.mode)

    @staticmethod
    def inputs(batch: Mapping[str, Any]) -> tuple[Tensor, ...]:
        """The positional view arguments from a mixed batch: ``(u, t, x, length, pde)``, u the first field
        (B, T, X), pde (B,) the elements' registry indices."""
        return batch["u"][:, :, 0], batch["t"], batch["x"], batch["length"], batch["pde"]

    def check_data(self, item_shape: tuple[int, ...]) -> None:
        """Refuse crops larger than one trajectory of shape (T, C, X)."""
        for v in self.views.values():
            v.check_data(item_shape)

    def check_dataset(self, ds: Any) -> dict[str, Any]:
        """Refuse a dataset the views cannot read before any work: not a
        :class:`~ssl_pde.data.mixed.MixedDataset`, a PDE without views here, or a PDE's split that its views refuse
        (:meth:`~ssl_pde.augment.base.SymmetryViews.check_dataset`). Returns no settings."""
        parts = getattr(ds, "datasets", None)
        if not isinstance(parts, Mapping):
            raise UserError(
                f"the mixed views read mixed data (data=mixed); {getattr(ds, 'dataset_name', ds)!r} is one dataset"
            )
        missing = [n for n in parts if n not in self.views]
        if missing:
            raise UserError(
                f"data.mix reads {missing}, which have no views in augment.views (have: {', '.join(self.names)})"
            )
        for name, part in parts.items():
            self.views[name].check_dataset(part)
        return {}

    def _dispatch(self, pde: Tensor, build: Callable[[LieViews, Tensor], Tensor]) -> Tensor:
        """Run ``build(views_of_pde, mask)`` -> (n_pde, C, ct, cx) for each PDE present, in :attr:`names` order, and
        assemble (B, C, ct, cx) float32 in the batch's order."""
        out: Tensor | None = None
        covered = torch.zeros_like(pde, dtype=torch.bool)
        for name, v in self.views.items():
            mask = pde == self.codes[name]
            if not bool(mask.any()):
                continue
            part = build(v, mask)
            if out is None:
                out = part.new_zeros((pde.shape[0], *part.shape[1:]))
            out[mask] = part
            covered |= mask
        if not bool(covered.all()):
            names = dict(enumerate(PDES))
            codes = sorted({int(c) for c in pde[~covered].tolist()})
            raise UserError(f"batch elements of {[names.get(c, c) for c in codes]}, which have no views here")
        assert out is not None
        return out

    def view(
        self, u: Tensor, t: Tensor, x: Tensor, length: Tensor, pde: Tensor, generator: torch.Generator, **params
    ) -> Tensor:
        """One view of every element by its own PDE's views.

        Args:
            u: (B, T, X) field; t: (B, T) frame times; x: (B, X) grids; length: (B,) domain lengths.
            pde: (B,) int64 registry index of each element's PDE.
            generator: torch RNG driving crops and group parameters (each PDE's sub-batch draws in turn).
            params: PDE parameters, (B,) each, for generators that need them.

        Returns:
            (B, C, crop_t, crop_x) float32.
        """
        return self._dispatch(
            pde, lambda v, m: v.view(u[m], t[m], x[m], length[m], generator, **{k: p[m] for k, p in params.items()})
        )

    def two_views(
        self, u: Tensor, t: Tensor, x: Tensor, length: Tensor, pde: Tensor, generator: torch.Generator, **params
    ) -> tuple[Tensor, Tensor]:
        """Two independent views ``(v1, v2)``, each (B, C, crop_t, crop_x)."""
        return (
            self.view(u, t, x, length, pde, generator, **params),
            self.view(u, t, x, length, pde, generator, **params),
        )

    def eval_view(self, u: Tensor, t: Tensor, x: Tensor, length: Tensor, pde: Tensor) -> Tensor:
        """Deterministic evaluation input of every element by its own PDE's views
        (:meth:`LieViews.eval_view`); (B, C, crop_t, crop_x) float32."""
        return self._dispatch(pde, lambda v, m: v.eval_view(u[m], t[m], x[m], length[m]))

    def without_symmetries(self) -> MixedViews:
        """The same crops and layout with every PDE's generators off (the crops-only ablation)."""
        return MixedViews(
            {n: v.without_symmetries() for n, v in self.views.items()}, self.mode, self.crop_t, self.crop_x
        )
