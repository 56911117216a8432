"""Fault injection (opt-in: ``pytest -m faults``): real commands killed with SIGKILL at random moments, then resumed.

Each test runs the console command as a subprocess, kills it at a moment drawn from a seeded generator
(uniform over the uninterrupted run's duration, measured first), checks what is on disk right after the kill,
and resumes with the same command. A chain of kills and resumes that completes is compared with the
uninterrupted run; the next chain starts in a fresh directory, until the required number of kills is reached.
Results and timings: ``docs/reliability.md``.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from ssl_pde.data.schema import list_shards, validate_shard
from tests.conftest import REPO_ROOT, tiny_overrides

pytestmark = pytest.mark.faults
ENV = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}


def _run(
    module: str, args: list[str], kill_after: float | None = None, watch: Path | None = None
) -> tuple[bool, float, float | None]:
    """Run ``python -m module args``; SIGKILL it after ``kill_after`` seconds unless it ended first.

    Returns (killed, seconds, when ``watch`` first existed in seconds or None)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV
    )
    seen = None
    while proc.poll() is None:
        now = time.perf_counter() - t0
        if seen is None and watch is not None and watch.exists():
            seen = now
        if kill_after is not None and now >= kill_after:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
            return True, now, seen
        time.sleep(0.01)
    _, err = proc.communicate()
    assert proc.returncode == 0, err.decode()[-3000:]
    return False, time.perf_counter() - t0, seen


def _kill_chains(
    n_kills: int,
    seed: int,
    window: tuple[float, float],
    start: Callable[[int], list[str]],
    module: str,
    after_kill: Callable[[int], None] = lambda chain: None,
) -> tuple[list[dict], int]:
    """Chains of kills and resumes: each attempt is killed at a moment uniform in ``window`` (seconds) until
    ``n_kills`` kills; the last attempt of a chain runs to the end. ``start(chain)`` gives an attempt's arguments
    (it may look at the disk to add the resume option); ``after_kill(chain)`` checks the disk right after a kill.
    Returns a record of every attempt and the chain count."""
    rng = np.random.default_rng(seed)
    record, kills, chain = [], 0, 0
    while kills < n_kills:
        while True:
            limit = None if kills == n_kills else float(rng.uniform(*window))
            killed, seconds, _ = _run(module, start(chain), limit)
            record.append({"chain": chain, "killed": killed, "seconds": round(seconds, 2)})
            if not killed:
                break
            kills += 1
            after_kill(chain)
        chain += 1
    return record, chain


def _report(name: str, doc: dict) -> None:
    """Print the record; also write it as JSON when ``SSL_PDE_FAULTS_REPORT`` names a directory."""
    print(json.dumps(doc))
    out = os.environ.get("SSL_PDE_FAULTS_REPORT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"{name}.json").write_text(json.dumps(doc, indent=1))


def _datasets(directory: Path) -> list[dict[str, np.ndarray]]:
    out = []
    for p in list_shards(directory):
        with h5py.File(p) as f:
            out.append({k: f[k][...] for k in ("u", "t", "x", "seed")})
    return out


def test_generation_survives_20_random_kills(tmp_path):
    """20 kills of ``ssl-pde-generate`` (KS, 12 shards of 2) at moments uniform over the uninterrupted run's
    generation phase (from its first shard to its end): after every kill each file with a shard's final name is
    complete and valid; every resumed chain ends bit-identical (all datasets) to an uninterrupted run, with no
    temporary or lock file left."""
    args = [
        *tiny_overrides("ks", t_end=40.0, nt_total=161),
        *("num_samples=24", "shard_size=2", "batch_size=2", "device=cpu", "progress=false"),
    ]
    module = "data_gen.cli.generate"
    ref_dir = tmp_path / "ref"
    _, t_full, t_first = _run(module, [*args, f"out_dir={ref_dir}"], watch=ref_dir / "ks" / "train" / "shard-00000.h5")
    ref = _datasets(ref_dir)
    outs = lambda chain: tmp_path / f"chain{chain}"  # noqa: E731

    def check(chain: int) -> None:
        for p in list_shards(outs(chain)):  # nothing is readable as complete unless it is
            validate_shard(p)

    window = (0.8 * t_first, t_full)
    record, chains = _kill_chains(20, 20261130, window, lambda c: [*args, f"out_dir={outs(c)}"], module, check)
    for chain in range(chains):
        split = outs(chain) / "ks" / "train"
        assert not [p for p in split.iterdir() if not p.name.endswith(".h5")], list(split.iterdir())
        got = _datasets(outs(chain))
        assert len(got) == len(ref) == 12
        for a, b in zip(ref, got, strict=True):
            assert all(np.array_equal(a[k], b[k]) for k in a)
    kills = sum(r["killed"] for r in record)
    assert kills == 20
    _report("generation", {"kills": kills, "chains": chains, "t_full": t_full, "t_first": t_first, "attempts": record})


def _metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_pretraining_survives_10_random_kills(tmp_path, burgers_data):
    """10 kills of ``ssl-pde-pretrain`` (debug=smoke, 12 epochs) at moments uniform over the uninterrupted run's
    training phase (from its first checkpoint to its end), each resumed with ``ckpt_path=last``: every chain ends
    with the whole metric history (each epoch once, steps strictly increasing, as many training rows as the
    uninterrupted run) and with the uninterrupted run's final encoder weights, bit for bit (CPU, one thread: the
    data order, the views and the optimiser state are all restored or re-derived from the seed)."""
    module = "ssl_pde.cli.pretrain"
    base = ["debug=smoke", f"data.dir={burgers_data}", "logger=csv", "trainer.max_epochs=12"]
    ref_dir = tmp_path / "ref"
    _, t_full, t_first = _run(module, [*base, f"run_dir={ref_dir}"], watch=ref_dir / "checkpoints" / "last.ckpt")
    ref_rows = [r for r in _metrics(ref_dir) if r["train/loss"]]
    ref_w = torch.load(ref_dir / "encoder.pt", weights_only=True)["state_dict"]
    runs = lambda chain: tmp_path / f"chain{chain}"  # noqa: E731

    def start(chain: int) -> list[str]:
        resume = ["ckpt_path=last"] if (runs(chain) / "checkpoints" / "last.ckpt").exists() else []
        return [*base, f"run_dir={runs(chain)}", *resume]

    record, chains = _kill_chains(10, 20261201, (t_first, t_full), start, module)
    for chain in range(chains):
        rows = [r for r in _metrics(runs(chain)) if r["train/loss"]]
        steps = [int(r["step"]) for r in rows]
        assert steps == sorted(set(steps)) and len(rows) == len(ref_rows), (steps, len(ref_rows))
        epochs = sorted({int(float(r["epoch"])) for r in _metrics(runs(chain)) if r.get("epoch")})
        assert epochs == list(range(12)), epochs
        w = torch.load(runs(chain) / "encoder.pt", weights_only=True)["state_dict"]
        assert all(torch.equal(ref_w[k], w[k]) for k in ref_w), "resumed weights differ from the uninterrupted run"
    kills = sum(r["killed"] for r in record)
    assert kills == 10
    _report("pretraining", {"kills": kills, "chains": chains, "t_full": t_full, "t_first": t_first, "attempts": record})
