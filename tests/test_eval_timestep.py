"""task=timestep: persistence floor, conditionings chosen on the valid rollout, paired comparisons, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from ssl_pde.core.errors import UserError
from tests.conftest import compose_cfg
from tests.eval_helpers import save_encoder


def test_eval_timestep_cli(burgers_splits, tmp_path):
    """task=timestep in process: the persistence floor, three conditionings chosen on the valid rollout,
    true-parameter conditioning on every varying dynamics parameter (nu here), paired comparisons; refusals."""
    from ssl_pde.cli.eval import run_task

    _, root = burgers_splits
    ckpt = save_encoder(tmp_path / "encoder.pt")
    ts = [
        "task=timestep",
        f"ckpt={ckpt}",
        f"data.dir={root}",
        "device=cpu",
        "wandb.enabled=false",
        "timestep.history=4",
        "timestep.future=2",
        "timestep.search.max_steps=4",
        "timestep.search.eval_every=2",
        "timestep.search.lrs=[1e-3,3e-3]",
        "timestep.width=8",
        "timestep.ssl_dims=3",
    ]
    doc = run_task(compose_cfg("eval", [*ts, "timestep.arch=fno", "timestep.seeds=[0,1]", f"out_dir={tmp_path}"]))
    r = doc["result"]
    assert r["param_conditions"] == ["nu"] and r["rollout_start"] == 4 and r["frames"] == 6
    for cell in r["cells"]:
        assert set(cell["test"]) == {"persistence", "none", "param", "ssl"}
        assert all(np.isfinite(v["rollout_nmse"]) and v["frames"] == 6 for v in cell["test"].values())
        assert all(len(c["candidates"]) == 2 for c in cell["choices"].values())
    assert set(r["comparisons"]) == {"none/param", "none/ssl", "param/ssl"}
    assert "persistence (floor" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "rollouts.png").is_file() and not (tmp_path / "wandb").exists()
    for args, msg in (
        (["timestep.history=10", "timestep.future=5"], "timestep.future=5 exceeds the 11 frames"),
        (["timestep.arch=transformer"], "unknown timestep.arch 'transformer'"),
        (["timestep.arch=unet"], "timestep.arch=unet does not fit 1D data (use one of: cnn, fno)"),
        (["timestep.variants=[none,oracle]"], "unknown timestep variant 'oracle'"),
    ):
        with pytest.raises(UserError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            run_task(compose_cfg("eval", [*ts, *args]))
