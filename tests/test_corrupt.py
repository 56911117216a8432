"""Messy observations (ssl_pde/augment/corrupt.py): the corruptions themselves, the evaluation option
(``corrupt`` in configs/eval.yaml), the pretraining augmentation (``method.corrupt``) and
scripts/corruption_table.py."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from ssl_pde.augment.corrupt import (
    Corruption,
    add_noise,
    corrupt,
    derived_seed,
    drop_t,
    drop_x,
    missing_frames,
    missing_points,
)
from ssl_pde.core.errors import UserError
from tests.conftest import compose_cfg
from tests.eval_helpers import save_encoder, small_eval_args

ROOT = Path(__file__).resolve().parents[1]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def grid_1d(n: int, nt: int, nx: int, length: float = 2.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(t, x, length): irregular increasing times per trajectory, a uniform periodic grid of period ``length``."""
    t = torch.cumsum(0.05 + torch.rand(n, nt, generator=gen(99), dtype=torch.float64), dim=1)
    x = (torch.arange(nx, dtype=torch.float64) * length / nx + 0.3).expand(n, nx).clone()
    return t, x, torch.full((n,), length, dtype=torch.float64)


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------------------------------------- the corruptions
def test_noise_std_is_the_level_times_each_trajectorys_rms():
    """The added noise has mean 0 and standard deviation level x RMS, the RMS computed (here with numpy) per
    trajectory and channel over time and space: trajectories and channels of very different scales each get their
    own; 2D data alike."""
    scales = torch.tensor([0.01, 1.0, 50.0], dtype=torch.float64)
    u = torch.randn(3, 40, 2, 80, generator=gen(1), dtype=torch.float64) * scales[:, None, None, None] + 0.5
    u[:, :, 1] *= 7.0
    noise = (add_noise(u, 0.2, gen(2)) - u).numpy()
    rms = np.sqrt((u.numpy() ** 2).mean(axis=(1, 3)))  # (N, C)
    for i in range(3):
        for c in range(2):
            z = noise[i, :, c] / rms[i, c]  # 3200 draws: the sample std is within ~1.3 % of 0.2
            assert abs(z.std() / 0.2 - 1) < 0.06 and abs(z.mean()) < 0.02, (i, c, z.std(), z.mean())
    u2 = torch.randn(2, 6, 1, 16, 20, generator=gen(3), dtype=torch.float64) * 3
    z2 = (add_noise(u2, 0.1, gen(4)) - u2) / u2.square().mean(dim=(1, 3, 4), keepdim=True).sqrt()
    assert abs(float(z2.std()) / 0.1 - 1) < 0.06
    assert add_noise(u.float(), 0.2, gen(2)).dtype == torch.float32


def test_drop_x_keeps_the_kept_points_and_interpolates_across_the_period():
    """Missing points are refilled exactly as numpy's periodic linear interpolation (``np.interp(..., period=L)``)
    from the kept points of that trajectory; kept points are unchanged bit for bit; round(level X) points are
    missing, the same ones at every frame and channel (a sensor layout); a constant field stays constant; at least
    2 points are kept at any level."""
    n, nt, nx, level = 4, 5, 32, 0.4
    _, x, length = grid_1d(n, nt, nx)
    u = torch.randn(n, nt, 2, nx, generator=gen(5), dtype=torch.float64)
    out = drop_x(u, x, level, gen(6), length=length)
    gone = missing_points(n, nx, level, gen(6))  # the layout drop_x drew from the same seed
    assert (gone.sum(1) == round(level * nx)).all()
    for i in range(n):
        kept = ~gone[i].numpy()
        assert torch.equal(out[i][..., kept], u[i][..., kept])
        for k in range(nt):
            for c in range(2):
                expect = np.interp(x[i].numpy(), x[i, kept].numpy(), u[i, k, c, kept].numpy(), period=2.0)
                np.testing.assert_allclose(out[i, k, c].numpy(), expect, rtol=0, atol=1e-12)
    const = torch.full((2, 3, 1, nx), 1.25, dtype=torch.float64)
    assert torch.equal(drop_x(const, x[:2], 0.9, gen(7), length=length[:2]), const)
    assert ((~missing_points(3, nx, 0.99, gen(8))).sum(1) == 2).all()
    # a field piecewise linear between the kept points (a periodic hat) is reproduced at every missing point
    hat = torch.from_numpy(
        np.interp(x[0].numpy(), x[0, ~gone[0]].numpy(), np.cos(np.arange(int((~gone[0]).sum()))), period=2.0)
    )
    field = hat.expand(1, 2, 1, nx).clone()
    torch.testing.assert_close(drop_x(field, x[:1], level, gen(6), length=length[:1]), field, rtol=0, atol=1e-12)


