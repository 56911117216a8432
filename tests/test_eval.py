"""The regression protocol and ssl-pde-eval: choices on valid only, the test split read once, every method
beside the supervised baseline and the floor, the records users read, refusals of bad input."""

from __future__ import annotations

import importlib.util
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from data_gen.cli.generate import generate
from ssl_pde.augment.views import LieViews
from ssl_pde.core.errors import UserError
from ssl_pde.data.datasets import TrajectoryDataset
from ssl_pde.eval.data import Split
from ssl_pde.eval.protocol import RegressionConfig, evaluate_regression
from ssl_pde.eval.train import Search
from ssl_pde.metrics import best_constant
from ssl_pde.models.encoders import ResNet18
from tests.conftest import compose_cfg, generate_cfg

ENC_CFG = {"_target_": "ssl_pde.models.encoders.ResNet18", "in_channels": 3, "widths": [8, 16, 32, 64]}
AUG = {
    "pde": "burgers",
    "strengths": {"space_translation": 1.0, "galilean_boost": 0.2},
    "mode": "coords",
    "crop_t": 8,
    "crop_x": 32,
}
#: ssl-pde-eval overrides giving tiny searches (2 candidates per trained method, a few steps).
TINY_EVAL = [
    "device=cpu",
    "regression.mlp.lrs=[1e-3,1e-2]",
    "regression.mlp.max_steps=10",
    "regression.mlp.eval_every=5",
    *[
        f"regression.{m}.{k}"
        for m in ("finetune", "supervised")
        for k in ("lrs=[1e-3,3e-3]", "max_steps=4", "eval_every=2", "batch=8")
    ],
]


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """Burgers train 24, valid 8, test 8 and a second test split of 8 (``test_b``), from the real generator."""
    root, other = tmp_path_factory.mktemp("eval_data"), tmp_path_factory.mktemp("other_test")
    for split, n, seed, where in (
        ("train", 24, 0, root),
        ("valid", 8, 0, root),
        ("test", 8, 0, root),
        ("test", 8, 7, other),
    ):
        cfg = generate_cfg("burgers", where, num_samples=n, shard_size=16)
        cfg.split, cfg.seed = split, seed
        generate(cfg)
    names = ["nu", "domain_length", "t_end"]
    dirs = {"train": root, "valid": root, "test": root, "test_b": other}
    return {
        s: Split.load(TrajectoryDataset(d / "burgers" / s.removesuffix("_b"), names, preload=True), "nu")
        for s, d in dirs.items()
    }, root


def _tiny_regression(**kw) -> RegressionConfig:
    def net() -> Search:
        return Search(lrs=[1e-3, 3e-3], max_steps=4, eval_every=2, patience=1, batch=8)

    base = dict(
        n_labels=16,
        label_draws=[0, 1],
        select_metric="nmse",
        methods=["ssl_linear", "ssl_mlp", "ssl_finetune", "random_init", "supervised"],
        ridge_lambdas=[1e-2, 1.0, 100.0],
        mlp_hidden=16,
        mlp=Search(lrs=[1e-3, 1e-2], max_steps=10, eval_every=5, patience=0),
        finetune=net(),
        supervised=net(),
        n_boot=500,
    )
    return RegressionConfig(**{**base, **kw})


def _encoder(seed: int) -> ResNet18:
    torch.manual_seed(seed)
    return ResNet18(3, (8, 16, 32, 64)).eval().requires_grad_(False)


def _no_time(x):
    """``x`` without its wall-clock fields (``seconds``), which differ between runs."""
    if isinstance(x, dict):
        return {k: _no_time(v) for k, v in x.items() if k != "seconds"}
    return [_no_time(v) for v in x] if isinstance(x, list) else x


