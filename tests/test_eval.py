"""Downstream regression: metric definitions by hand, a frozen encoder stays frozen, CLI errors."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from data_gen.cli.generate import generate
from ssl_pde.augment.views import LieViews
from ssl_pde.data.datasets import TrajectoryDataset
from ssl_pde.eval.regression import Split, evaluate_seed
from ssl_pde.metrics import nmse, rankme, rel_l1, ridge_probe
from ssl_pde.models.encoders import ResNet18
from tests.conftest import generate_cfg

ENC_CFG = {"_target_": "ssl_pde.models.encoders.ResNet18", "in_channels": 3, "widths": [8, 16, 32, 64]}
AUG = {
    "pde": "burgers",
    "strengths": {"space_translation": 1.0, "galilean_boost": 0.2},
    "mode": "coords",
    "crop_t": 8,
    "crop_x": 32,
}


def test_metrics_by_hand():
    """nmse = mean ||y^-y||^2/||y||^2 and rel_l1 = mean ||y^-y||_1/||y||_1 per DESIGN.md."""
    y = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    p = torch.tensor([[1.5, 2.0], [2.0, 0.0]])
    assert float(nmse(p, y)) == pytest.approx((0.25 / 5 + 2.0 / 10) / 2)
    assert float(rel_l1(p, y)) == pytest.approx((0.5 / 3 + 2.0 / 4) / 2)
    assert float(nmse(torch.tensor([2.0, 4.0]), torch.tensor([1.0, 2.0]))) == pytest.approx(1.0)
    assert float(rankme(torch.eye(16))) == pytest.approx(16, rel=1e-4)
    assert float(rankme(torch.ones(16, 1) @ torch.randn(1, 8))) == pytest.approx(1, rel=1e-3)


def test_ridge_probe_recovers_a_linear_target():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 10, generator=g, dtype=torch.float64)
    y = 0.1 * x @ torch.arange(1.0, 11.0, dtype=torch.float64) + 50  # well away from 0: per-sample NMSE
    r = ridge_probe(x, y)
    assert r["nmse"] < 1e-4 < r["floor_nmse"], r


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_data")
    for split, n in (("train", 24), ("valid", 8), ("test", 8)):
        cfg = generate_cfg("burgers", root, num_samples=n, shard_size=16)
        cfg.split = split
        generate(cfg)
    return {
        s: Split.load(TrajectoryDataset(root / "burgers" / s, ["nu"], preload=True), "nu")
        for s in ("train", "valid", "test")
    }, root


def _evaluate_16_labels(enc: ResNet18, data: dict[str, Split], sup_steps: int) -> dict:
    """evaluate_seed on the fixture's splits: 16 labels, seed 0, log target, CPU, supervised batch 8."""
    return evaluate_seed(
        enc, lambda: ResNet18(3, (8, 16, 32, 64)), LieViews(**AUG), data["train"], data["valid"], data["test"],
        16, 0, True, torch.device("cpu"), sup_steps, 8, 1e-3,
    )  # fmt: skip


def test_frozen_encoder_is_unchanged_and_metrics_finite(splits):
    """Evaluation never updates the pretrained encoder; every method's metrics are finite."""
    data, _ = splits
    torch.manual_seed(0)
    enc = ResNet18(3, (8, 16, 32, 64)).eval().requires_grad_(False)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    r = _evaluate_16_labels(enc, data, sup_steps=3)
    for k, v in enc.state_dict().items():
        assert torch.equal(v, before[k]), k
    for m in ("ssl_linear", "ssl_mlp", "supervised", "floor"):
        assert all(np.isfinite(r["metrics"][m][k]) for k in ("nmse", "rel_l1", "mse")), m
    assert r["metrics"]["supervised_choice"] in ("supervised_lie", "supervised_crops")


def _save_encoder(path: Path) -> Path:
    """An encoder export in the format of ssl-pde-pretrain (untrained weights)."""
    torch.manual_seed(0)
    torch.save(
        {
            "state_dict": ResNet18(3, (8, 16, 32, 64)).state_dict(),
            "encoder": ENC_CFG,
            "augment": AUG,
            "pde": "burgers",
            "probe_param": "nu",
            "probe_log": True,
        },
        path,
    )
    return path


def _eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ssl_pde.cli.eval", *args], capture_output=True, text=True)