def test_drop_x_without_periodicity_holds_the_outermost_values():
    """For a non-periodic axis the missing points beyond the outermost kept ones take their values (no wrap), and
    between kept points the interpolation is numpy's ordinary linear one."""
    n, nx = 3, 24
    _, x, _ = grid_1d(n, 2, nx)
    u = torch.randn(n, 2, 1, nx, generator=gen(9), dtype=torch.float64)
    out = drop_x(u, x, 0.5, gen(10), periodic=False)
    gone = missing_points(n, nx, 0.5, gen(10))
    for i in range(n):
        kept = ~gone[i].numpy()
        expect = np.interp(x[i].numpy(), x[i, kept].numpy(), u[i, 1, 0, kept].numpy())  # constant outside
        np.testing.assert_allclose(out[i, 1, 0].numpy(), expect, rtol=0, atol=1e-12)


def test_drop_t_interpolates_at_the_stored_irregular_times():
    """A field linear in time (u = a(x) + b(x) t, irregular t) is reproduced exactly at the missing frames;
    a random field's missing frames equal numpy's linear interpolation in t; the first and last frames and
    round(level (T - 2)) of the interior are missing, per trajectory; 2D data alike."""
    n, nt, nx, level = 3, 12, 8, 0.5
    t, _, _ = grid_1d(n, nt, nx)
    a, b = torch.randn(1, 1, 2, nx, generator=gen(11), dtype=torch.float64), 3.0
    lin = a + b * t[:, :, None, None] * torch.linspace(-1, 1, nx, dtype=torch.float64)
    torch.testing.assert_close(drop_t(lin, t, level, gen(12)), lin, rtol=0, atol=1e-12)
    gone = missing_frames(n, nt, level, gen(12))
    assert not gone[:, 0].any() and not gone[:, -1].any() and (gone.sum(1) == round(level * (nt - 2))).all()
    assert len({tuple(g.tolist()) for g in gone}) > 1  # one set per trajectory
    u = torch.randn(n, nt, 1, nx, generator=gen(13), dtype=torch.float64)
    out = drop_t(u, t, level, gen(12))
    for i in range(n):
        kept = ~gone[i].numpy()
        for j in range(nx):
            expect = np.interp(t[i].numpy(), t[i, kept].numpy(), u[i, kept, 0, j].numpy())
            np.testing.assert_allclose(out[i, :, 0, j].numpy(), expect, rtol=0, atol=1e-12)
    u2 = torch.randn(2, nt, 3, 4, 5, generator=gen(14), dtype=torch.float64)
    lin2 = u2[:, :1] + t[:2, :, None, None, None] * u2[:, 1:2]
    torch.testing.assert_close(drop_t(lin2, t[:2], 0.7, gen(15)), lin2, rtol=0, atol=1e-12)


