"""Command-line entry points of the data generator (``ssl-pde-generate``, ``ssl-pde-verify``, ``ssl-pde-import``,
``ssl-pde-export``) and the checks the import and export commands share."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ssl_pde.core.errors import UserError


def check_format_and_src(cfg: DictConfig, formats: Collection[str], src_is: str) -> None:
    """Refuse a missing or unknown ``format`` and a missing or absent ``src`` (``src_is`` says what it should be)
    with one line naming the setting, as ``ssl-pde-import`` and ``ssl-pde-export`` do."""
    if OmegaConf.is_missing(cfg, "format"):
        raise UserError(f"format is required (format={','.join(formats)})")
    if cfg["format"] not in formats:
        raise UserError(f"unknown format {cfg['format']!r} (choose from: {', '.join(formats)})")
    if OmegaConf.is_missing(cfg, "src") or not cfg.src:
        raise UserError(f"src is required: {src_is} (src=PATH)")
    if not Path(cfg.src).exists():
        raise UserError(f"src {cfg.src!r} does not exist")
