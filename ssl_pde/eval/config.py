"""Typed settings of an evaluation, filled from ``configs/eval.yaml`` (where every value is declared once).

from ssl_pde.eval.config import compose_eval_config
cfg = compose_eval_config(["ckpt=runs/burgers/encoder.pt", "data.dir=data"])   # an EvalConfig
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ssl_pde.augment.corrupt import Corruption
from ssl_pde.core.errors import UserError
from ssl_pde.eval.pde_id import PdeIdConfig
from ssl_pde.eval.protocol import RegressionConfig
from ssl_pde.eval.train import Search
from ssl_pde.eval.transfer import Transfer


@dataclass
class DataConfig:
    dir: str


@dataclass
class WandbConfig:
    """One W&B run per evaluation under ``<out_dir>/wandb`` (``mode``: offline, online or disabled)."""

    enabled: bool
    mode: str
    project: str


@dataclass
class TimestepConfig:
    """Conditioned time-stepping (:mod:`ssl_pde.eval.timestep`).

    Attributes:
        arch: stepper (1D: ``cnn`` or ``fno``; 2D: ``unet``).
        ssl_dims: SSL condition reduced to this many leading principal components (None: all dimensions).
        cond_hidden: FiLM bottleneck width (0: one linear map from the condition).
        history, future: frames in and out per stepper call.
        width: stepper channels.
        n_train: training trajectories drawn from train (all of them when larger).
        seeds: stepper seeds (each also draws its training subset).
        search: learning-rate candidates, step budget and early stopping on the valid rollout error.
        variants: conditionings trained: ``none``, ``param`` (every per-trajectory quantity that changes the
            dynamics or the frame spacing), ``ssl`` (the frozen representation of the first window).
    """

    arch: str
    ssl_dims: int | None
    cond_hidden: int
    history: int
    future: int
    width: int
    n_train: int
    seeds: list[int]
    search: Search
    variants: list[str]


@dataclass
class EvalConfig:
    """``ssl-pde-eval``: ``ckpt`` is one ``encoder.pt`` or a list (one per pretraining seed); ``corrupt``: the
    messy observations every split the evaluation reads is given (:mod:`ssl_pde.augment.corrupt`; clean by
    default, ``task=regression`` only); ``transfer``: the parameter extrapolated beyond the labelled range and the
    test split's grid changed (:mod:`ssl_pde.eval.transfer`; off by default, ``task=regression`` only);
    ``eval_crops``: ``[n_t, n_x]`` evaluation crops per trajectory whose representations and predictions are
    averaged (:func:`~ssl_pde.augment.views.crop_origins`; ``[1, 1]``: the one central crop; 1D views only)."""

    task: str
    ckpt: Any
    data: DataConfig
    param: str | None
    log_target: bool | None
    eval_window: str | None
    eval_crops: list[int]
    device: str
    out_dir: str | None
    regression: RegressionConfig
    timestep: TimestepConfig
    pde_id: PdeIdConfig
    wandb: WandbConfig
    corrupt: Corruption
    transfer: Transfer

    @property
    def ckpts(self) -> list[str]:
        return [str(c) for c in self.ckpt] if isinstance(self.ckpt, list | tuple) else [str(self.ckpt)]


def to_eval_config(cfg: DictConfig) -> EvalConfig:
    """Check a composed ``eval`` config against :class:`EvalConfig` (types, no unknown keys) and convert it."""
    body = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]) if "hydra" in cfg else cfg
    if "ckpt" not in body or OmegaConf.is_missing(body, "ckpt"):
        raise UserError(
            "ckpt is required: ckpt=PATH/encoder.pt, or ckpt=[a.pt,b.pt,c.pt] for several pretraining seeds"
        )
    try:
        merged = OmegaConf.merge(OmegaConf.structured(EvalConfig), body)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        raise UserError(f"bad eval setting: {' '.join(str(e).split())}") from None


def compose_eval_config(overrides: list[str]) -> EvalConfig:
    """Compose ``configs/eval.yaml`` with command-line style overrides, as ``ssl-pde-eval`` would."""
    from hydra import compose, initialize_config_dir

    from ssl_pde import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return to_eval_config(compose("eval", overrides=overrides))