def test_corruptions_are_determined_by_the_seed_and_paired_across_levels():
    """The same seed gives identical output, another seed other output; each corruption draws from its own
    stream (switching noise on does not move the missing points); within one seed noise at level 2a is twice the
    noise at level a, and the points missing at a level are among those missing at a higher one (nested)."""
    t, x, length = grid_1d(4, 10, 32)
    u = torch.randn(4, 10, 1, 32, generator=gen(16))
    c = Corruption(noise=0.1, drop_x=0.3, drop_t=0.2)
    a = corrupt(u, t, x, c, gen(0), length=length)
    assert torch.equal(a, corrupt(u, t, x, c, gen(0), length=length))
    assert not torch.equal(a, corrupt(u, t, x, c, gen(1), length=length))
    assert a.dtype == u.dtype and corrupt(u, t, x, Corruption(), gen(0)) is u
    only_x = corrupt(u, t, x, Corruption(drop_x=0.3), gen(0), length=length)
    with_noise = corrupt(u, t, x, Corruption(drop_x=0.3, noise=0.1), gen(0), length=length)
    same_layout = corrupt(with_noise, t, x, Corruption(drop_x=0.3), gen(0), length=length)
    torch.testing.assert_close(same_layout, with_noise, rtol=0, atol=1e-6)  # refilling its own layout: no change
    assert not torch.equal(only_x, u)
    u64 = u.double()
    n1 = corrupt(u64, t, x, Corruption(noise=0.05), gen(3)) - u64
    n2 = corrupt(u64, t, x, Corruption(noise=0.1), gen(3)) - u64
    torch.testing.assert_close(n2, 2 * n1, rtol=1e-12, atol=1e-12)
    low, high = missing_points(4, 32, 0.2, gen(5)), missing_points(4, 32, 0.6, gen(5))
    assert (high | ~low).all() and high.sum() > low.sum()


def test_bad_settings_are_refused_in_one_line():
    """Levels outside their ranges, non-numbers, a non-integer seed, unknown keys and drop_x on 2D data are each
    refused with a UserError of one line naming the value."""
    cases = [
        (dict(noise=-0.1), "corrupt.noise=-0.1"),
        (dict(drop_x=1.0), "corrupt.drop_x=1.0"),
        (dict(drop_t=-0.2), "corrupt.drop_t=-0.2"),
        (dict(noise=float("nan")), "corrupt.noise=nan"),
        (dict(drop_t="a lot"), "corrupt.drop_t='a lot'"),
        (dict(seed=1.5), "corrupt.seed=1.5"),
    ]
    for kw, msg in cases:
        with pytest.raises(UserError) as e:
            Corruption(**kw)
        assert msg in str(e.value) and "\n" not in str(e.value), str(e.value)
    with pytest.raises(UserError, match=r"method\.corrupt: unknown key 'nois'"):
        Corruption.from_mapping({"nois": 0.1}, "method.corrupt")
    with pytest.raises(UserError, match=r"method\.corrupt\.drop_x=2\.0"):
        Corruption.from_mapping({"drop_x": 2.0}, "method.corrupt")
    u2 = torch.zeros(2, 4, 3, 8, 8)
    t = torch.arange(4.0).expand(2, 4)
    x = torch.arange(8.0).expand(2, 8)
    with pytest.raises(UserError, match=r"drop_x=0\.3: missing spatial points are implemented for 1D data only"):
        corrupt(u2, t, x, Corruption(drop_x=0.3), gen(0))
    with pytest.raises(UserError, match=r"drop_x=0\.3"):
        drop_x(u2, x, 0.3, gen(0))
    assert corrupt(u2, t, x, Corruption(noise=0.1, drop_t=0.5), gen(0)).shape == u2.shape  # 2D: noise, drop_t


# ---------------------------------------------------------------------------------------------- the evaluation
def test_eval_config_composes_with_a_corruption():
    """``corrupt`` is a typed section of configs/eval.yaml: clean by default, ``corrupt.noise=0.05`` gives a
    Corruption, a bad level is refused as a UserError naming it."""
    from ssl_pde.eval.config import compose_eval_config

    assert compose_eval_config(["ckpt=a.pt"]).corrupt.is_clean
    cfg = compose_eval_config(["ckpt=a.pt", "corrupt.noise=0.05", "corrupt.seed=3"])
    assert cfg.corrupt == Corruption(noise=0.05, seed=3) and not cfg.corrupt.is_clean
    with pytest.raises(UserError, match=r"corrupt\.drop_x=1\.5"):
        compose_eval_config(["ckpt=a.pt", "corrupt.drop_x=1.5"])


