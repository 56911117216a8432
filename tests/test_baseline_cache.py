"""The supervised baseline reused across evaluations of other encoders (ssl_pde/eval/baseline_cache.py): a restored
network scores exactly as the trained one, nothing else in the evaluation changes, and any change to what the
training reads trains again."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

import ssl_pde
from ssl_pde.augment.corrupt import Corruption
from ssl_pde.augment.views import LieViews
from ssl_pde.eval import protocol
from ssl_pde.eval.baseline_cache import BaselineCache, Training, code_digest, context_of
from ssl_pde.eval.protocol import evaluate_regression
from ssl_pde.eval.train import Search
from ssl_pde.models.encoders import ResNet18
from tests.conftest import load_script
from tests.eval_helpers import AUG, ENC_CFG, TINY_EVAL, make_encoder, no_time, save_encoder, tiny_regression

CPU = torch.device("cpu")
CTX = context_of({"encoder": ENC_CFG, "augment": AUG}, None, [1, 1])


def fresh() -> ResNet18:
    return ResNet18(3, (8, 16, 32, 64))


def _count_supervised_training(monkeypatch) -> list[int]:
    """Patch the protocol's fit_network to count the trainings of the network from scratch (``init`` is
    ``fresh``; fine-tuning passes a copy of the encoder)."""
    calls: list[int] = []
    real = protocol.fit_network

    def counting(init, *a, **k):
        if init is fresh:
            calls.append(1)
        return real(init, *a, **k)

    monkeypatch.setattr(protocol, "fit_network", counting)
    return calls


def _run(encoder_seed: int, data, cache: BaselineCache | None, **cfg) -> dict:
    enc = make_encoder(encoder_seed)
    return evaluate_regression([enc], fresh, LieViews(**AUG), data, tiny_regression(**cfg), True, CPU, cache=cache)


def test_a_restored_network_scores_as_the_trained_one_and_changes_nothing_else(burgers_splits, tmp_path, monkeypatch):
    """Encoder A's evaluation trains and stores one supervised network per cell (2 label draws: 2 entries).
    Encoder B's evaluation (other weights, the same pretraining seed position and draws) then trains none: its
    supervised test scores and choices equal A's exactly, each cell records the entry it reused, and its budget
    counts the original training's steps and seconds. Every method of B equals B's evaluation without the cache
    (the restore does not disturb the other methods' random draws)."""
    data, _ = burgers_splits
    cache = BaselineCache(tmp_path / "cache", CTX)
    calls = _count_supervised_training(monkeypatch)
    a = _run(0, data, cache)
    assert len(calls) == 2 and len(list((tmp_path / "cache" / "supervised").rglob("*.pt"))) == 2
    b = _run(1, data, cache)
    assert len(calls) == 2  # nothing trained again
    for ca, cb in zip(a["cells"], b["cells"], strict=True):
        assert cb["test"]["supervised"] == ca["test"]["supervised"]
        reused = cb["choices"]["supervised"].pop("reused")
        assert (tmp_path / "cache" / "supervised" / reused).is_file()
        assert cb["choices"]["supervised"] == ca["choices"]["supervised"]
        assert cb["seconds"]["supervised"] == ca["choices"]["supervised"]["seconds"]
        assert cb["test"]["ssl_finetune"] != ca["test"]["ssl_finetune"]  # the encoders do differ
    assert b["budget"]["supervised"]["steps"] == a["budget"]["supervised"]["steps"]
    plain = _run(1, data, None)
    assert len(calls) == 4
    assert [c["test"] for c in plain["cells"]] == [c["test"] for c in b["cells"]]
    assert [no_time(c["choices"]) for c in plain["cells"]] == [no_time(c["choices"]) for c in b["cells"]]


def test_anything_the_training_reads_changes_the_key(burgers_splits, tmp_path):
    """The key changes with the labelled set, the valid split (one corrupted value), the seed, the search, the
    architecture, the crops, the encoder's settings, the plain settings and the code; it does not change when the
    same fields are computed again, nor when only comments or docstrings of the code change, nor with the views'
    symmetry strengths when the network trains on crops (it never sees them), only when it trains on ``lie``
    views. The code digest is taken when the cache is made."""
    data, _ = burgers_splits
    lab, valid = data["train"].subset(torch.arange(16)), data["valid"]
    spec = Search(lrs=[1e-3, 3e-3], max_steps=4, eval_every=2, patience=1, batch=8)
    plain = {"metric": "nmse", "log_target": True, "recalibrate_bn": True, "clamp_margin": 0.0}
    cache = BaselineCache(tmp_path, CTX)
    assert cache.code == code_digest()
    views = LieViews(**AUG)

    def key(cache: BaselineCache = cache, **over) -> str:
        args = {"init": fresh, "views": views, "spec": spec, "lab": lab, "valid": valid, "seed": 3, "settings": plain}
        return cache.key(cache.fields(Training(device=CPU, **{**args, **over})))

    base = key()
    assert key() == base
    stronger = LieViews(**{**AUG, "strengths": {"space_translation": 2.0}})
    assert key(views=stronger) == base  # crops only: the symmetry strengths are not read
    lie = dataclasses.replace(spec, views=["lie"])
    noisy = valid.corrupted(Corruption(noise=1e-3), seed=0)
    variants = {
        "labels": key(lab=data["train"].subset(torch.arange(1, 17))),
        "valid": key(valid=noisy),
        "seed": key(seed=4),
        "search": key(spec=dataclasses.replace(spec, lrs=[1e-3, 1e-2])),
        "budget": key(spec=dataclasses.replace(spec, max_steps=5)),
        "arch": key(init=lambda: ResNet18(3, (8, 16, 32, 32))),
        "crops": key(views=LieViews(**{**AUG, "crop_x": 16})),
        "lie": key(spec=lie),
        "lie stronger": key(spec=lie, views=stronger),
        "encoder": key(cache=BaselineCache(tmp_path, context_of({"encoder": {**ENC_CFG, "x": 1}}, None, [1, 1]))),
        "eval crops": key(cache=BaselineCache(tmp_path, context_of({"encoder": ENC_CFG}, None, [3, 1]))),
        "settings": key(settings={**plain, "recalibrate_bn": False}),
        "clamp": key(settings={**plain, "clamp_margin": 0.5}),
        "code": key(cache=BaselineCache(tmp_path, CTX, code="0" * 64)),
    }
    assert len(set(variants.values()) | {base}) == len(variants) + 1, variants
    src = tmp_path / "pkg"
    shutil.copytree(Path(ssl_pde.__file__).parent, src, ignore=shutil.ignore_patterns("__pycache__", "configs"))
    before = code_digest(src)
    assert before == code_digest()
    f = src / "eval" / "train.py"
    text = f.read_text()
    f.write_text(text.replace('"""', '"""Reworded. ', 1) + "\n# a comment\n")  # prose only: the same code
    assert code_digest(src) == before
    f.write_text(text + "\nEXTRA = 1\n")  # code
    assert code_digest(src) != before


def test_a_foreign_broken_or_altered_entry_is_trained_again(burgers_splits, tmp_path, caplog):
    """An entry is restored only if it is this cell's and reproduces its own choice. Trained again, with a
    warning, and replaced by a good entry: an entry whose recorded fields are another cell's (a file copied over
    another key), a file that is not an entry, an entry without its network, and an entry whose weights were
    altered (its valid score no longer matches its record). An entry that cannot be written is a warning too, and
    the evaluation goes on."""
    data, _ = burgers_splits
    cache = BaselineCache(tmp_path, CTX)
    a = _run(0, data, cache, label_draws=[0, 1])
    names = [c["choices"]["supervised"]["reused"] for c in _run(0, data, cache, label_draws=[0, 1])["cells"]]
    e0, e1 = (tmp_path / "supervised" / n for n in names)
    good = e0.read_bytes()
    entry = torch.load(e0, weights_only=True)
    altered = {
        **entry,
        "state_dict": {k: v + 0.01 if v.is_floating_point() else v for k, v in entry["state_dict"].items()},
    }
    for breakage, words in (
        (lambda: shutil.copy(e1, e0), "stored for other settings"),  # draw 0's key now holds draw 1's network
        (lambda: e0.write_bytes(b"not a torch file"), "unreadable"),
        (lambda: torch.save({"fields": entry["fields"], "record": entry["record"]}, e0), "without its network"),
        (lambda: torch.save(altered, e0), "where its record says"),
    ):
        e0.write_bytes(good)
        breakage()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ssl_pde.eval"):
            b = _run(0, data, cache, label_draws=[0, 1])
        assert words in caplog.text, words
        first, second = (c["choices"]["supervised"] for c in b["cells"])
        assert "reused" not in first and "reused" in second, words
        assert b["cells"][0]["test"]["supervised"] == a["cells"][0]["test"]["supervised"]
        d = _run(0, data, cache, label_draws=[0, 1])  # replaced by a good entry
        assert all("reused" in cell["choices"]["supervised"] for cell in d["cells"]), words
    shutil.rmtree(tmp_path / "supervised")
    (tmp_path / "supervised").write_text("a file where the entries go")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ssl_pde.eval"):
        c = _run(0, data, cache, label_draws=[0])
    assert (
        "could not store" in caplog.text and c["cells"][0]["test"]["supervised"] == a["cells"][0]["test"]["supervised"]
    )


def test_the_command_reuses_the_baseline_and_the_runs_still_pair(cli, burgers_splits, tmp_path):
    """Through ``ssl-pde-eval regression.baseline_cache=DIR``: encoder B's run restores A's supervised networks
    (identical test scores, ``reused`` recorded; B's export names an encoder option at its default that A's
    export predates: the same network) and scripts/compare_encoders.py pairs the two runs, the cache directories
    differing (a free setting): the supervised ratio is exactly 1."""
    from ssl_pde.cli.eval import main as eval_main

    _, root = burgers_splits
    enc_b = make_encoder(1)
    newer = {**ENC_CFG, "stem": "imagenet"}  # b's export names the stem option (at its default), a's predates it
    ckpts = {
        "a": save_encoder(tmp_path / "a.pt"),
        "b": save_encoder(tmp_path / "b.pt", state_dict=enc_b.state_dict(), encoder=newer),
    }
    docs = {}
    for name, cache in (("a", "c1"), ("b", "c1"), ("b2", "c2")):
        out = tmp_path / name
        args = [f"ckpt={ckpts[name[0]]}", f"data.dir={root}", *TINY_EVAL, "regression.n_labels=16"]
        args += ["regression.label_draws=[0,1]", "wandb.enabled=false", f"out_dir={out}"]
        res = cli(eval_main, *args, f"regression.baseline_cache={tmp_path / cache}")
        assert res.returncode == 0, res.stderr[-2000:]
        docs[name] = json.loads((out / "results.json").read_text())
    sup = [[c["test"]["supervised"] for c in docs[n]["result"]["cells"]] for n in ("a", "b", "b2")]
    assert sup[0] == sup[1]
    assert all("reused" in c["choices"]["supervised"] for c in docs["b"]["result"]["cells"])
    assert "was restored from `regression.baseline_cache`" in (tmp_path / "b" / "results.md").read_text()
    assert "restored" not in (tmp_path / "a" / "results.md").read_text()
    assert not any("reused" in c["choices"]["supervised"] for c in docs["b2"]["result"]["cells"])
    pair = [str(tmp_path / n / "results.json") for n in ("a", "b2")]
    res = load_script("compare_encoders").main(pair)
    assert res["methods"]["supervised"]["ratio"] == pytest.approx(1.0)
