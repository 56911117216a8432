"""Evaluation on 2D Navier-Stokes data: buoyancy regression and U-Net time-stepping through the NS views."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data_gen.cli.generate import generate
from ssl_pde.core.errors import UserError
from tests.conftest import compose_cfg
from tests.eval_helpers import TINY_EVAL


def test_eval_regression_on_ns2d_buoyancy(tmp_path):
    """ssl-pde-eval task=regression on tiny ns2d data from the real generator (32 x 32 cells, 8 frames):
    the exported NS views (2D crops, time x fields as channels) feed the frozen encoder and the supervised
    baseline (here with the smoke channels too, as an export made before augment.fields existed, saved without
    the key); every method's buoyancy metrics are finite.
    task=timestep trains the U-Net stepper with the three conditionings (the SSL one from the encoder's
    4-frame window) and writes finite rollout metrics."""
    import hydra
    from omegaconf import OmegaConf

    from ssl_pde.cli.eval import run_task

    solver = dict(nx=32, ny=32, nt=8, t_start=1.0, t_end=4.5, dt_max=0.1)
    for split, n in (("train", 16), ("valid", 8), ("test", 8)):
        cfg = compose_cfg(
            "generate",
            [
                "pde=ns2d",
                *[f"solver.{k}={v}" for k, v in solver.items()],
                *[f"out_dir={tmp_path}", f"split={split}", f"num_samples={n}", "shard_size=16", "batch_size=16"],
                *["device=cpu", "progress=false"],
            ],
        )
        generate(cfg)
    pre = compose_cfg(
        "pretrain",
        ["experiment=ns2d_vicreg", "debug=smoke", "augment.crop_t=4", "augment.fields=[smoke,vx,vy]", "run_dir=run"],
    )
    assert pre.encoder.in_channels == 4 * 6  # smoke too (the default is velocities only): 6 channels per frame
    enc_cfg = OmegaConf.to_container(pre.encoder, resolve=True)
    torch.manual_seed(0)
    torch.save(
        {
            "state_dict": hydra.utils.instantiate(enc_cfg).state_dict(),
            "encoder": enc_cfg,
            # saved without "fields", as exports made before the option: the views then carry all three fields
            "augment": {k: v for k, v in OmegaConf.to_container(pre.augment, resolve=True).items() if k != "fields"},
            "pde": "ns2d",
            "probe_param": "buoyancy",
            "probe_log": False,
        },
        tmp_path / "encoder.pt",
    )
    common = [f"ckpt={tmp_path / 'encoder.pt'}", f"data.dir={tmp_path}", "wandb.enabled=false", *TINY_EVAL]
    opts = ["regression.n_labels=8", "regression.label_draws=[0,1]", f"out_dir={tmp_path / 'o'}"]
    doc = run_task(compose_cfg("eval", [*common, *opts]))
    assert doc["pde"] == "ns2d" and doc["param"] == "buoyancy" and not doc["log_target"]
    for cell in doc["result"]["cells"]:
        assert all(np.isfinite(cell["test"][m]["mse"]) for m in ("ssl_linear", "ssl_finetune", "supervised", "floor"))
        assert "log_mse" in cell["test"]["floor"]  # buoyancy is a positive scale parameter
    ts = [
        "task=timestep",
        "timestep.history=4",
        "timestep.future=2",
        "timestep.search.max_steps=3",
        "timestep.search.eval_every=3",
        "timestep.width=8",
        "timestep.arch=unet",
    ]
    doc = run_task(compose_cfg("eval", [*common, *ts, "timestep.seeds=[0,1]", f"out_dir={tmp_path / 'ts'}"]))
    r = doc["result"]
    assert r["param_conditions"] == ["buoyancy"] and r["rollout_start"] == 4 and r["frames"] == 4
    for cell in r["cells"]:
        assert all(np.isfinite(v["rollout_nmse"]) and v["frames"] == 4 for v in cell["test"].values())
        assert all(0 < v["one_step_mse"] < np.inf for v in cell["test"].values())
    assert (tmp_path / "ts" / "rollouts.png").is_file()
    # A shorter stepper history than the encoder's 4-frame window: the rollout still starts at frame 4.
    short = ["timestep.history=2", "timestep.future=1", "timestep.seeds=[0]", f"out_dir={tmp_path / 'ts2'}"]
    doc = run_task(compose_cfg("eval", [*common, *ts, *short]))
    assert doc["result"]["rollout_start"] == 4 and doc["result"]["frames"] == 4
    for args, msg in (
        (["timestep.arch=cnn"], "timestep.arch=cnn does not fit 2D data (use one of: unet)"),
        (["timestep.history=2", "timestep.future=5"], "timestep.future=5 exceeds the 8 frames"),
        (["eval_window=middle"], "unknown eval_window 'middle' (choose from: start, center, end)"),
    ):
        with pytest.raises(UserError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            run_task(compose_cfg("eval", [*common, *ts, *args]))
