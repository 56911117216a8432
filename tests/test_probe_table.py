"""scripts/probe_table.py: the ablation screen's table of frozen probes, paired cell by cell."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import load_script


def _curve(path, test, valid, draws=(0, 1, 2), n_labels=(64,)):
    """A probe_curve.json with one pretraining seed: per label count, one cell per draw."""
    rows = [
        {
            "n_labels": n,
            "per_cell": [
                {"pretrain_seed_index": 0, "label_draw": d, "valid": v, "ssl_linear": {"nmse": t}}
                for d, t, v in zip(draws, test, valid, strict=True)
            ],
        }
        for n in n_labels
    ]
    doc = {"param": "nu", "n_test": 256, "label_draws": list(draws), "rows": rows}
    path.write_text(json.dumps(doc))
    return path


def test_ratios_are_paired_and_valid_chooses(tmp_path):
    """Ratio = reference / encoder of the test NMSE, geometric mean over the cells; the best valid score is
    marked, whatever test says."""
    pt = load_script("probe_table")
    a = _curve(tmp_path / "a.json", test=[0.10, 0.20, 0.40], valid=[0.3, 0.3, 0.3])
    b = _curve(tmp_path / "b.json", test=[0.05, 0.10, 0.25], valid=[0.4, 0.4, 0.4])
    res = pt.main([f"ref={a}", f"half={b}", "--out", str(tmp_path / "t")])
    block = res["by_labels"]["64"]
    ratio = block["rows"][1]["ratio"]
    assert ratio["ratio"] == pytest.approx((2 * 2 * 1.6) ** (1 / 3))
    assert 1.6 - 1e-9 <= ratio["low"] < ratio["high"] <= 2 + 1e-9
    assert ratio["verdict"] == "half wins"
    assert block["rows"][1]["test"][0] == pytest.approx(np.mean([0.05, 0.10, 0.25]))
    assert block["best_on_valid"] == "ref"
    assert "| ref | **0.300** |" in (tmp_path / "t.md").read_text()


def test_unpaired_or_unreadable_inputs_fail_in_one_line(tmp_path, capsys):
    """Other label draws, a missing file or a repeated name: exit 2, one line naming it, nothing written."""
    pt = load_script("probe_table")
    a = _curve(tmp_path / "a.json", test=[0.1, 0.2, 0.4], valid=[0.3] * 3)
    b = _curve(tmp_path / "b.json", test=[0.1, 0.2, 0.4], valid=[0.3] * 3, draws=(3, 4, 5))
    for argv, needle in (
        ([f"a={a}", f"b={b}"], "label draws [3, 4, 5]"),
        ([f"a={a}", f"b={tmp_path / 'none.json'}"], "none.json is not a readable"),
        ([f"a={a}", f"a={a}"], "given twice"),
    ):
        with pytest.raises(SystemExit) as e:
            pt.main([*argv, "--out", str(tmp_path / "t")])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "t.json").exists()


def test_cells_alike_get_no_interval_and_bad_cells_one_line(tmp_path, capsys):
    """All labels drawn makes every cell alike: a ratio without an interval or verdict. A NaN score or a missing
    field is a one-line refusal, not a traceback."""
    pt = load_script("probe_table")
    a = _curve(tmp_path / "a.json", test=[0.2, 0.2, 0.2], valid=[0.3] * 3)
    b = _curve(tmp_path / "b.json", test=[0.1, 0.1, 0.1], valid=[0.3] * 3)
    res = pt.main([f"a={a}", f"b={b}", "--out", str(tmp_path / "t.v1")])
    row = res["by_labels"]["64"]["rows"][1]
    assert row["ratio"]["ratio"] == pytest.approx(2.0) and row["ratio"]["verdict"] == "no interval"
    assert (tmp_path / "t.v1.json").is_file()  # suffix appended, not replacing ".v1"
    c = _curve(tmp_path / "c.json", test=[0.1, float("nan"), 0.2], valid=[0.3] * 3)
    doc = json.loads(a.read_text())
    del doc["rows"][0]["per_cell"][0]["valid"]
    (tmp_path / "d.json").write_text(json.dumps(doc))
    for other in (c, tmp_path / "d.json"):
        with pytest.raises(SystemExit) as e:
            pt.main([f"a={a}", f"o={other}", "--out", str(tmp_path / "u")])
        assert e.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
