"""OmegaConf resolvers used by the configs (registered once, by every entry point and the tests)."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from ssl_pde.core.hardware import cpu_precision

_LIE_VIEWS = "ssl_pde.augment.views.LieViews"


def _view_channels(
    mode: str, crop_t: int | None = None, target: str = _LIE_VIEWS, fields: Any = None, dims: Any = None
) -> int:
    """Input channels of the views built by ``target`` (a view class with ``view_channels(mode, crop_t)``, and
    ``fields`` when the views select fields: 2D views; and ``dims``, the number of spatial dimensions, when the
    views take data of either: the views of external datasets)."""
    from hydra.utils import get_class

    cls = get_class(target)
    if fields is None:
        return int(cls.view_channels(mode, crop_t))
    if dims is None:
        return int(cls.view_channels(mode, crop_t, list(fields)))
    return int(cls.view_channels(mode, crop_t, list(fields), int(dims)))


def register_resolvers() -> None:
    """``${view_channels:coords}`` -> 3 (1D views), ``${view_channels:coords,16,ssl_pde.augment.ns_views.NSViews}``
    -> 96 (2D views: 6 channels per frame; a 4th argument, the list of fields, e.g. ``[vx, vy]`` -> 80; a 5th,
    the spatial dimensions of an external dataset's views, ``GenericViews``),
    ``${last:[1, 2]}`` -> 2, ``${cpu_precision:}`` -> ``bf16-mixed`` on a CPU with native bfloat16, else
    ``32-true`` (:func:`ssl_pde.core.hardware.cpu_precision`)."""
    if not OmegaConf.has_resolver("view_channels"):
        OmegaConf.register_new_resolver("view_channels", _view_channels)
    if not OmegaConf.has_resolver("last"):
        OmegaConf.register_new_resolver("last", lambda xs: list(xs)[-1])
    if not OmegaConf.has_resolver("cpu_precision"):
        OmegaConf.register_new_resolver("cpu_precision", lambda: cpu_precision())


register_resolvers()
