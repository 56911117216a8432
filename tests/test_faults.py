"""Fault injection (opt-in: ``pytest -m faults``): real commands killed with SIGKILL at random moments, then resumed.

Each test runs the console command as a subprocess, kills it at a moment drawn from a seeded generator
(uniform over the uninterrupted run's duration, measured first), checks what is on disk right after the kill,
and resumes with the same command. A chain of kills and resumes that completes is compared with the
uninterrupted run; the next chain starts in a fresh directory, until the required number of kills is reached.
Results and timings: ``docs/reliability.md``.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from ssl_pde import CONFIG_DIR
from ssl_pde.data.schema import list_shards, validate_shard
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.faults
ENV = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(CONFIG_DIR.parent), "OMP_NUM_THREADS": "1"}


def _run(module: str, args: list[str], kill_after: float | None = None) -> tuple[bool, float]:
    """Run ``python -m module args``; SIGKILL it after ``kill_after`` seconds unless it ended first.

    Returns (killed, seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV
    )
    try:
        _, err = proc.communicate(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        return True, time.perf_counter() - t0
    assert proc.returncode == 0, err.decode()[-3000:]
    return False, time.perf_counter() - t0


def _datasets(directory: Path) -> list[dict[str, np.ndarray]]:
    out = []
    for p in list_shards(directory):
        with h5py.File(p) as f:
            out.append({k: f[k][...] for k in ("u", "t", "x", "seed")})
    return out


def test_generation_survives_20_random_kills(tmp_path):
    """20 kills of ``ssl-pde-generate`` (KS, 12 shards of 2): after every kill each file with a shard's final
    name is complete and valid; every resumed chain ends bit-identical (all datasets) to an uninterrupted run, with
    no temporary or lock file left."""
    args = [
        *tiny_overrides("ks", t_end=40.0, nt_total=161),
        *("num_samples=24", "shard_size=2", "batch_size=2", "device=cpu", "progress=false"),
    ]
    module = "data_gen.cli.generate"
    _, t_full = _run(module, [*args, f"out_dir={tmp_path / 'ref'}"])
    ref = _datasets(tmp_path / "ref")
    rng = np.random.default_rng(20261130)
    kills, chains = 0, 0
    while kills < 20:
        out = tmp_path / f"chain{chains}"
        chains += 1
        while True:
            last = kills == 20
            killed, _ = _run(module, [*args, f"out_dir={out}"], None if last else rng.uniform(0.2, 1.0) * t_full)
            if not killed:
                break
            kills += 1
            for p in list_shards(out):  # nothing is readable as complete unless it is
                validate_shard(p)
        split = out / "ks" / "train"
        assert not [p for p in split.iterdir() if not p.name.endswith(".h5")], list(split.iterdir())
        got = _datasets(out)
        assert len(got) == len(ref) == 12
        for a, b in zip(ref, got, strict=True):
            assert all(np.array_equal(a[k], b[k]) for k in a)
    assert kills == 20


def _metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_pretraining_survives_10_random_kills(tmp_path, burgers_data):
    """10 kills of ``ssl-pde-pretrain`` (debug=smoke, 12 epochs), each resumed with ``ckpt_path=last`` (or started
    again when no checkpoint was written yet): every chain ends with the whole metric history (each epoch once,
    steps strictly increasing, as many training rows as the uninterrupted run) and with the uninterrupted run's
    final encoder weights, bit for bit (CPU, one thread: the data order, the views and the optimiser state are all
    restored or re-derived from the seed)."""
    module = "ssl_pde.cli.pretrain"
    base = ["debug=smoke", f"data.dir={burgers_data}", "logger=csv", "trainer.max_epochs=12"]
    _, t_full = _run(module, [*base, f"run_dir={tmp_path / 'ref'}"])
    ref_rows = [r for r in _metrics(tmp_path / "ref") if r["train/loss"]]
    ref_w = torch.load(tmp_path / "ref" / "encoder.pt", weights_only=True)["state_dict"]
    rng = np.random.default_rng(20261201)
    kills, chains = 0, 0
    while kills < 10:
        run = tmp_path / f"chain{chains}"
        chains += 1
        while True:
            resume = ["ckpt_path=last"] if (run / "checkpoints" / "last.ckpt").exists() else []
            limit = None if kills == 10 else rng.uniform(0.3, 1.0) * t_full
            killed, _ = _run(module, [*base, f"run_dir={run}", *resume], limit)
            if not killed:
                break
            kills += 1
        rows = [r for r in _metrics(run) if r["train/loss"]]
        steps = [int(r["step"]) for r in rows]
        assert steps == sorted(set(steps)) and len(rows) == len(ref_rows), (steps, len(ref_rows))
        epochs = sorted({int(float(r["epoch"])) for r in _metrics(run) if r.get("epoch")})
        assert epochs == list(range(12)), epochs
        w = torch.load(run / "encoder.pt", weights_only=True)["state_dict"]
        assert all(torch.equal(ref_w[k], w[k]) for k in ref_w), "resumed weights differ from the uninterrupted run"
    assert kills == 10
