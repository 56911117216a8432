"""What the 1D (:class:`~ssl_pde.augment.views.LieViews`) and 2D (:class:`~ssl_pde.augment.ns_views.NSViews`)
view builders share: the PDE's enabled generators with their strengths, the sampling of group parameters, and
the crops-only copy of a configured builder."""

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

    def _keep_config(self, **config: Any) -> None:
        """Remember the constructor's arguments (for :meth:`without_symmetries`)."""
        self._config = config

    def sample_eps(self, batch: int, generator: torch.Generator, device: torch.device) -> Tensor:
        """(n_generators, B) float64, ``eps_i ~ U(-s_i, s_i)``."""
        r = torch.rand(len(self.names), batch, generator=generator, dtype=torch.float64, device=generator.device)
        return ((2 * r - 1) * self.strengths.to(r.device)[:, None]).to(device)

    def without_symmetries(self):
        """The same crops and layout with every generator off (the crops-only ablation)."""
        return type(self)(**{**self._config, "strengths": {}})
