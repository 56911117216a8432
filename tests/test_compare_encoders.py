"""scripts/compare_encoders.py: paired ratios of two evaluations of different encoders, on a stored evaluation
(docs/runs/burgers_study/ep960_lpft1_s012_n64.json: 3 pretraining seeds x 3 label draws) and altered copies."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.conftest import load_script

STORED = Path(__file__).resolve().parent.parent / "docs/runs/burgers_study/ep960_lpft1_s012_n64.json"


def _scaled(doc: dict, method: str, factor: float) -> dict:
    out = copy.deepcopy(doc)
    for c in out["result"]["cells"]:
        c["test"][method]["nmse"] *= factor
    return out


def _write(tmp_path: Path, name: str, doc: dict) -> Path:
    p = tmp_path / name / "results.json"
    p.parent.mkdir()
    p.write_text(json.dumps(doc))
    return p


def test_hand_made_ratios_and_verdicts(tmp_path, capsys):
    """B's fine-tuned NMSE 1.05x A's in every cell: ratio 1.05 with the interval [1.05, 1.05], A better, and B
    non-inferior at the 1.10 margin; 1.2x: inferiority not excluded; the untouched methods (the supervised one
    among them) have ratio 1 and no difference."""
    mod = load_script("compare_encoders")
    a = json.loads(STORED.read_text())
    b = _scaled(_scaled(a, "ssl_finetune", 1.05), "ssl_linear", 1.2)
    res = mod.main([str(_write(tmp_path, "a", a)), str(_write(tmp_path, "b", b)), "--names", "own", "mixed"])
    ft, lin, sup = (res["methods"][m] for m in ("ssl_finetune", "ssl_linear", "supervised"))
    assert (ft["ratio"], ft["low"], ft["high"]) == pytest.approx((1.05, 1.05, 1.05))
    assert ft["verdict"] == "own better" and ft["non_inferiority"] == "mixed non-inferior"
    assert lin["ratio"] == pytest.approx(1.2) and lin["non_inferiority"] == "inferiority not excluded"
    assert (sup["ratio"], sup["verdict"]) == (pytest.approx(1.0), "no difference shown")
    assert ft["own"] == pytest.approx(ft["mixed"] / 1.05)
    assert "| ssl_finetune |" in capsys.readouterr().out


def test_other_labels_or_settings_are_refused(tmp_path, capsys):
    """Another label draw (a cell's floor differs) or another evaluation setting: exit 2 with one line."""
    mod = load_script("compare_encoders")
    a = json.loads(STORED.read_text())
    other_draw = copy.deepcopy(a)
    other_draw["result"]["cells"][0]["choices"]["floor"] = {"c": 0.5}
    other_budget = copy.deepcopy(a)
    other_budget["config"]["regression"]["finetune"]["max_steps"] = 7
    pa = _write(tmp_path, "a", a)
    for name, doc, words in (("d", other_draw, "other labelled targets"), ("s", other_budget, "['regression']")):
        with pytest.raises(SystemExit) as e:
            mod.main([str(pa), str(_write(tmp_path, name, doc))])
        assert e.value.code == 2 and words in capsys.readouterr().err