def test_eval_cli_writes_results_and_refuses_bad_input(splits, tmp_path):
    _, root = splits
    ckpt = _save_encoder(tmp_path / "encoder.pt")
    common = [f"data.dir={root}", "device=cpu", "supervised.steps=2", "mlp_epochs=5", f"out_dir={tmp_path / 'out'}"]
    res = _eval(f"ckpt={ckpt}", "n_labels=16", "seeds=[0,1,2]", *common)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "out" / "results.json").is_file() and (tmp_path / "out" / "results.md").is_file()
    assert "predict the mean (floor)" in Path(tmp_path / "out" / "results.md").read_text()
    # the real W&B client, offline: one run holding the config, the summary metrics and the figures
    (run,) = (tmp_path / "out" / "wandb").glob("offline-run-*")
    blob = (run / f"run-{run.name.rsplit('-', 1)[-1]}.wandb").read_bytes()
    for needle in (b"summary/ssl_linear/nmse/mean", b"supervised/nmse", b"n_labels", b"figures/pred_vs_true"):
        assert needle in blob, needle
    assert len(list((run / "files" / "media" / "images").rglob("*.png"))) == 2
    for args, msg in (
        ([f"ckpt={tmp_path / 'missing.pt'}", "n_labels=16"], "not found"),
        ([f"ckpt={ckpt}", "n_labels=999"], "n_labels=999"),
        ([f"ckpt={ckpt}", "task=forecast"], "unknown task 'forecast'"),
        ([f"ckpt={ckpt}", "eval_window=start"], "eval_window=start applies to ns2d encoders only (burgers given)"),
    ):
        bad = _eval(*args, *common)
        assert bad.returncode == 2 and msg in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr


def test_rollout_metrics_by_hand():
    """e_k = ||u^_k - u_k||^2 / ||u_k||^2; rollout_nmse is its mean, rollout_nmse_sum the sum over frames."""
    from ssl_pde.metrics import rollout_nmse

    truth = torch.ones(2, 3, 4)
    pred = truth.clone()
    pred[0, 1] += 1.0  # e = 4 / 4 = 1 for trajectory 0, frame 1
    pred[1, 2] += 0.5  # e = 1 / 4 = 0.25 for trajectory 1, frame 2
    r = rollout_nmse(pred, truth)
    assert r["frames"] == 3
    assert r["rollout_nmse"] == pytest.approx((1 + 0.25) / 6)
    assert r["rollout_nmse_sum"] == pytest.approx((1 + 0.25) / 2)
    assert r["rollout_mse"] == pytest.approx((4 * 1.0 + 4 * 0.25) / 24)  # 24 predicted values


def test_regression_mse_by_hand():
    """mse is the plain mean squared error (the paper's NS buoyancy metric): predicting the mean of
    U(0.2, 0.5) scores its variance, 0.0075, on a fine uniform grid of labels."""
    from ssl_pde.metrics import mse

    y = torch.linspace(0.2, 0.5, 100001, dtype=torch.float64)
    assert float(mse(torch.full_like(y, 0.35), y)) == pytest.approx(0.0075, rel=1e-4)
    assert float(mse(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 2.0]))) == pytest.approx(0.125)


@pytest.mark.parametrize("arch", ["cnn", "fno", "unet"])
@pytest.mark.parametrize("hidden", [0, 7])
def test_stepper_film_starts_as_the_unconditioned_map(arch, hidden):
    """FiLM weights start at zero, so every conditioning variant starts from the same function; after a few
    optimiser steps on a condition-dependent target the condition changes the output."""
    from ssl_pde.models.timestepper import build_stepper

    fields = 3 if arch == "unet" else 1
    shape = (3, 4, 3, 16, 16) if arch == "unet" else (3, 4, 32)
    torch.manual_seed(0)
    a = build_stepper(arch, 4, 2, 16, cond_dim=0, fields=fields)
    torch.manual_seed(0)
    b = build_stepper(arch, 4, 2, 16, cond_dim=5, cond_hidden=hidden, fields=fields)
    u, c = torch.randn(shape), torch.randn(3, 5)
    out = b(u, c)
    assert out.shape == (3, 2, *shape[2:])
    torch.testing.assert_close(out, a(u))
    opt = torch.optim.Adam(b.parameters(), lr=1e-2)
    target = c[:, :1].reshape(3, *[1] * (len(shape) - 1))
    for _ in range(3):
        opt.zero_grad()
        ((b(u, c) - target) ** 2).mean().backward()
        opt.step()
    assert not torch.allclose(b(u, c), b(u, -c))
    with pytest.raises(ValueError, match="needs cond"):
        b(u)


