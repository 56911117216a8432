"""scripts/bench_ns2d.py: the compulsory byte count, the report's rows, and timing another commit's generator."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parent.parent


def test_compulsory_bytes_by_hand():
    """66 float64 field arrays per step (20, 23, 23 per stage: the docstring's count), for 2 trajectories of 8 x 4."""
    bench = load_script("bench_ns2d")
    assert bench.ns2d_step_bytes(2, 8, 4) == (20 + 23 + 23) * 2 * 8 * 4 * 8


def test_report_rows_and_fractions(tmp_path):
    """A tiny in-process run: every requested variant has a row with its rate, ratio and triad fraction; the
    numbers in the JSON are consistent with each other (bytes / seconds, ratio to the first row)."""
    bench = load_script("bench_ns2d")
    argv = ["--device", "cpu", "--threads", "1", "--n-batch", "2", "--ns2d-steps", "2", "--phiflow-steps", "0"]
    argv += ["--variants", "eager-fft", "eager", "--baseline-rev", "", "--ceiling-seconds", "0.3"]
    bench.main([*argv, "--out", str(tmp_path), "--tag", "t"])
    data = json.loads((tmp_path / "datagen_ns2d_t.json").read_text())
    rows = data["results"]["batches"]["2"]["variants"]
    assert set(rows) == {"eager-fft", "eager"}
    nbytes = data["results"]["batches"]["2"]["bytes_per_step"]
    for r in rows.values():
        assert r["bytes_per_s"] == pytest.approx(nbytes / r["seconds_per_step"])
        assert r["fraction_of_triad"] == pytest.approx(r["bytes_per_s"] / data["ceilings"]["triad_bytes_per_s"])
    assert rows["eager-fft"]["speedup_vs_today"] == pytest.approx(1.0)  # no baseline: the first row is "today"
    md = (tmp_path / "datagen_ns2d_t.md").read_text()
    assert "| eager-fft | 2 |" in md and "| eager | 2 |" in md and "of triad" in md


def test_baseline_commit_timed_from_its_own_tree():
    """The 'today' row runs an exported tree of a commit in a subprocess: here HEAD, whose generator imports and
    steps (the row records the commit it timed)."""
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout: no commit to export")
    bench = load_script("bench_ns2d")
    solver = {"nx": 8, "ny": 8, "nt": 2, "t_start": 1.0, "t_end": 2.0, "dt_max": 0.1}
    seeds = np.array([1, 2], dtype=np.int64)
    row = bench.time_baseline("HEAD", solver, seeds, 2, "cpu")
    assert row["commit"] == head.stdout.strip() and row["seconds_per_step"] > 0