def test_load_inputs_corrupts_every_split_with_its_own_seed(burgers_splits, tmp_path):
    """With a corruption, every split the evaluation reads differs from the clean one by noise of level x RMS,
    each split's draws come from the seed derived from the seed and its name (recorded, and reproducible from the
    record), targets are untouched; without one the splits are the stored data."""
    from ssl_pde.eval.setup import load_inputs

    _, root = burgers_splits
    ckpt = save_encoder(tmp_path / "encoder.pt")
    clean = load_inputs([ckpt], root, torch.device("cpu"))
    messy = load_inputs([ckpt], root, torch.device("cpu"), corrupt=Corruption(noise=0.05, seed=4))
    assert clean.corruption is None
    rec = messy.corruption
    assert rec["noise"] == 0.05 and rec["seed"] == 4
    assert rec["split_seeds"] == {s: derived_seed(4, s) for s in ("train", "valid", "test")}
    assert len(set(rec["split_seeds"].values())) == 3
    for s in ("train", "valid", "test"):
        u0, u1 = clean.splits[s].data["u"].double(), messy.splits[s].data["u"].double()
        rms = u0.square().mean(dim=(1, 3), keepdim=True).sqrt()
        assert abs(float(((u1 - u0) / rms).std()) / 0.05 - 1) < 0.1, s
        assert torch.equal(clean.splits[s].y, messy.splits[s].y)
        again = clean.splits[s].corrupted(Corruption(noise=0.05, seed=4), rec["split_seeds"][s])
        assert torch.equal(again.data["u"], messy.splits[s].data["u"])


def test_eval_run_records_the_corruption_and_differs_from_the_clean_run(cli, burgers_splits, tmp_path):
    """The real command on tiny data, clean and with corrupt.noise=0.05: results.json stores the corruption (config
    and per-split seeds), the corrupted run's SSL probe scores differ while the floors (labels only) are equal,
    scripts/corruption_table.py pairs the two files; task=timestep with a corruption is refused in one line."""
    from ssl_pde.cli.eval import main as eval_main

    _, root = burgers_splits
    ckpt = save_encoder(tmp_path / "encoder.pt")
    common = small_eval_args(ckpt, root)
    docs = {}
    for name, extra in (("clean", []), ("noisy", ["corrupt.noise=0.05"])):
        res = cli(eval_main, *common, *extra, f"out_dir={tmp_path / name}")
        assert res.returncode == 0, res.stderr[-2000:]
        docs[name] = json.loads((tmp_path / name / "results.json").read_text())
    clean, noisy = docs["clean"], docs["noisy"]
    assert clean["corruption"] is None and clean["config"]["corrupt"]["noise"] == 0.0
    assert noisy["config"]["corrupt"] == {"noise": 0.05, "drop_x": 0.0, "drop_t": 0.0, "seed": 0}
    assert noisy["corruption"]["split_seeds"]["test"] == derived_seed(0, "test")
    assert "corrupt noise=0.05 seed=0" in (tmp_path / "noisy" / "results.md").read_text()
    for c0, c1 in zip(clean["result"]["cells"], noisy["result"]["cells"], strict=True):
        assert c0["test"]["floor"] == c1["test"]["floor"]
        assert c0["test"]["ssl_linear"]["nmse"] != c1["test"]["ssl_linear"]["nmse"]
    mod = load_script("corruption_table")
    res = mod.compare(clean, noisy, "nmse", n_boot=200)
    assert set(res["ratios"]) == {"ssl_linear", "supervised"} and set(res["relative"]) == {"ssl_linear"}
    bad = cli(eval_main, *common, "task=timestep", "corrupt.drop_t=0.2", f"out_dir={tmp_path / 'ts'}")
    assert bad.returncode == 2 and "task=regression only" in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr
    assert not (tmp_path / "ts").exists()


