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


#: A hand-written stand-in for inductor's CPU wrapper (the format of torch 2.13's): two inputs, a fresh buffer, a
#: view of part of it handed to a loop beside its base, a reused buffer, a fused loop called twice, a matmul and a
#: batched matmul with a broadcast (stride-0) operand.
WRAPPER = """
cpp_fused_add_0 = async_compile.cpp_pybinding(['const double*', 'const double*', 'double*'], r'''...''')
cpp_fused_mul_1 = async_compile.cpp_pybinding(['const double*', 'double*', 'double*'], r'''...''')
def call(args):
    arg0_1, arg1_1 = args
    assert_size_stride(arg0_1, (1, 4, 4), (16, 4, 1), 'input')
    assert_size_stride(arg1_1, (4, 4), (4, 1), 'input')
    buf0 = empty_strided_cpu((1, 4, 4), (16, 4, 1), torch.float64)
    buf1 = reinterpret_tensor(buf0, (1, 2, 4), (16, 4, 1), 0)  # alias
    cpp_fused_add_0(arg0_1, arg1_1, buf0)
    buf2 = buf0; del buf0  # reuse
    extern_kernels.mm(reinterpret_tensor(arg0_1, (4, 4), (4, 1), 0), arg1_1, out=buf2)
    cpp_fused_mul_1(buf2, buf1, buf2)
    cpp_fused_mul_1(buf2, buf1, buf2)
    buf3 = empty_strided_cpu((2, 4, 4), (16, 4, 1), torch.float64)
    buf4 = empty_strided_cpu((2, 4, 4), (16, 4, 1), torch.float64)
    extern_kernels.bmm(reinterpret_tensor(arg1_1, (2, 4, 4), (0, 4, 1), 0), buf3, out=buf4)
    return (buf2, )
"""


def test_generated_code_arrays_by_hand():
    """scripts/ns2d_kernels.py counts, per call of a generated loop, its array arguments' sizes (from the inputs'
    asserts, allocations, views and reuses in program order; a view handed beside its base counted both), and per
    matmul its operands and output (a broadcast operand once). By hand: add 16+16+16 = 48, mm 16+16+16 = 48, mul
    twice 16+8+16 = 40, bmm 16 (the stride-0 operand) + 32 + 32 = 80: 256 elements, 16 arrays of one 4 x 4 field,
    against the compulsory 66. A library call that is not a matmul, or a name with no size, is listed as unknown
    and makes the total unknown."""
    kern = load_script("ns2d_kernels")
    parsed = kern.parse_wrapper(WRAPPER)
    assert parsed["kernels"] == {"cpp_fused_add_0": 3, "cpp_fused_mul_1": 3} and parsed["unknown"] == []
    assert [(c["name"], c["elements"]) for c in parsed["calls"]] == [
        ("cpp_fused_add_0", 48),
        ("mm", 48),
        ("cpp_fused_mul_1", 40),
        ("cpp_fused_mul_1", 40),
        ("bmm", 80),
    ]
    s = kern.summarise(parsed, n=4, batch=1)
    assert s["loops"]["cpp_fused_mul_1"]["calls"] == 2 and s["loops"]["cpp_fused_mul_1"]["elements"] == 80
    assert s["array_passes_per_step"] == pytest.approx(256 / 16)
    assert s["ratio_to_compulsory"] == pytest.approx(256 * 8 / (66 * 16 * 8))
    two = kern.parse_wrappers([WRAPPER, WRAPPER])  # two graphs: each parsed with its own names
    assert len(two["calls"]) == 10 and kern.summarise(two, 4, 1)["array_passes_per_step"] == pytest.approx(32)
    addmm = "    extern_kernels.addmm(buf2, buf2, buf2, out=buf2)\n"
    other = kern.parse_wrapper(WRAPPER.replace("    return", addmm + "    return"))
    assert other["unknown"] == ["extern:addmm"]
    broken = kern.parse_wrapper(WRAPPER.replace("    assert_size_stride(arg1_1, (4, 4), (4, 1), 'input')\n", ""))
    assert broken["unknown"] == ["arg1_1"] and kern.summarise(broken, 4, 1)["bytes_per_step"] is None
