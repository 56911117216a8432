"""The label-efficiency probe curve repeats the evaluation's linear probe."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ssl_pde.augment.views import LieViews
from ssl_pde.eval.protocol import evaluate_regression
from tests.eval_helpers import AUG, make_encoder, save_encoder, tiny_regression


def test_probe_curve_repeats_the_eval_linear_probe(burgers_splits, tmp_path):
    """scripts/probe_curve.py (a shell over ssl_pde.eval.curves) draws the labelled subsets and chooses the
    ridge strength on valid as evaluate_regression does: its 16-label cells equal ssl_linear's choices and
    test scores, and its floor the best constants'; a label count beyond train ends in one line, exit 2.
    scripts/plot_probe_curves.py plots the curve with supervised points read from results.json files."""
    data, root = burgers_splits
    ckpt = save_encoder(tmp_path / "encoder.pt")
    script = [sys.executable, str(Path(__file__).parents[1] / "scripts" / "probe_curve.py"), f"--ckpt={ckpt}"]
    args = [f"--data={root}", "--draws", "0", "1", f"--out={tmp_path / 'curve'}"]
    res = subprocess.run([*script, *args, "--labels", "8", "16"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads((tmp_path / "curve" / "probe_curve.json").read_text())
    assert [r["n_labels"] for r in doc["rows"]] == [8, 16] and doc["param"] == "nu"
    cfg = tiny_regression(
        methods=["ssl_linear", "supervised"], ridge_lambdas=[1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]
    )
    ref = evaluate_regression(
        [make_encoder(0)], lambda: make_encoder(0), LieViews(**AUG), data, cfg, True, torch.device("cpu")
    )
    for got, want in zip(doc["rows"][1]["per_cell"], ref["cells"], strict=True):
        assert got["lambda"] == want["choices"]["ssl_linear"]["lambda"]
        assert got["ssl_linear"]["nmse"] == pytest.approx(want["test"]["ssl_linear"]["nmse"], rel=1e-6)
        assert got["floor"] == pytest.approx(want["test"]["floor"], rel=1e-9)
    bad = subprocess.run([*script, *args, "--labels", "999"], capture_output=True, text=True)
    assert bad.returncode == 2 and "labels 999 must lie in [8, 24]" in bad.stderr, bad.stderr
    assert bad.stderr.count("\n") == 1
    # scripts/plot_probe_curves.py: the curve, its floor, and supervised points grouped by training budget
    spec = importlib.util.spec_from_file_location(
        "plot_probe_curves", Path(__file__).parents[1] / "scripts" / "plot_probe_curves.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    evals = []
    for i, (n, steps, mse) in enumerate(((64, 300, 0.009), (16, 300, 0.02), (1664, 780, 0.003))):
        res_doc = {
            "task": "regression",
            "n_labels": n,
            "result": {"summary": {"supervised": {"mse": [mse, mse / 10]}}},
            "config": {"regression": {"supervised": {"max_steps": steps}}},
        }
        (tmp_path / f"r{i}.json").write_text(json.dumps(res_doc))
        evals.append(("sup", tmp_path / f"r{i}.json"))
    got = mod.series([("ssl", tmp_path / "curve" / "probe_curve.json")], evals)
    assert got["ssl"]["n"] == [8, 16] and got["ssl"]["mean"] == [r["ssl_linear_mse"][0] for r in doc["rows"]]
    assert got[mod.FLOOR]["mean"] == [r["floor_mse"][0] for r in doc["rows"]]
    assert got["sup, at most 300 steps"]["n"] == [16, 64] and got["sup, at most 300 steps"]["mean"] == [0.02, 0.009]
    assert got["sup, at most 780 steps"]["std"] == [pytest.approx(3e-4)]
    mod.plot(got, tmp_path / "c.png", "t")
    assert (tmp_path / "c.png").stat().st_size > 0
    for flag, item, why in (
        ("--curve", "no-name", "must look like NAME=PATH"),
        ("--curve", f"x={tmp_path / 'missing.json'}", "no file"),
        ("--eval", f"sup={tmp_path / 'curve' / 'probe_curve.json'}", "not an ssl-pde-eval regression results.json"),
        ("--eval", f"x={tmp_path / 'c.png'}", "cannot read it as JSON"),
        ("--eval", f"ssl={tmp_path / 'r0.json'}", "series name 'ssl' is used twice"),
    ):
        extra = [] if flag == "--curve" else ["--curve", f"ssl={tmp_path / 'curve' / 'probe_curve.json'}"]
        with pytest.raises(SystemExit) as e:
            mod.main([flag, item, *extra, f"--out={tmp_path / 'd.png'}"])
        assert e.value.code == 2, why
    assert not (tmp_path / "d.png").exists()