# ---------------------------------------------------------------------------------------------- pretraining
def test_pretraining_views_draw_independent_corruptions(tmp_path):
    """``method.corrupt`` is declared once (configs/method/base/joint_embedding.yaml, off) and composes; with noise
    on, the two views of a batch come from two corrupted copies whose noises are each level x RMS and uncorrelated
    with each other; with it off the views are the view builder's own two_views, draw for draw. drop_x on 2D data
    is refused before a run starts."""
    from ssl_pde.cli.pretrain import check_corruption

    off = compose_cfg("pretrain", [f"run_dir={tmp_path}"])
    assert OmegaConf.to_container(off.method.corrupt) == {"noise": 0.0, "drop_x": 0.0, "drop_t": 0.0}
    for method in ("barlow", "simclr"):  # every objective's module takes the setting
        assert compose_cfg("pretrain", [f"method={method}", f"run_dir={tmp_path}"]).method.corrupt.noise == 0.0
    cfg = compose_cfg("pretrain", [f"run_dir={tmp_path}", "method.corrupt.noise=0.1", "method.corrupt.drop_t=0.25"])
    views = hydra.utils.instantiate(cfg.augment)
    enc = torch.nn.Identity()
    model = hydra.utils.instantiate(cfg.method, encoder=enc, views=views, optimizer=hydra.utils.instantiate(cfg.optim))
    assert model.corruption == Corruption(noise=0.1, drop_t=0.25)
    n, nt, nx = 6, views.crop_t + 8, views.crop_x
    t, x, length = grid_1d(n, nt, nx, length=2 * math.pi)
    u = torch.randn(n, nt, 1, nx, generator=gen(20)) * torch.linspace(0.5, 5, n)[:, None, None, None]
    batch = {"u": u, "t": t, "x": x, "length": length}
    g = gen(21)
    (u1, *_), (u2, *_) = model.corrupted_inputs(batch, g), model.corrupted_inputs(batch, g)
    clean = u[:, :, 0].double()
    rms = clean.square().mean(dim=(1, 2), keepdim=True).sqrt()
    noisy = compose_cfg("pretrain", [f"run_dir={tmp_path}", "method.corrupt.noise=0.1"])
    model_n = hydra.utils.instantiate(
        noisy.method, encoder=enc, views=views, optimizer=hydra.utils.instantiate(cfg.optim)
    )
    g = gen(22)
    (a, *_), (b, *_) = model_n.corrupted_inputs(batch, g), model_n.corrupted_inputs(batch, g)
    za, zb = ((a.double() - clean) / rms).flatten(), ((b.double() - clean) / rms).flatten()
    assert abs(float(za.std()) / 0.1 - 1) < 0.05 and abs(float(zb.std()) / 0.1 - 1) < 0.05
    assert abs(float(torch.corrcoef(torch.stack([za, zb]))[0, 1])) < 0.05  # independent draws per view
    assert not torch.equal(u1, u2)  # noise and missing frames drawn per view
    v1, v2 = model._two_views(batch, views.inputs(batch), gen(23))
    assert v1.shape == v2.shape == (n, views.channels, views.crop_t, views.crop_x)
    plain = hydra.utils.instantiate(
        compose_cfg("pretrain", [f"run_dir={tmp_path}"]).method,
        encoder=enc,
        views=views,
        optimizer=hydra.utils.instantiate(cfg.optim),
    )
    for got, want in zip(
        plain._two_views(batch, views.inputs(batch), gen(24)),
        views.two_views(*views.inputs(batch), gen(24)),
        strict=True,
    ):
        assert torch.equal(got, want)
    with pytest.raises(UserError, match=r"method\.corrupt\.drop_x=0\.3: .*1D data only"):
        check_corruption(OmegaConf.create({"noise": 0.0, "drop_x": 0.3, "drop_t": 0.0}), 2)
    check_corruption(OmegaConf.create({"noise": 0.0, "drop_x": 0.3, "drop_t": 0.0}), 1)


