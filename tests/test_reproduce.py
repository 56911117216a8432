"""The reproduction driver (scripts/reproduce.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import compose_cfg, tiny_overrides

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reproduce.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env)


def _script():
    """scripts/reproduce.py as a module, loaded from its path (the dry run needs no subprocess)."""
    spec = importlib.util.spec_from_file_location("reproduce", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_dry_run_lists_every_step(cli, tmp_path):
    """--dry-run records, per PDE, generation of three splits, one pretraining per pretraining seed, one
    regression (over every seed's encoder) per labelled-set size and one time-stepping run per stepper, in
    commands.sh, and runs nothing."""
    res = cli(_script().main, "--scale", "cpu", "--pdes", "kdv", "ks", "--out", str(tmp_path), "--dry-run")
    assert res.returncode == 0, res.stderr
    lines = (tmp_path / "commands.sh").read_text().splitlines()
    for pde in ("kdv", "ks"):
        mine = [ln for ln in lines if f"/{pde}/" in ln or f"pde={pde}" in ln]
        assert sum(ln.startswith("ssl-pde-generate") for ln in mine) == 3
        pre = [ln for ln in mine if ln.startswith("ssl-pde-pretrain") and f"experiment={pde}_vicreg" in ln]
        assert [next(a for a in ln.split() if a.startswith("seed=")) for ln in pre] == ["seed=0", "seed=1", "seed=2"]
        assert sum("regression.n_labels=64" in ln for ln in mine) == 1
        assert sum("regression.n_labels=256" in ln for ln in mine) == 1
        assert all(f"pretrain_s{s}/encoder.pt" in ln for ln in mine if "n_labels" in ln for s in (0, 1, 2))
        cache = f"regression.baseline_cache={tmp_path / pde / 'baseline_cache'}"  # one per PDE, every variant
        assert all(cache in ln.split() for ln in mine if "n_labels" in ln)
        assert {a for ln in mine for a in ("cnn", "fno") if f"timestep.arch={a}" in ln} == {"cnn", "fno"}
    assert not (tmp_path / "kdv").exists()
    # ns2d has its own settings: splits, the laptop experiment, and the 2D U-Net stepper only
    ns = tmp_path / "ns"
    res = cli(_script().main, "--scale", "cpu", "--pdes", "ns2d", "--out", str(ns), "--dry-run")
    assert res.returncode == 0, res.stderr
    lines = (ns / "commands.sh").read_text().splitlines()
    assert any("split=train" in ln and "num_samples=2048" in ln and "solver=ns2d_small" in ln for ln in lines)
    assert sum("experiment=ns2d_cpu" in ln for ln in lines) == 3
    steps = [ln for ln in lines if "task=timestep" in ln]
    assert len(steps) == 1 and "timestep.arch=unet" in steps[0] and "eval_scale=ns2d_cpu" in steps[0]
    bad = cli(_script().main, "--scale", "huge", "--out", str(tmp_path))
    assert bad.returncode == 2 and "huge" in bad.stderr


@pytest.mark.parametrize("scale", ["tiny", "cpu", "paper"])
def test_every_scale_composes_for_every_pde(scale):
    """configs/reproduce/<scale>.yaml: every command's config choices compose with the real configs (a misspelt
    solver, experiment or eval_scale fails here, not hours into a run)."""
    mod = _script()
    cfg = mod.load_scale(scale)
    for pde in mod.PDE_NAMES:
        gen = compose_cfg("generate", [f"pde={pde}", *mod.setting(cfg, "generate", pde)])
        assert gen.pde.name == pde
        experiment = mod.setting(cfg, "experiment", pde) or f"{pde}_vicreg"
        pre = compose_cfg("pretrain", [f"experiment={experiment}", *mod.setting(cfg, "pretrain", pde)])
        assert pre.pde.name == pde
        ev = compose_cfg("eval", ["ckpt=x", *mod.setting(cfg, "eval", pde)])
        assert ev.timestep.search.max_steps > 0
    assert mod.setting(cfg, "archs", "ns2d") == ["unet"]


def test_independent_steps_run_side_by_side(tmp_path):
    """Runner.side_by_side with jobs=2: both steps run (two tiny generations at once, one thread each), each with
    its output in logs/ and its time recorded; a failing step ends the run with one line naming its log."""
    mod = _script()
    run = mod.Runner(tmp_path, dry_run=False)
    run.jobs = 2
    tiny = [*tiny_overrides("ks"), "progress=false"]
    with run.side_by_side():
        for split in ("train", "valid"):
            run(f"ks/generate/{split}", "generate", [*tiny, f"split={split}", "num_samples=2", f"out_dir={tmp_path}"])
    assert set(run.times) == {"ks/generate/train", "ks/generate/valid"}
    assert (tmp_path / "ks" / "train" / "shard-00000.h5").is_file() and (tmp_path / "ks" / "valid").is_dir()
    assert "wrote" in (tmp_path / "logs" / "ks_generate_train.log").read_text()
    with pytest.raises(SystemExit) as info, run.side_by_side():
        run("ks/generate/bad", "generate", [*tiny, "num_samples=-1", f"out_dir={tmp_path}"])
        run("ks/generate/test", "generate", [*tiny, "split=test", "num_samples=2", f"out_dir={tmp_path}"])
    assert "ks/generate/bad (exit 2" in str(info.value) and "ks_generate_bad.log" in str(info.value)
    assert (tmp_path / "ks" / "test" / "shard-00000.h5").is_file()  # the other step still finished


@pytest.mark.slow
def test_tiny_reproduction_end_to_end(tmp_path):
    """The whole driver at the tiny scale for KS: every step runs, the summary has a regression row and
    one time-stepping row per stepper with finite numbers; a second invocation skips all finished steps."""
    res = _run("--scale", "tiny", "--pdes", "ks", "--out", str(tmp_path), "--device", "cpu")
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert set(doc["pdes"]["ks"]["timestep"]) == {"cnn", "fno"}
    assert "16" in doc["pdes"]["ks"]["regression"]
    md = (tmp_path / "summary.md").read_text()
    assert md.count("| ks |") == 3 and "nan" not in md
    first = doc["step_seconds"]
    assert len(first) == 3 + 1 + 1 + 2  # generation of 3 splits, 1 pretraining seed, 1 regression, 2 steppers
    again = _run("--scale", "tiny", "--pdes", "ks", "--out", str(tmp_path), "--device", "cpu")
    assert again.returncode == 0
    # generation is re-invoked (it resumes and finds every shard done); nothing else reruns, so the recorded
    # times of the other steps are those of the first invocation
    second = json.loads((tmp_path / "summary.json").read_text())["step_seconds"]
    assert {k: v for k, v in second.items() if "/generate/" not in k} == {
        k: v for k, v in first.items() if "/generate/" not in k
    }
    assert "ssl-pde-pretrain" not in again.stdout


def test_a_variant_runs_beside_the_scale_and_the_study_table_reads_both(cli, tmp_path):
    """--variant NAME: its pretraining and evaluations under <pde>/NAME/ with its overrides appended, the data
    shared; overrides without a variant are refused. scripts/study_table.py then lists each variant's valid and
    test scores side by side (here on two hand-written result files)."""
    res = cli(
        _script().main,
        *("--scale", "cpu", "--pdes", "ks", "--out", str(tmp_path), "--dry-run", "--variant", "noscale"),
        *("--pretrain-args", "augment.strengths.scaling=0", "--eval-args", "regression.mlp.max_steps=10"),
        *("--tasks", "regression"),
    )
    assert res.returncode == 0, res.stderr
    lines = (tmp_path / "commands.sh").read_text().splitlines()
    pre = [ln for ln in lines if ln.startswith("ssl-pde-pretrain")]
    assert len(pre) == 3 and all(f"run_dir={tmp_path}/ks/noscale/pretrain_s" in ln for ln in pre)
    assert all(ln.endswith("augment.strengths.scaling=0") for ln in pre)
    assert all(f"data.dir={tmp_path}/ks/data" in ln for ln in lines if not ln.startswith("ssl-pde-generate"))
    assert all("regression.mlp.max_steps=10" in ln for ln in lines if ln.startswith("ssl-pde-eval"))
    assert not any("task=timestep" in ln for ln in lines)  # --tasks regression
    bad = cli(_script().main, "--scale", "cpu", "--out", str(tmp_path), "--dry-run", "--pretrain-args", "seed=3")
    assert bad.returncode != 0 and "need --variant" in bad.stderr + str(bad.stdout)
    # an evaluation-only variant: the scale's encoders, one labelled-set size, nothing pretrained
    ev = tmp_path / "ev"
    res = cli(
        _script().main,
        *("--scale", "cpu", "--pdes", "ks", "--out", str(ev), "--dry-run", "--variant", "long", "--labels", "64"),
        *("--encoders-of", "", "--eval-args", "regression.finetune.max_steps=1000", "--tasks", "regression"),
    )
    assert res.returncode == 0, res.stderr
    lines = (ev / "commands.sh").read_text().splitlines()
    assert not any(ln.startswith("ssl-pde-pretrain") for ln in lines)
    evals = [ln for ln in lines if ln.startswith("ssl-pde-eval")]
    assert len(evals) == 1 and "regression.n_labels=64" in evals[0] and f"out_dir={ev}/ks/long/eval_" in evals[0]
    assert all(f"{ev}/ks/pretrain_s{s}/encoder.pt" in evals[0] for s in (0, 1, 2))
    assert evals[0].endswith("regression.finetune.max_steps=1000")
    for extra in (("--pretrain-args", "seed=3"), ()):
        bad = cli(_script().main, "--scale", "cpu", "--out", str(ev), "--dry-run", "--encoders-of", "", *extra)
        assert bad.returncode != 0 and "--encoders-of needs" in bad.stderr + str(bad.stdout)

    def result(root: Path, valid: float, test: float) -> None:
        cell = {"choices": {m: {"valid": valid} for m in ("ssl_linear", "ssl_finetune", "supervised")}}
        summary = {m: {"nmse": [test, 0.01]} for m in ("ssl_linear", "ssl_finetune", "supervised")}
        comp = {"supervised/ssl_finetune": {"ratio": 1.5, "low": 1.1, "high": 2.0}}
        doc = {"n_labels": 64, "result": {"select_metric": "nmse", "cells": [cell] * 3, "summary": summary}}
        doc["result"]["comparisons"] = comp
        (root / "eval_regression_n64_s012").mkdir(parents=True)
        (root / "eval_regression_n64_s012" / "results.json").write_text(json.dumps(doc))

    study = tmp_path / "study" / "ks"
    result(study, 0.25, 0.3)
    result(study / "noscale", 0.125, 0.2)
    spec = importlib.util.spec_from_file_location("study_table", SCRIPT.parent / "study_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.rows(study, ["ssl_linear", "ssl_finetune", "supervised"])
    assert rows[0].startswith("| (scale's own) | 64 | 3 | 0.25 / 0.3 ± 0.01 |") and rows[0].endswith(
        "1.50 [1.10, 2.00] |"
    )
    assert rows[1].startswith("| noscale | 64 | 3 | 0.125 / 0.2 ± 0.01 |")


def test_study_table_restricts_runs_to_one_encoder(tmp_path):
    """--seed-index K: each run's cells of its K-th encoder only, summarised again: the test mean is the mean of
    those cells and the ratio the geometric mean of their supervised / fine-tuned ratios (hand-computed)."""
    spec = importlib.util.spec_from_file_location("study_table", SCRIPT.parent / "study_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    r = _synthetic_run([0, 1], "x")["result"]
    run = tmp_path / "burgers" / "eval_regression_n64_s01"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"n_labels": 64, "result": r}))
    (row,) = mod.rows(tmp_path / "burgers", ["ssl_finetune", "supervised"], seed_index=1)
    ft = [0.1 * (2 + d) for d in range(3)]
    ratio = np.exp(np.mean([np.log(0.4 * (1 + d) / f) for d, f in enumerate(ft)]))
    assert f"| 64 | 3 | 0.5 / {np.mean(ft):.3g} ± " in row
    assert f"| {ratio:.2f} [" in row
    assert mod.rows(tmp_path / "burgers", ["ssl_finetune"], seed_index=2) == []


def _synthetic_run(p_seeds: list[int], tag: str) -> dict:
    """A regression results document over encoders ``p_seeds`` (cells hand-made, 3 label draws)."""
    cells = []
    for i, p in enumerate(p_seeds):
        for d in (0, 1, 2):
            test = {
                "floor": {"nmse": 0.3 + d},
                "ssl_linear": {"nmse": 0.4 + p},
                "ssl_finetune": {"nmse": 0.1 * (1 + p + d)},
            }
            test["supervised"] = {"nmse": 0.2 * (1 + p) * (1 + d)}
            choice = {"valid": 0.5, "steps": 1, "candidates": []}
            cells.append(
                {
                    "pretrain_seed_index": i,
                    "label_draw": d,
                    "train_seed": 1_000_003 * p + d,
                    "test": test,
                    "choices": {m: choice for m in test if m != "floor"},
                    "seconds": {m: 1.0 for m in test if m != "floor"},
                }
            )
    r = {"select_metric": "nmse", "metrics": ["nmse"], "label_draws": [0, 1, 2], "n_pretrain_seeds": len(p_seeds)}
    cfg = {"ckpt": [f"{tag}/s{p}.pt" for p in p_seeds], "out_dir": tag, "regression": {"n_boot": 2000, "n_labels": 64}}
    return {
        "task": "regression",
        "pde": "burgers",
        "param": "nu",
        "n_labels": 64,
        "ckpts": cfg["ckpt"],
        "config": cfg,
        "result": {**r, "cells": cells},
        "seconds": 1.0,
    }


def test_merged_one_encoder_runs_equal_the_run_over_all_encoders():
    """scripts/merge_runs.py: three one-encoder runs merged give the summary and paired interval that the same cells
    give as one three-encoder run (summarised independently); mismatched runs are refused with one line."""
    from ssl_pde.core.errors import UserError
    from ssl_pde.eval.protocol import summarise_cells

    spec = importlib.util.spec_from_file_location("merge_runs", SCRIPT.parent / "merge_runs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    whole = _synthetic_run([0, 1, 2], "x")
    whole["result"].update(summarise_cells(whole["result"], 2000))
    parts = [_synthetic_run([p], "x") for p in (0, 1, 2)]
    merged = mod.merge(parts, ["a", "b", "c"])
    assert merged["result"]["n_pretrain_seeds"] == 3 and merged["ckpts"] == ["x/s0.pt", "x/s1.pt", "x/s2.pt"]
    for key in ("summary", "comparisons"):
        assert merged["result"][key] == whole["result"][key]
    assert (
        merged["result"]["comparisons"]["supervised/ssl_finetune"]["interval_over"]
        == "pretraining seeds and label draws"
    )
    other = _synthetic_run([1], "x")
    other["config"]["regression"]["n_labels"] = 256
    with pytest.raises(UserError, match="b: evaluation settings differ from a's in regression"):
        mod.merge([parts[0], other], ["a", "b"])
    with pytest.raises(UserError, match="an encoder is given twice"):
        mod.merge([parts[0], parts[0]], ["a", "b"])
    moved = _synthetic_run([1], "x")
    moved["result"]["cells"][0]["test"]["floor"] = {"nmse": 9.0}
    with pytest.raises(UserError, match="floor of label draw 0 differs"):
        mod.merge([parts[0], moved], ["a", "b"])
    old = [_synthetic_run([p], "x") for p in (0, 1)]  # one-encoder runs seeded by position: the same seeds
    for run in old:
        for c in run["result"]["cells"]:
            del c["train_seed"]
    with pytest.raises(UserError, match="b: its cell of label draw 0 was trained from seed 0, as a's was"):
        mod.merge(old, ["a", "b"])
    newer = _synthetic_run([2], "x")
    newer["config"]["eval_crops"] = [1, 1]  # a run stored after the key existed merges with older ones
    assert mod.merge([parts[0], newer], ["a", "b"])["result"]["n_pretrain_seeds"] == 2
    newer["config"]["eval_crops"] = [3, 1]
    with pytest.raises(UserError, match="b: evaluation settings differ from a's in eval_crops"):
        mod.merge([parts[0], newer], ["a", "b"])
    with_id = _synthetic_run([2], "x")
    with_id["config"]["pde_id"] = {"normalise": [False, True], "n_boot": 10}  # a section regression never reads
    assert mod.merge([parts[0], with_id], ["a", "b"])["result"]["n_pretrain_seeds"] == 2
    again = mod.merge([mod.merge(parts[:2], ["a", "b"]), parts[2]], ["ab", "c"])  # a merged result merges on
    assert [c["train_seed"] for c in again["result"]["cells"]] == [c["train_seed"] for c in merged["result"]["cells"]]
    assert again["result"]["comparisons"] == merged["result"]["comparisons"]
    stale = mod.merge(parts[:2], ["a", "b"])
    for c in stale["result"]["cells"]:
        del c["train_seed"]
    with pytest.raises(UserError, match="ab: a merged result whose cells do not record their training seeds"):
        mod.merge([stale, parts[2]], ["ab", "c"])