def test_fno_spectral_layer_is_translation_equivariant():
    """A Fourier layer commutes with periodic shifts (exact: it is diagonal in Fourier space)."""
    from ssl_pde.models.timestepper import SpectralConv1d

    torch.manual_seed(0)
    layer = SpectralConv1d(6, 8)
    h = torch.randn(2, 6, 64)
    torch.testing.assert_close(layer(torch.roll(h, 5, -1)), torch.roll(layer(h), 5, -1), atol=1e-5, rtol=1e-5)


def test_reduce_conditions_keeps_the_leading_principal_components():
    """A condition whose variance lies in 2 known directions: 2 PCs span them, train stats are (0, 1)."""
    from ssl_pde.eval.timestep import reduce_conditions

    gen = torch.Generator().manual_seed(0)
    z = torch.randn(200, 2, generator=gen) * torch.tensor([5.0, 2.0])
    mix = torch.linalg.qr(torch.randn(10, 10, generator=gen))[0][:2]  # (2, 10) orthonormal rows
    c = z @ mix + 1e-3 * torch.randn(200, 10, generator=gen)
    tr, te = reduce_conditions(c[:150], c[150:], 2)
    assert tr.shape == (150, 2) and te.shape == (50, 2)
    torch.testing.assert_close(tr.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(tr.std(0), torch.ones(2), atol=1e-5, rtol=0)
    # the 2 components determine the original (standardised) condition up to the noise
    coef = torch.linalg.lstsq(tr, (c[:150] - c[:150].mean(0)) / c[:150].std(0)).solution
    resid = (c[150:] - c[:150].mean(0)) / c[:150].std(0) - te @ coef
    assert resid.abs().max() < 0.05
    full_tr, _ = reduce_conditions(c[:150], c[150:], None)
    assert full_tr.shape == (150, 10)


def test_one_step_teacher_forcing_by_hand():
    """One-step predictions read true frames (a persistence stepper's block j repeats frame start + j f - 1),
    while its rollout repeats the last true frame; both are aligned with the same truth. Checked against
    indices worked out by hand, and one_step_metrics against the rollout-error formula."""
    from ssl_pde.eval.timestep import rollout
    from ssl_pde.metrics import one_step_metrics

    class Persist(torch.nn.Module):
        def forward(self, u, cond=None):  # (B, h, X) -> (B, 2, X): the last input frame, twice
            return u[:, -1:].repeat(1, 2, 1)

    u = torch.arange(3 * 11 * 5, dtype=torch.float32).reshape(3, 11, 1, 5) ** 0.5 + 1
    s = Split({"u": u}, torch.ones(3))
    pred, truth = rollout(Persist(), s, None, 3, 2, torch.device("cpu"), start=4, teacher_forced=True)
    rpred, rtruth = rollout(Persist(), s, None, history=3, future=2, device=torch.device("cpu"), start=4)
    assert pred.shape == truth.shape == rpred.shape == (3, 6, 5)  # frames 4..9 (3 blocks of 2)
    torch.testing.assert_close(truth, u[:, 4:10, 0])
    torch.testing.assert_close(rtruth, truth)
    for j, f in enumerate((3, 5, 7)):  # block j: frames 4+2j, 5+2j from frame 3+2j
        torch.testing.assert_close(pred[:, 2 * j], u[:, f, 0])
        torch.testing.assert_close(pred[:, 2 * j + 1], u[:, f, 0])
    torch.testing.assert_close(rpred, u[:, 3:4, 0].expand(3, 6, 5))
    m = one_step_metrics(pred, truth)
    e = ((pred - truth) ** 2).sum(-1) / (truth**2).sum(-1)
    assert m["one_step_nmse"] == pytest.approx(float(e.mean()), rel=1e-6)
    assert m["one_step_mse"] == pytest.approx(float(((pred - truth) ** 2).mean()), rel=1e-6)
    assert m["one_step_mse"] < float(((rpred - truth) ** 2).mean())  # true inputs beat persistence from frame 3


def test_eval_timestep_cli(splits, tmp_path):
    """task=timestep trains the three variants and writes finite rollout metrics and a figure."""
    _, root = splits
    ckpt = _save_encoder(tmp_path / "encoder.pt")
    res = _eval(
        f"ckpt={ckpt}",
        "task=timestep",
        f"data.dir={root}",
        "device=cpu",
        "n_labels=16",
        "seeds=[0,1,2]",
        "timestep.history=4",
        "timestep.future=2",
        "timestep.steps=3",
        "timestep.width=8",
        "timestep.arch=fno",
        "timestep.ssl_dims=3",
        f"out_dir={tmp_path / 'ts'}",
        "wandb.enabled=false",
    )
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads((tmp_path / "ts" / "results.json").read_text())
    for r in doc["per_seed"]:
        assert set(r) == {"none", "param", "ssl"}
        assert all(np.isfinite(v["rollout_nmse"]) and v["frames"] == 6 for v in r.values())
        assert all(0 < v["one_step_mse"] and np.isfinite(v["one_step_nmse"]) for v in r.values())
    assert (tmp_path / "ts" / "rollouts.png").is_file()
    assert not (tmp_path / "ts" / "wandb").exists()
    bad = _eval(f"ckpt={ckpt}", "task=timestep", f"data.dir={root}", "timestep.history=10", "timestep.future=5")
    assert bad.returncode == 2 and "timestep.future=5 exceeds the 11 frames" in bad.stderr
    bad = _eval(f"ckpt={ckpt}", "task=timestep", f"data.dir={root}", "timestep.arch=transformer")
    assert bad.returncode == 2 and "unknown timestep.arch 'transformer'" in bad.stderr
    bad = _eval(
        f"ckpt={ckpt}",
        "task=timestep",
        f"data.dir={root}",
        "timestep.arch=unet",
        "timestep.history=4",
        "timestep.future=2",
    )
    assert bad.returncode == 2 and "timestep.arch=unet does not fit 1D data (use one of: cnn, fno)" in bad.stderr


def test_eval_regression_on_ns2d_buoyancy(tmp_path):
    """ssl-pde-eval task=regression on tiny ns2d data from the real generator (32 x 32 cells, 8 frames):
    the exported NS views (2D crops, time x fields as channels) feed the frozen encoder and the supervised
    baseline (here with the smoke channels too, as an export made before augment.fields existed, saved without
    the key); the buoyancy metrics are finite.
    task=timestep trains the U-Net stepper with the three conditionings (the SSL one from the encoder's
    4-frame window) and writes finite rollout metrics."""
    import hydra
    from omegaconf import OmegaConf

    from tests.conftest import compose_cfg

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
    common = [f"ckpt={tmp_path / 'encoder.pt'}", f"data.dir={tmp_path}", "device=cpu", "wandb.enabled=false"]
    opts = ["n_labels=8", "seeds=[0,1,2]", "supervised.steps=2", "mlp_epochs=5", f"out_dir={tmp_path / 'o'}"]
    res = _eval(*common, *opts)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["pde"] == "ns2d" and doc["param"] == "buoyancy"
    for r in doc["per_seed"]:
        assert all(np.isfinite(r[m]["nmse"]) for m in ("ssl_linear", "ssl_mlp", "supervised", "floor"))
    ts = ["task=timestep", "timestep.history=4", "timestep.future=2", "timestep.steps=3", "timestep.width=8"]
    res = _eval(*common, *ts, "timestep.arch=unet", "n_labels=16", "seeds=[0,1,2]", f"out_dir={tmp_path / 'ts'}")
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads((tmp_path / "ts" / "results.json").read_text())
    for r in doc["per_seed"]:
        assert all(np.isfinite(v["rollout_nmse"]) and v["frames"] == 4 for v in r.values())
        assert all(0 < v["one_step_mse"] < np.inf and np.isfinite(v["one_step_nmse"]) for v in r.values())
    assert doc["rollout_start"] == 4
    assert (tmp_path / "ts" / "rollouts.png").is_file()
    # A shorter stepper history than the encoder's 4-frame window: the rollout still starts at frame 4.
    short = ["timestep.history=2", "timestep.future=1", "seeds=[0]", f"out_dir={tmp_path / 'ts2'}"]
    res = _eval(*common, *ts[:1], *ts[3:], *short, "timestep.arch=unet", "n_labels=16")
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads((tmp_path / "ts2" / "results.json").read_text())
    assert doc["rollout_start"] == 4 and doc["per_seed"][0]["none"]["frames"] == 4
    for args, msg in (
        (["timestep.arch=cnn"], "timestep.arch=cnn does not fit 2D data (use one of: unet)"),
        (["timestep.arch=unet", "timestep.history=2", "timestep.future=5"], "timestep.future=5 exceeds the 8 frames"),
        (["eval_window=middle"], "unknown eval_window 'middle' (choose from: start, center, end)"),
    ):
        bad = _eval(*common, *ts[:3], *args)
        assert bad.returncode == 2 and msg in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr


def test_probe_curve_repeats_the_eval_linear_probe(splits, tmp_path):
    """scripts/probe_curve.py draws the labelled subset and fits the ridge probe as ssl-pde-eval does: its
    16-label row for seed 0 equals evaluate_seed's ssl_linear and floor scores; a label count beyond the
    train split ends with one line and exit status 2. scripts/plot_probe_curves.py plots the written curve
    (its series repeat the file's numbers) and refuses malformed or wrong-kind inputs the same way."""
    data, root = splits
    ckpt = _save_encoder(tmp_path / "encoder.pt")
    script = [sys.executable, str(Path(__file__).parents[1] / "scripts" / "probe_curve.py"), f"--ckpt={ckpt}"]
    args = [f"--data={root}", "--seeds", "0", f"--out={tmp_path / 'curve'}"]
    res = subprocess.run([*script, *args, "--labels", "8", "16"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads((tmp_path / "curve" / "probe_curve.json").read_text())
    assert [r["n_labels"] for r in doc["rows"]] == [8, 16] and doc["param"] == "nu"
    enc = ResNet18(3, (8, 16, 32, 64))
    enc.load_state_dict(torch.load(ckpt)["state_dict"])
    ref = _evaluate_16_labels(enc.eval(), data, sup_steps=1)["metrics"]
    row = doc["rows"][1]["per_seed"][0]
    for m in ("ssl_linear", "floor"):
        assert row[m]["mse"] == pytest.approx(ref[m]["mse"], rel=1e-6), m
    bad = subprocess.run([*script, *args, "--labels", "999"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--labels 999 must lie in [8, 24]" in bad.stderr, bad.stderr
    assert bad.stderr.count("\n") == 1
    # scripts/plot_probe_curves.py draws that curve (and its floor); files of the wrong kind end with exit 2
    plot = [sys.executable, str(Path(__file__).parents[1] / "scripts" / "plot_probe_curves.py")]
    curve = f"ssl={tmp_path / 'curve' / 'probe_curve.json'}"
    res = subprocess.run([*plot, "--curve", curve, f"--out={tmp_path / 'c.png'}"], capture_output=True)
    assert res.returncode == 0 and (tmp_path / "c.png").stat().st_size > 0, res.stderr[-2000:]
    spec = importlib.util.spec_from_file_location("plot_probe_curves", plot[1])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # supervised points from ssl-pde-eval results (the fields it writes), grouped by name and training budget
    evals = []
    for i, (n, steps, mse) in enumerate(((64, 300, 0.009), (16, 300, 0.02), (1664, 780, 0.003))):
        sup = {"mse": [mse, mse / 10]}
        res_doc = {
            "task": "regression",
            "n_labels": n,
            "summary": {"supervised": sup},
            "config": {"supervised": {"steps": steps}},
        }
        (tmp_path / f"r{i}.json").write_text(json.dumps(res_doc))
        evals.append(("sup", tmp_path / f"r{i}.json"))
    got = mod.series([("ssl", tmp_path / "curve" / "probe_curve.json")], evals)
    assert got["ssl"]["n"] == [8, 16] and got["ssl"]["mean"] == [r["ssl_linear_mse"][0] for r in doc["rows"]]
    assert got[mod.FLOOR]["mean"] == [r["floor_mse"][0] for r in doc["rows"]]
    assert got["sup, 300 steps"]["n"] == [16, 64] and got["sup, 300 steps"]["mean"] == [0.02, 0.009]
    assert got["sup, 780 steps"]["n"] == [1664] and got["sup, 780 steps"]["std"] == [pytest.approx(3e-4)]
    for flag, item, why in (
        ("--curve", "no-name", "must look like NAME=PATH"),
        ("--curve", f"x={tmp_path / 'missing.json'}", "no file"),
        ("--eval", f"sup={tmp_path / 'curve' / 'probe_curve.json'}", "not an ssl-pde-eval regression results.json"),
        ("--eval", f"x={tmp_path / 'c.png'}", "cannot read it as JSON"),
        ("--eval", f"ssl={tmp_path / 'r0.json'}", "series name 'ssl' is used twice"),
    ):
        extra = [] if flag == "--curve" else ["--curve", curve]
        bad = subprocess.run([*plot, flag, item, *extra, f"--out={tmp_path / 'd.png'}"], capture_output=True, text=True)
        assert bad.returncode == 2 and why in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr
    assert not (tmp_path / "d.png").exists()