def test_choices_never_read_the_test_split(splits):
    """The swap test: the same evaluation with the test split replaced by another records exactly the same
    choices (with the same valid scores) in every cell, while the test scores change. The frozen encoders are
    not modified; the floor's constants are the best constants of each draw's labels; every trained method
    searched the same number of candidates; the grid is 2 pretraining seeds x 2 label draws."""
    data, _ = splits
    encs = [_encoder(0), _encoder(1)]
    before = [{k: v.clone() for k, v in e.state_dict().items()} for e in encs]
    cfg = _tiny_regression()
    runs = []
    for test in ("test", "test_b"):
        s = {"train": data["train"], "valid": data["valid"], "test": data[test]}
        runs.append(
            evaluate_regression(
                encs, lambda: ResNet18(3, (8, 16, 32, 64)), LieViews(**AUG), s, cfg, True, torch.device("cpu")
            )
        )
    a, b = runs
    assert [_no_time(c["choices"]) for c in a["cells"]] == [_no_time(c["choices"]) for c in b["cells"]]
    assert [c["test"] for c in a["cells"]] != [c["test"] for c in b["cells"]]
    for e, sd in zip(encs, before, strict=True):
        assert all(torch.equal(v, sd[k]) for k, v in e.state_dict().items())
    assert [(c["pretrain_seed_index"], c["label_draw"]) for c in a["cells"]] == [(0, 0), (1, 0), (0, 1), (1, 1)]
    lab = data["train"].subset(np.sort(np.random.default_rng(1).choice(24, 16, replace=False)))
    assert a["cells"][2]["choices"]["floor"]["nmse"] == best_constant("nmse", lab.y).tolist()
    assert {a["budget"][m]["candidates"] for m in ("ssl_mlp", "ssl_finetune", "supervised")} == {2}
    assert set(a["comparisons"]) == {
        f"supervised/{m}" for m in ("ssl_linear", "ssl_mlp", "ssl_finetune", "random_init")
    }
    c = a["comparisons"]["supervised/ssl_finetune"]
    assert c["interval_over"] == "pretraining seeds and label draws" and c["low"] <= c["ratio"] <= c["high"]
    assert np.array(c["cells"]).shape == (2, 2)
    for m, row in a["summary"].items():  # the floor depends on the draw only: its spread is over the draws
        vals = [cell["test"][m]["nmse"] for cell in a["cells"] if m != "floor" or cell["pretrain_seed_index"] == 0]
        assert row["nmse"] == pytest.approx([np.mean(vals), np.std(vals, ddof=1)]), m
    for cell in a["cells"]:  # the MLP head's choice is the candidate with the lowest valid score
        ch = cell["choices"]["ssl_mlp"]
        assert ch["valid"] == min(r["valid"] for r in ch["candidates"])


def test_uneven_searches_and_bad_settings_are_refused(splits):
    data, _ = splits

    def run(cfg: RegressionConfig) -> dict:
        cpu = torch.device("cpu")
        return evaluate_regression([_encoder(0)], lambda: _encoder(0), LieViews(**AUG), data, cfg, True, cpu)

    uneven = _tiny_regression(supervised=Search(lrs=[1e-3, 3e-3, 1e-2], max_steps=4, eval_every=2, patience=1, batch=8))
    for cfg, msg in (
        (uneven, "same number of candidates"),
        (_tiny_regression(n_labels=99), "n_labels=99 must lie in [8, 24]"),
        (_tiny_regression(methods=["ssl_linear"]), "must include supervised"),
        (_tiny_regression(methods=["ssl_linear", "supervised", "lasso"]), "unknown method 'lasso'"),
        (_tiny_regression(select_metric="mae"), "unknown select_metric 'mae'"),
        (_tiny_regression(label_draws=[0, 0]), "give distinct label-draw seeds"),
        (
            _tiny_regression(finetune=Search(lrs=[1e-3, 3e-3], max_steps=8, eval_every=2, patience=1, batch=8)),
            "same step budget: max_steps 8 vs 4",
        ),
        (
            _tiny_regression(mlp=Search(lrs=[1e-3], max_steps=5, eval_every=5, patience=0, views=["crops", "lie"])),
            "views do not apply",
        ),
    ):
        with pytest.raises(UserError, match=msg.replace("[", r"\[")):
            run(cfg)


def _save_encoder(path: Path, **over) -> Path:
    """An encoder export in the format of ssl-pde-pretrain (untrained weights)."""
    torch.save(
        {
            "state_dict": _encoder(0).state_dict(),
            "encoder": ENC_CFG,
            "augment": AUG,
            "pde": "burgers",
            "probe_param": "nu",
            "probe_log": True,
            **over,
        },
        path,
    )
    return path


def _eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ssl_pde.cli.eval", *args], capture_output=True, text=True)


