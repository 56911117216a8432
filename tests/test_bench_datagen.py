"""scripts/bench_datagen.py: the ETDRK4 compulsory byte count and its fraction of the triad ceiling in the table."""

from __future__ import annotations

from tests.conftest import load_script


def test_etdrk4_bytes_and_fraction_column():
    """34 float64 arrays of the solver grid per step (hand count in the docstring); the table shows the achieved
    compulsory GB/s and its share of the measured triad bandwidth."""
    bench = load_script("bench_datagen")
    report = load_script("bench_datagen_report")
    assert bench.etdrk4_step_bytes(256) == 34 * 256 * 8
    nbytes = 100 * 4 * bench.etdrk4_step_bytes(256)  # 100 steps of a batch of 4
    results = {
        "ks": {
            "usable_cores": 2,
            "setting": {"solver_nx": 256, "nx": 256, "nt": 140, "nt_total": 500},
            "full": {"etdrk4": {"traj_per_s": 8.0, "bytes_per_s": nbytes / 0.5}},
        }
    }
    head, rows, _, _ = report.table_rows(results, triad=2 * nbytes)
    cell = rows[0][head.index("ETDRK4 GB/s compulsory (of triad)")]
    assert cell == f"{nbytes / 0.5 / 1e9:.3g} (100 %)"
    head, rows, _, _ = report.table_rows(results)
    assert rows[0][head.index("ETDRK4 GB/s compulsory (of triad)")] == f"{nbytes / 0.5 / 1e9:.3g}"
