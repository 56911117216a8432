"""PDE identification (``ssl-pde-eval task=pde_id``, :mod:`ssl_pde.eval.pde_id`): the pure pieces against hand-made
inputs, and a tiny mixed run of Burgers, KdV and KS from the real generator evaluated end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from data_gen.cli.generate import generate
from ssl_pde.cli.eval import main as eval_main
from ssl_pde.cli.pretrain import main as pretrain_main
from ssl_pde.eval.pde_id import classify, normalise_amplitude, paired_difference, trivial_features
from tests.conftest import generate_cfg

PDES3 = ("burgers", "kdv", "ks")


def test_normalise_amplitude_divides_each_trajectory_and_channel_by_its_rms():
    """(N, T, C, X): afterwards every (trajectory, channel) has RMS 1 over frames and points; a zero field stays 0;
    the fields' shapes are untouched (a trajectory times 7 normalises to the same field)."""
    g = torch.Generator().manual_seed(0)
    u = torch.randn(3, 5, 2, 8, generator=g) * torch.tensor([1.0, 10.0]).view(1, 1, 2, 1)
    u[2, :, 1] = 0.0
    v = normalise_amplitude(u)
    rms = v.pow(2).mean(dim=(1, 3)).sqrt()
    assert torch.allclose(rms[:2], torch.ones(2, 2), atol=1e-6) and rms[2, 0] == pytest.approx(1.0, abs=1e-6)
    assert torch.all(v[2, :, 1] == 0)
    assert torch.allclose(normalise_amplitude(7 * u[:1]), v[:1], atol=1e-6)


def test_trivial_features_by_hand():
    """One channel, T = 2 frames of X = 4 points: u = [[0, 1, 0, -1], [0, 1, 0, -1]] (a pure mode-1 sine): mean 0,
    std sqrt(4/7) (ddof 1 over 8 values of squares summing to 4), no change in time, mean |du/dx| 1; its power
    is all in mode 1, so the spectrum's shape is log(1) there and log(1e-12) (the floor) elsewhere."""
    u = torch.tensor([[0.0, 1, 0, -1], [0.0, 1, 0, -1]]).view(1, 1, 2, 4)
    f = trivial_features(u)
    assert f.shape == (1, 4 + 3)
    assert f[0, :4].tolist() == pytest.approx([0.0, (4 / 7) ** 0.5, 0.0, 1.0], abs=1e-6)
    assert f[0, 4:].tolist() == pytest.approx([np.log(1e-12), 0.0, np.log(1e-12)], abs=1e-5)
    assert torch.allclose(trivial_features(3 * u)[0, 4:], f[0, 4:])  # the spectrum's shape ignores amplitude


def test_classify_reads_separable_classes_and_scores_test_once():
    """Three classes at distinct feature means: perfect valid and test accuracy, a diagonal confusion matrix, and
    among tied strengths the largest (the simplest fit); with uninformative features the accuracy is near chance."""
    g = torch.Generator().manual_seed(1)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = torch.arange(3).repeat_interleave(n)
        return torch.nn.functional.one_hot(c, 3).float() * 5 + 0.1 * torch.randn(3 * n, 3, generator=g), c

    (ftr, ctr), (fva, cva), (fte, cte) = make(20), make(10), make(10)
    r = classify({"train": ftr, "valid": fva, "test": fte}, {"train": ctr, "valid": cva, "test": cte}, [1e-3, 1e-1], 3)
    assert r["accuracy"] == r["balanced_accuracy"] == r["valid_accuracy"] == 1.0 and r["lambda"] == 0.1
    assert r["confusion"] == [[10, 0, 0], [0, 10, 0], [0, 0, 10]] and r["correct"].shape == (30,)
    noise = {s: torch.randn(len(c), 3, generator=g) for s, c in (("train", ctr), ("valid", cva), ("test", cte))}
    r = classify(noise, {"train": ctr, "valid": cva, "test": cte}, [1e-3, 1e-1], 3)
    assert r["accuracy"] < 0.7


