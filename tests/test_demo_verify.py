"""The demo and the verify command through their real entry points, at a tiny size."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from data_gen.cli.verify import main as verify_main
from ssl_pde.data.schema import list_shards, validate_shard
from tests.conftest import TINY


def test_demo_tiny(tmp_path):
    """ssl-pde-demo runs every stage at a tiny size: all splits generated and valid, Radau agreement, a
    trajectory figure, pretraining with an exported encoder, the regression protocol's table (every method
    and the floor) with its figures, and the paired ratios with their interval over label draws. The console gets
    a short report (at most 40 lines, no warnings, no Lightning or W&B messages); the rest is in demo.log."""
    small = TINY["burgers"]
    args = [f"solver.{k}={v}" for k, v in small.items()] + [
        f"out_dir={tmp_path}",
        "splits.train=24",
        "splits.valid=8",
        "splits.test=8",
        "shard_size=16",
        "batch_size=8",
        "device=cpu",
        "pretrain=['debug=smoke','logger=csv']",
        "eval=['regression.n_labels=8','regression.label_draws=[0,1,2]','regression.mlp.max_steps=20',"
        "'regression.finetune.max_steps=3','regression.supervised.max_steps=3','regression.finetune.eval_every=1',"
        "'regression.supervised.eval_every=1']",
    ]
    res = subprocess.run([sys.executable, "-m", "ssl_pde.cli.demo", *args], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    counts = {
        s: sum(validate_shard(p).n for p in list_shards(tmp_path / "burgers" / s)) for s in ("train", "valid", "test")
    }
    assert counts == {"train": 24, "valid": 8, "test": 8}
    assert (tmp_path / "figures" / "trajectories.png").stat().st_size > 10_000
    line = next(ln for ln in res.stdout.splitlines() if "max relative L2 difference" in ln)
    assert float(line.rsplit(" ", 1)[1]) < 1e-6
    assert (tmp_path / "pretrain" / "encoder.pt").is_file()
    doc = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert doc["n_labels"] == 8 and len(doc["result"]["cells"]) == 3
    for m in ("ssl_linear", "ssl_mlp", "ssl_finetune", "random_init", "supervised", "floor"):
        assert all(np.isfinite(c["test"][m]["nmse"]) for c in doc["result"]["cells"]), m
    assert "| SSL encoder, frozen + linear (ridge) |" in res.stdout and "| best constant (floor) |" in res.stdout
    assert "| SSL encoder fine-tuned end to end |" in res.stdout and "over label draws only" in res.stdout
    assert "max relative L2 difference" in res.stdout
    shown = res.stdout + res.stderr
    assert len(shown.strip().splitlines()) <= 40, shown
    for noise in ("Warning", "warn(", "wandb:", "Tip:", "GPU available", "LightningModule", "Epoch "):
        assert noise not in shown, noise
    log = (tmp_path / "demo.log").read_text()
    assert "GPU available" in log and "data_gen.cli.generate" in log  # moved to the log, not lost
    assert (tmp_path / "eval" / "pred_vs_true.png").is_file()


def test_demo_bad_input(tmp_path):
    """A bad demo setting ends with one line and exit status 2."""
    res = subprocess.run(
        [sys.executable, "-m", "ssl_pde.cli.demo", "solver.nu_min=-1", f"out_dir={tmp_path}/d"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and res.stderr.startswith("error:") and "nu_min" in res.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("pde", ["ks"])
def test_verify_report(cli, tmp_path, pde):
    """ssl-pde-verify prints and writes the three studies; its numbers show 4th-order-ish time convergence,
    spectral space convergence and agreement with Radau."""
    out = tmp_path / "v.md"
    args = [
        f"pde={pde}",
        "device=cpu",
        "n_trajectories=2",
        f"out={out}",
        "solver.length=22.0",
        "solver.nx=32",
        "solver.solver_nx=64",
        "studies.ks.grids=[16,32]",
        "studies.ks.reference_nx=64",
        "studies.ks.t_end=1.0",
        "studies.ks.nt=11",
        "studies.ks.substeps=[2,4,8]",
    ]
    res = cli(verify_main, *args)
    assert res.returncode == 0, res.stderr
    text = out.read_text()
    for head in ("## Time refinement", "## Grid refinement", "## Agreement with scipy Radau"):
        assert head in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and ln.count("|") == 4 and "e-" in ln]
    orders = [float(r.split("|")[3]) for r in rows[:3] if r.split("|")[3].strip() != "nan"]
    assert orders and 3.3 < orders[-1] < 4.7
    assert float(text.split("Max relative L2 difference: **")[1].split("*")[0]) < 1e-6