def test_eval_cli_writes_results_and_refuses_bad_input(splits, tmp_path):
    """The real command: results.json records every choice with its valid score, results.md holds the table
    with the floor, the paired ratios and the budgets; one offline W&B run; bad input ends in one line, exit 2."""
    _, root = splits
    ckpt = _save_encoder(tmp_path / "encoder.pt")
    common = [f"data.dir={root}", *TINY_EVAL, f"out_dir={tmp_path / 'out'}"]
    res = _eval(f"ckpt={ckpt}", "regression.n_labels=16", "regression.label_draws=[0,1,2]", *common)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    cell = doc["result"]["cells"][0]
    assert set(cell["choices"]) == {"floor", "ssl_linear", "ssl_mlp", "ssl_finetune", "random_init", "supervised"}
    assert all("valid" in cell["choices"][m] for m in cell["choices"] if m != "floor")
    # scripts/resummarise.py recomputes the statistics from the stored cells alone: the same numbers
    spec = importlib.util.spec_from_file_location(
        "resummarise", Path(__file__).parents[1] / "scripts" / "resummarise.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main([str(tmp_path / "out" / "results.json"), "--out", str(tmp_path / "again")])
    again = json.loads((tmp_path / "again" / "results.json").read_text())["result"]
    for key in ("summary", "comparisons", "budget"):
        assert again[key] == doc["result"][key], key
    md = (tmp_path / "out" / "results.md").read_text()
    for needle in (
        "best constant (floor)",
        "supervised / SSL fine-tuned",
        "label draws only (one pretraining seed)",
        "log-MSE",
        "optimiser steps",
    ):
        assert needle in md, needle
    (run,) = (tmp_path / "out" / "wandb").glob("offline-run-*")
    blob = (run / f"run-{run.name.rsplit('-', 1)[-1]}.wandb").read_bytes()
    for needle in (
        b"summary/ssl_linear/nmse/mean",
        b"comparisons/supervised/ssl_finetune/ratio",
        b"n_labels",
        b"figures/pred_vs_true",
    ):
        assert needle in blob, needle
    assert len(list((run / "files" / "media" / "images").rglob("*.png"))) == 3
    for args, msg in (
        ([f"ckpt={tmp_path / 'missing.pt'}"], "not found"),
        ([f"ckpt={ckpt}", "regression.n_labels=999"], "n_labels=999"),
        ([f"ckpt={ckpt}", "task=forecast"], "unknown task 'forecast'"),
        ([f"ckpt={ckpt}", "eval_window=start"], "eval_window=start applies to ns2d encoders only (burgers given)"),
        ([f"ckpt={ckpt}", "regression.n_labels=many"], "bad eval setting"),
    ):
        bad = _eval(*args, *common)
        assert bad.returncode == 2 and msg in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr
    afile = tmp_path / "afile"
    afile.write_text("x")
    bad = _eval(f"ckpt={ckpt}", f"data.dir={root}", *TINY_EVAL, f"out_dir={afile}")  # refused before any work
    assert bad.returncode == 2 and "is a file, not a directory" in bad.stderr and bad.stderr.count("\n") == 1
    assert afile.read_text() == "x"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_encoder_exports_cannot_run_code(tmp_path):
    """A checkpoint that pickles a callable is refused unread (weights_only), and an export whose stored config
    names a class outside the project's encoders and views is refused before anything is built."""
    from ssl_pde.eval.setup import load_encoder

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"state_dict": Evil()}))
    with pytest.raises(UserError, match="not an encoder exported by ssl-pde-pretrain"):
        load_encoder(tmp_path / "evil.pt", torch.device("cpu"))
    assert not marker.exists()
    bad = _save_encoder(tmp_path / "open.pt", encoder={"_target_": "builtins.open", "file": str(marker), "mode": "w"})
    with pytest.raises(UserError, match="not one of the project's classes"):
        load_encoder(bad, torch.device("cpu"))
    # an allowed class with an object to build hidden in a list or a plain dict below it
    opener = {"_target_": "builtins.open", "file": str(marker), "mode": "w"}
    for enc in ({**ENC_CFG, "widths": [opener, 16, 32, 64]}, {**ENC_CFG, "in_channels": {"x": opener}}):
        with pytest.raises(UserError, match="nests an object to build"):
            load_encoder(_save_encoder(tmp_path / "nested.pt", encoder=enc), torch.device("cpu"))
    assert not marker.exists()
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(UserError, match="not an encoder exported"):
        load_encoder(tmp_path / "text.pt", torch.device("cpu"))


