"""Shared pieces of the evaluation tests: a tiny encoder export, tiny search settings, the eval command."""

from __future__ import annotations

from pathlib import Path

import torch

from ssl_pde.eval.protocol import RegressionConfig
from ssl_pde.eval.train import Search
from ssl_pde.models.encoders import ResNet18

ENC_CFG = {"_target_": "ssl_pde.models.encoders.ResNet18", "in_channels": 3, "widths": [8, 16, 32, 64]}
AUG = {
    "pde": "burgers",
    "strengths": {"space_translation": 1.0, "galilean_boost": 0.2},
    "mode": "coords",
    "crop_t": 8,
    "crop_x": 32,
}
#: ssl-pde-eval overrides giving tiny searches (2 candidates per trained method, a few steps).
TINY_EVAL = [
    "device=cpu",
    "regression.mlp.lrs=[1e-3,1e-2]",
    "regression.mlp.max_steps=10",
    "regression.mlp.eval_every=5",
    *[
        f"regression.{m}.{k}"
        for m in ("finetune", "supervised")
        for k in ("lrs=[1e-3,3e-3]", "max_steps=4", "eval_every=2", "batch=8")
    ],
]


def tiny_regression(**kw) -> RegressionConfig:
    def net() -> Search:
        return Search(lrs=[1e-3, 3e-3], max_steps=4, eval_every=2, patience=1, batch=8)

    base = dict(
        n_labels=16,
        label_draws=[0, 1],
        select_metric="nmse",
        methods=["ssl_linear", "ssl_mlp", "ssl_finetune", "random_init", "supervised"],
        ridge_lambdas=[1e-2, 1.0, 100.0],
        mlp_hidden=16,
        mlp=Search(lrs=[1e-3, 1e-2], max_steps=10, eval_every=5, patience=0),
        finetune=net(),
        supervised=net(),
        n_boot=500,
    )
    return RegressionConfig(**{**base, **kw})


def make_encoder(seed: int) -> ResNet18:
    torch.manual_seed(seed)
    return ResNet18(3, (8, 16, 32, 64)).eval().requires_grad_(False)


def no_time(x):
    """``x`` without its wall-clock fields (``seconds``), which differ between runs."""
    if isinstance(x, dict):
        return {k: no_time(v) for k, v in x.items() if k != "seconds"}
    return [no_time(v) for v in x] if isinstance(x, list) else x


def save_encoder(path: Path, **over) -> Path:
    """An encoder export in the format of ssl-pde-pretrain (untrained weights)."""
    torch.save(
        {
            "state_dict": make_encoder(0).state_dict(),
            "encoder": ENC_CFG,
            "augment": AUG,
            "pde": "burgers",
            "probe_param": "nu",
            "probe_log": True,
            **over,
        },
        path,
    )
    return path


def small_eval_args(ckpt, root) -> list[str]:
    """``ssl-pde-eval`` overrides of a small in-process regression run (16 labels, 2 draws, the linear probe and
    the supervised network, W&B off) on the encoder ``ckpt`` and the data under ``root``."""
    return [
        f"ckpt={ckpt}",
        f"data.dir={root}",
        *TINY_EVAL,
        "regression.n_labels=16",
        "regression.label_draws=[0,1]",
        "regression.methods=[ssl_linear,supervised]",
        "regression.n_boot=200",
        "wandb.enabled=false",
    ]