# ---------------------------------------------------------------------------------------------- the table
def _doc(scores: dict[str, list[list[float]]], corrupt: dict | None = None, floor: float = 0.3) -> dict:
    """A hand-written results.json: (P, D) nmse per method, label draws [0, 1]."""
    p, d = np.array(next(iter(scores.values()))).shape
    cells = [
        {
            "pretrain_seed_index": i,
            "label_draw": j,
            "test": {"floor": {"nmse": floor}, **{m: {"nmse": s[i][j]} for m, s in scores.items()}},
            "choices": {"floor": {"nmse": [floor + j]}},
        }
        for i in range(p)
        for j in range(d)
    ]
    return {
        "task": "regression",
        "pde": "burgers",
        "param": "nu",
        "ckpts": ["s0/encoder.pt", "s1/encoder.pt"],
        "n_labels": 64,
        "config": {"corrupt": {"noise": 0.0, "drop_x": 0.0, "drop_t": 0.0, "seed": 0, **(corrupt or {})}},
        "result": {"select_metric": "nmse", "label_draws": list(range(d)), "n_pretrain_seeds": p, "cells": cells},
    }


def test_corruption_table_gives_hand_computed_ratios(tmp_path, capsys):
    """On hand-written results: the per-method ratio is the geometric mean of the per-cell corrupted / clean ratios
    (SSL: cells 2, 8, 2, 8 -> 4; supervised: 2 everywhere, interval [2, 2], "worse when corrupted"), the ratio of
    ratios that of 1, 4, 1, 4 -> 2 with an interval [1, 4] that holds 1 (no difference shown); files with other
    label draws, or a clean file that is corrupted, are refused; several levels give a figure."""
    mod = load_script("corruption_table")
    clean = _doc({"ssl_finetune": [[0.1, 0.1], [0.1, 0.1]], "supervised": [[0.2, 0.2], [0.2, 0.2]]})
    noisy = _doc({"ssl_finetune": [[0.2, 0.8], [0.2, 0.8]], "supervised": [[0.4, 0.4], [0.4, 0.4]]}, {"noise": 0.1})
    res = mod.compare(clean, noisy, n_boot=2000)
    ssl, sup, rel = res["ratios"]["ssl_finetune"], res["ratios"]["supervised"], res["relative"]["ssl_finetune"]
    assert ssl["ratio"] == pytest.approx(4.0) and 2.0 - 1e-12 <= ssl["low"] < 4.0 < ssl["high"] <= 8.0 + 1e-12
    assert ssl["clean"] == pytest.approx(0.1) and ssl["corrupted"] == pytest.approx(0.4)
    assert sup["ratio"] == pytest.approx(2.0) and sup["low"] == pytest.approx(2.0) and sup["high"] == pytest.approx(2.0)
    assert sup["verdict"] == ssl["verdict"] == "worse when corrupted"
    assert rel["ratio"] == pytest.approx(2.0) and rel["low"] == pytest.approx(1.0) and rel["high"] == pytest.approx(4.0)
    assert rel["verdict"] == "no difference shown"
    more = _doc({"ssl_finetune": [[0.1, 0.1], [0.1, 0.1]], "supervised": [[0.8, 0.8], [0.8, 0.8]]}, {"noise": 0.2})
    robust = mod.compare(clean, more, n_boot=500)["relative"]["ssl_finetune"]
    assert robust["ratio"] == pytest.approx(0.25) and robust["verdict"] == "ssl_finetune more robust"
    paths = {}
    for name, doc in (("clean", clean), ("noisy", noisy), ("more", more)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(doc))
    fig = tmp_path / "fig" / "corruption.png"
    mod.main([str(paths["clean"]), str(paths["noisy"]), str(paths["more"]), "--figure", str(fig), "--n-boot", "500"])
    out = capsys.readouterr().out
    assert "| ssl_finetune | 0.1 | 0.4 | 4 [" in out and "| supervised | 0.2 | 0.4 | 2 [2, 2] |" in out
    assert fig.stat().st_size > 1000
    other_draws = _doc(
        {"ssl_finetune": [[0.2, 0.8], [0.2, 0.8]], "supervised": [[0.4, 0.4], [0.4, 0.4]]}, {"noise": 0.1}
    )
    other_draws["result"]["cells"][0]["choices"]["floor"]["nmse"] = [9.0]
    for bad, msg in ((other_draws, "other labelled targets"), (clean, "without corruption")):
        with pytest.raises(UserError, match=msg):
            mod.check_paired(clean, bad, "b.json")
    with pytest.raises(UserError, match="give the clean evaluation first"):
        mod.check_paired(noisy, noisy, "b.json")