def test_eval_timestep_cli(splits, tmp_path):
    """task=timestep in process: the persistence floor, three conditionings chosen on the valid rollout,
    true-parameter conditioning on every varying dynamics parameter (nu here), paired comparisons; refusals."""
    from ssl_pde.cli.eval import run_task

    _, root = splits
    ckpt = _save_encoder(tmp_path / "encoder.pt")
    ts = [
        "task=timestep",
        f"ckpt={ckpt}",
        f"data.dir={root}",
        "device=cpu",
        "wandb.enabled=false",
        "timestep.history=4",
        "timestep.future=2",
        "timestep.search.max_steps=4",
        "timestep.search.eval_every=2",
        "timestep.search.lrs=[1e-3,3e-3]",
        "timestep.width=8",
        "timestep.ssl_dims=3",
    ]
    doc = run_task(compose_cfg("eval", [*ts, "timestep.arch=fno", "timestep.seeds=[0,1]", f"out_dir={tmp_path}"]))
    r = doc["result"]
    assert r["param_conditions"] == ["nu"] and r["rollout_start"] == 4 and r["frames"] == 6
    for cell in r["cells"]:
        assert set(cell["test"]) == {"persistence", "none", "param", "ssl"}
        assert all(np.isfinite(v["rollout_nmse"]) and v["frames"] == 6 for v in cell["test"].values())
        assert all(len(c["candidates"]) == 2 for c in cell["choices"].values())
    assert set(r["comparisons"]) == {"none/param", "none/ssl", "param/ssl"}
    assert "persistence (floor" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "rollouts.png").is_file() and not (tmp_path / "wandb").exists()
    for args, msg in (
        (["timestep.history=10", "timestep.future=5"], "timestep.future=5 exceeds the 11 frames"),
        (["timestep.arch=transformer"], "unknown timestep.arch 'transformer'"),
        (["timestep.arch=unet"], "timestep.arch=unet does not fit 1D data (use one of: cnn, fno)"),
        (["timestep.variants=[none,oracle]"], "unknown timestep variant 'oracle'"),
    ):
        with pytest.raises(UserError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            run_task(compose_cfg("eval", [*ts, *args]))


def test_eval_regression_on_ns2d_buoyancy(tmp_path):
    """ssl-pde-eval task=regression on tiny ns2d data from the real generator (32 x 32 cells, 8 frames):
    the exported NS views (2D crops, time x fields as channels) feed the frozen encoder and the supervised
    baseline (here with the smoke channels too, as an export made before augment.fields existed, saved without
    the key); every method's buoyancy metrics are finite.
    task=timestep trains the U-Net stepper with the three conditionings (the SSL one from the encoder's
    4-frame window) and writes finite rollout metrics."""
    import hydra
    from omegaconf import OmegaConf

    from ssl_pde.cli.eval import run_task

    solver = dict(nx=32, ny=32, nt=8, t_start=1.0, t_end=4.5, dt_max=0.1)
    for split, n in (("train", 16), ("valid", 8), ("test", 8)):
        cfg = compose_cfg(
            "generate",
            [
                "pde=ns2d",
                *[f"solver.{k}={v}" for k, v in solver.items()],
                *[f"out_dir={tmp_path}", f"split={split}", f"num_samples={n}", "shard_size=16", "batch_size=16"],
                *["device=cpu", "progress=false"],
            ],
        )
        generate(cfg)
    pre = compose_cfg(
        "pretrain",
        ["experiment=ns2d_vicreg", "debug=smoke", "augment.crop_t=4", "augment.fields=[smoke,vx,vy]", "run_dir=run"],
    )
    assert pre.encoder.in_channels == 4 * 6  # smoke too (the default is velocities only): 6 channels per frame
    enc_cfg = OmegaConf.to_container(pre.encoder, resolve=True)
    torch.manual_seed(0)
    torch.save(
        {
            "state_dict": hydra.utils.instantiate(enc_cfg).state_dict(),
            "encoder": enc_cfg,
            # saved without "fields", as exports made before the option: the views then carry all three fields
            "augment": {k: v for k, v in OmegaConf.to_container(pre.augment, resolve=True).items() if k != "fields"},
            "pde": "ns2d",
            "probe_param": "buoyancy",
            "probe_log": False,
        },
        tmp_path / "encoder.pt",
    )
    common = [f"ckpt={tmp_path / 'encoder.pt'}", f"data.dir={tmp_path}", "wandb.enabled=false", *TINY_EVAL]
    opts = ["regression.n_labels=8", "regression.label_draws=[0,1]", f"out_dir={tmp_path / 'o'}"]
    doc = run_task(compose_cfg("eval", [*common, *opts]))
    assert doc["pde"] == "ns2d" and doc["param"] == "buoyancy" and not doc["log_target"]
    for cell in doc["result"]["cells"]:
        assert all(np.isfinite(cell["test"][m]["mse"]) for m in ("ssl_linear", "ssl_finetune", "supervised", "floor"))
        assert "log_mse" in cell["test"]["floor"]  # buoyancy is a positive scale parameter
    ts = [
        "task=timestep",
        "timestep.history=4",
        "timestep.future=2",
        "timestep.search.max_steps=3",
        "timestep.search.eval_every=3",
        "timestep.width=8",
        "timestep.arch=unet",
    ]
    doc = run_task(compose_cfg("eval", [*common, *ts, "timestep.seeds=[0,1]", f"out_dir={tmp_path / 'ts'}"]))
    r = doc["result"]
    assert r["param_conditions"] == ["buoyancy"] and r["rollout_start"] == 4 and r["frames"] == 4
    for cell in r["cells"]:
        assert all(np.isfinite(v["rollout_nmse"]) and v["frames"] == 4 for v in cell["test"].values())
        assert all(0 < v["one_step_mse"] < np.inf for v in cell["test"].values())
    assert (tmp_path / "ts" / "rollouts.png").is_file()
    # A shorter stepper history than the encoder's 4-frame window: the rollout still starts at frame 4.
    short = ["timestep.history=2", "timestep.future=1", "timestep.seeds=[0]", f"out_dir={tmp_path / 'ts2'}"]
    doc = run_task(compose_cfg("eval", [*common, *ts, *short]))
    assert doc["result"]["rollout_start"] == 4 and doc["result"]["frames"] == 4
    for args, msg in (
        (["timestep.arch=cnn"], "timestep.arch=cnn does not fit 2D data (use one of: unet)"),
        (["timestep.history=2", "timestep.future=5"], "timestep.future=5 exceeds the 8 frames"),
        (["eval_window=middle"], "unknown eval_window 'middle' (choose from: start, center, end)"),
    ):
        with pytest.raises(UserError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            run_task(compose_cfg("eval", [*common, *ts, *args]))


def test_probe_curve_repeats_the_eval_linear_probe(splits, tmp_path):
    """scripts/probe_curve.py (a shell over ssl_pde.eval.curves) draws the labelled subsets and chooses the
    ridge strength on valid as evaluate_regression does: its 16-label cells equal ssl_linear's choices and
    test scores, and its floor the best constants'; a label count beyond train ends in one line, exit 2.
    scripts/plot_probe_curves.py plots the curve with supervised points read from results.json files."""
    data, root = splits
    ckpt = _save_encoder(tmp_path / "encoder.pt")
    script = [sys.executable, str(Path(__file__).parents[1] / "scripts" / "probe_curve.py"), f"--ckpt={ckpt}"]
    args = [f"--data={root}", "--draws", "0", "1", f"--out={tmp_path / 'curve'}"]
    res = subprocess.run([*script, *args, "--labels", "8", "16"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads((tmp_path / "curve" / "probe_curve.json").read_text())
    assert [r["n_labels"] for r in doc["rows"]] == [8, 16] and doc["param"] == "nu"
    cfg = _tiny_regression(
        methods=["ssl_linear", "supervised"], ridge_lambdas=[1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]
    )
    ref = evaluate_regression([_encoder(0)], lambda: _encoder(0), LieViews(**AUG), data, cfg, True, torch.device("cpu"))
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
