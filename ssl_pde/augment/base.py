"""What the view builders share (1D :class:`~ssl_pde.augment.views.LieViews`, 2D
:class:`~ssl_pde.augment.ns_views.NSViews`, and :class:`~ssl_pde.augment.generic_views.GenericViews` of external
datasets): the enabled generators with their strengths, the sampling of group parameters, the check of a dataset
before any work, and the crops-only copy of a configured builder."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from ssl_pde.core.errors import UserError
from ssl_pde.pdes import PDES

Tensor = torch.Tensor


class SymmetryViews:
    """Base of the view builders. A subclass calls :meth:`_set_generators` and :meth:`_keep_config` in its
    constructor.

    Attributes:
        pde: registry name.
        names: the enabled generators (strength > 0), in the registry's order.
        symmetries: their finite actions.
        strengths: (n_generators,) float64, the maximal |eps| of each.
    """

    pde: str
    names: list[str]
    symmetries: list[Any]
    strengths: Tensor
    _config: dict[str, Any]

    def _set_generators(self, pde: str, strengths: Mapping[str, float]) -> None:
        """Check ``strengths`` (generator name -> maximal |eps|) against the PDE's registry and keep the enabled
        ones. Raises UserError for an unknown generator or a negative or non-finite strength."""
        spec = PDES[pde]
        unknown = sorted(set(strengths) - set(spec.symmetries))
        if unknown:
            raise UserError(f"unknown generators {unknown} for {pde} (have: {', '.join(spec.symmetries)})")
        for name, s in strengths.items():
            if not (math.isfinite(s) and s >= 0):
                raise UserError(f"strength of {name} must be >= 0, got {s!r}")
        self.pde = pde
        self.names = [n for n in spec.symmetries if strengths.get(n, 0.0) > 0]
        self.symmetries = [spec.symmetries[n] for n in self.names]
        self.strengths = torch.tensor([float(strengths[n]) for n in self.names], dtype=torch.float64)

    #: Evaluation crops per axis (time, space) whose results an evaluation averages (``ssl-pde-eval eval_crops``);
    #: (1, 1): the one deterministic crop of :meth:`eval_view`. Only 1D views (:class:`LieViews`) tile.
    eval_grid: tuple[int, int] = (1, 1)

    def eval_views(self, *args: Tensor) -> list[Tensor]:
        """The evaluation inputs whose results are averaged: ``[self.eval_view(*args)]`` unless a subclass tiles
        the trajectory (:attr:`eval_grid`)."""
        if tuple(self.eval_grid) != (1, 1):
            raise UserError(f"eval_crops={list(self.eval_grid)}: several evaluation crops apply to 1D views only")
        return [self.eval_view(*args)]

    def _keep_config(self, **config: Any) -> None:
        """Remember the constructor's arguments (for :meth:`without_symmetries`)."""
        self._config = config

    def check_data(self, item_shape: tuple[int, ...]) -> None:
        """Refuse crops larger than one trajectory of shape ``item_shape`` (T, C, X[, Y]); each subclass checks."""
        raise NotImplementedError

    def check_dataset(self, ds: Any) -> dict[str, Any]:
        """Refuse a dataset (:class:`~ssl_pde.data.datasets.TrajectoryDataset`) the views cannot read, before any
        work: another number of channels than the PDE's fields, crops larger than its trajectories. Returns the
        view settings read from the data (none for a registry PDE's views).

        A registry PDE's views read an external dataset the PDE's config maps onto it (e.g. ``pde=heat`` reads the
        external dataset ``heat``) by position: its channels stand for the PDE's fields in order."""
        fields = PDES[self.pde].field_names
        if len(ds.field_names) != len(fields):
            raise UserError(
                f"{ds.dataset_name} has the channels {list(ds.field_names)}; the {self.pde} views read {len(fields)} "
                f"({', '.join(fields)}): choose the pde (and views) of this dataset"
            )
        self.check_data(tuple(ds.item_shape))
        return {}

    def sample_eps(self, batch: int, generator: torch.Generator, device: torch.device) -> Tensor:
        """(n_generators, B) float64, ``eps_i ~ U(-s_i, s_i)``."""
        r = torch.rand(len(self.names), batch, generator=generator, dtype=torch.float64, device=generator.device)
        return ((2 * r - 1) * self.strengths.to(r.device)[:, None]).to(device)

    def without_symmetries(self):
        """The same crops and layout with every generator off (the crops-only ablation)."""
        return type(self)(**{**self._config, "strengths": {}})