def test_paired_difference_verdicts():
    """All right against all wrong: +1 with the interval [1, 1], "a ahead"; identical: 0, no difference; the
    level of the interval names one pretraining seed or several."""
    right, wrong = np.ones((2, 30)), np.zeros((2, 30))
    d = paired_difference(right, wrong, 1000, ("SSL", "trivial"))
    assert (d["difference"], d["low"], d["high"], d["verdict"]) == (1.0, 1.0, 1.0, "SSL ahead")
    assert d["interval_over"] == "pretraining seeds and test trajectories"
    same = paired_difference(right[:1], right[:1], 1000, ("SSL", "trivial"))
    assert same["verdict"] == "no difference shown" and "one pretraining seed" in same["interval_over"]
    assert paired_difference(wrong, right, 1000, ("SSL", "trivial"))["verdict"] == "trivial ahead"


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """Tiny train / valid / test splits of Burgers, KdV and KS on 11 frames x 64 points (one trajectory shape), from
    the real generator, and the command line of a mixed VICReg run on them (``debug=smoke``)."""
    from omegaconf import open_dict

    root = tmp_path_factory.mktemp("pde_id")
    data = root / "data"
    for pde in PDES3:
        extra = {"nx": 64, "solver_nx": 128} if pde == "ks" else {}
        for split, n in (("train", 16), ("valid", 8), ("test", 8)):
            cfg = generate_cfg(pde, data, num_samples=n, shard_size=8, **extra)
            with open_dict(cfg):
                cfg.split = split
            generate(cfg)
    run = root / "run"
    args = ["experiment=mixed_1d_vicreg", "debug=smoke", f"data.dir={data}", f"run_dir={run}", "logger=csv"]
    return data, run, args


def test_pde_id_end_to_end(cli, mixed_run, tmp_path):
    """ssl-pde-eval task=pde_id on a mixed run's export: every feature set on stored and normalised inputs, scores
    within [0, 1], the floor 1/3 (equal test splits), the trivial features of the stored fields beating the floor
    (the PDEs' amplitudes and spectra differ), results.json / results.md / the figure written. A single-PDE export
    is refused with one line."""
    data, run, args = mixed_run
    res = cli(pretrain_main, *args)
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "pde_id"
    ev = [f"data.dir={data}", f"out_dir={out}", "device=cpu", "wandb.enabled=false", "pde_id.n_boot=200"]
    res = cli(eval_main, "task=pde_id", f"ckpt={run / 'encoder_kdv.pt'}", *ev)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    r = doc["result"]
    assert r["pdes"] == list(PDES3) and r["n"]["test"] == {p: 8 for p in PDES3}
    assert r["floor"] == pytest.approx(1 / 3)
    assert set(r["rows"]) == {f"{f}/{i}" for f in ("ssl", "random_init", "trivial") for i in ("stored", "normalised")}
    for row in r["rows"].values():
        (acc,) = [s["accuracy"] for s in row["seeds"]]
        assert 0 <= acc <= 1 and sum(map(sum, row["seeds"][0]["confusion"])) == 24
    assert r["rows"]["trivial/stored"]["accuracy"][0] > 0.5
    assert set(r["comparisons"]) == {
        f"ssl-{o}/{i}" for o in ("random_init", "trivial") for i in ("stored", "normalised")
    }
    assert (out / "pde_id.png").is_file() and "| SSL - trivial features | normalised |" in (
        out / "results.md"
    ).read_text()
    single = tmp_path / "single"
    torch.save({**torch.load(run / "encoder_ks.pt", weights_only=True), "mixed": None}, single.with_suffix(".pt"))
    res = cli(eval_main, "task=pde_id", f"ckpt={single.with_suffix('.pt')}", *ev[:1], f"out_dir={tmp_path / 'x'}")
    assert res.returncode == 2 and "single-PDE export" in res.stderr and not (tmp_path / "x").exists()
