"""ssl-pde-eval end to end: the records users read (results.json, results.md, W&B), refusals, safe exports."""

from __future__ import annotations

import importlib.util
import json
import pickle
from pathlib import Path

import pytest
import torch

from ssl_pde.cli.eval import main as eval_main
from ssl_pde.core.errors import UserError
from ssl_pde.eval.setup import load_encoder
from tests.eval_helpers import ENC_CFG, TINY_EVAL, save_encoder


def test_eval_cli_writes_results_and_refuses_bad_input(cli, burgers_splits, tmp_path):
    """The real command: results.json records every choice with its valid score, results.md holds the table
    with the floor, the paired ratios and the budgets; one offline W&B run; bad input ends in one line, exit 2."""
    _, root = burgers_splits
    ckpt = save_encoder(tmp_path / "encoder.pt")
    common = [f"data.dir={root}", *TINY_EVAL, f"out_dir={tmp_path / 'out'}"]
    res = cli(eval_main, f"ckpt={ckpt}", "regression.n_labels=16", "regression.label_draws=[0,1,2]", *common)
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
        bad = cli(eval_main, *args, *common)
        assert bad.returncode == 2 and msg in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr
    afile = tmp_path / "afile"
    afile.write_text("x")
    bad = cli(eval_main, f"ckpt={ckpt}", f"data.dir={root}", *TINY_EVAL, f"out_dir={afile}")  # refused before any work
    assert bad.returncode == 2 and "is a file, not a directory" in bad.stderr and bad.stderr.count("\n") == 1
    assert afile.read_text() == "x"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_encoder_exports_cannot_run_code(tmp_path):
    """A checkpoint that pickles a callable is refused unread (weights_only), and an export whose stored config
    names a class outside the project's encoders and views is refused before anything is built."""

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"state_dict": Evil()}))
    with pytest.raises(UserError, match="not an encoder exported by ssl-pde-pretrain"):
        load_encoder(tmp_path / "evil.pt", torch.device("cpu"))
    assert not marker.exists()
    bad = save_encoder(tmp_path / "open.pt", encoder={"_target_": "builtins.open", "file": str(marker), "mode": "w"})
    with pytest.raises(UserError, match="not one of the project's classes"):
        load_encoder(bad, torch.device("cpu"))
    # an allowed class with an object to build hidden in a list or a plain dict below it
    opener = {"_target_": "builtins.open", "file": str(marker), "mode": "w"}
    for enc in ({**ENC_CFG, "widths": [opener, 16, 32, 64]}, {**ENC_CFG, "in_channels": {"x": opener}}):
        with pytest.raises(UserError, match="nests an object to build"):
            load_encoder(save_encoder(tmp_path / "nested.pt", encoder=enc), torch.device("cpu"))
    assert not marker.exists()
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(UserError, match="not an encoder exported"):
        load_encoder(tmp_path / "text.pt", torch.device("cpu"))


def test_exports_from_before_the_dataset_key_pair_with_new_ones(burgers_splits, tmp_path):
    """Encoders of one setting exported before exports stored their dataset (its PDE's name then) evaluate
    together with new exports of the same dataset; another dataset is refused in one line."""
    from ssl_pde.eval.setup import load_inputs

    _, root = burgers_splits
    old = save_encoder(tmp_path / "old.pt")  # no "dataset" key
    new = save_encoder(tmp_path / "new.pt", dataset="burgers")
    inp = load_inputs([old, new], root, torch.device("cpu"))
    assert inp.dataset == "burgers" and len(inp.encoders) == 2
    other = save_encoder(tmp_path / "other.pt", dataset="heat")
    with pytest.raises(UserError, match="its dataset differs"):
        load_inputs([old, other], root, torch.device("cpu"))


def test_encoders_pretraining_seeds_come_from_the_export_or_the_run_beside_it(burgers_splits, tmp_path):
    """An export's ``seed`` is its pretraining seed; for exports made before the key existed, the ``seed`` of the
    pretraining run's config.yaml beside it; unknown or repeated seeds fall back to seeding cells by position."""
    from ssl_pde.eval.setup import load_inputs

    _, root = burgers_splits
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("name: burgers\nseed: 4\n")
    old = save_encoder(tmp_path / "run" / "encoder.pt")  # no "seed" key: the run's config says 4
    new = save_encoder(tmp_path / "new.pt", seed=9)
    bare = save_encoder(tmp_path / "bare.pt")
    cpu = torch.device("cpu")
    inp = load_inputs([old, new], root, cpu)
    assert inp.pretrain_seeds == [4, 9] and inp.encoder_seeds() == [4, 9]
    assert load_inputs([new, bare], root, cpu).encoder_seeds() is None  # bare.pt: seed unknown
    twice = save_encoder(tmp_path / "twice.pt", seed=4)
    assert load_inputs([old, twice], root, cpu).encoder_seeds() is None  # both 4: by position
