"""OmegaConf resolvers used by the configs (registered once, by every entry point and the tests)."""

from __future__ import annotations

from omegaconf import OmegaConf


def _view_channels(mode: str) -> int:
    return {"coords": 3, "resample": 1}[mode]


def register_resolvers() -> None:
    """``${view_channels:coords}`` -> 3, ``${last:[1, 2]}`` -> 2."""
    if not OmegaConf.has_resolver("view_channels"):
        OmegaConf.register_new_resolver("view_channels", _view_channels)
    if not OmegaConf.has_resolver("last"):
        OmegaConf.register_new_resolver("last", lambda xs: list(xs)[-1])


register_resolvers()
