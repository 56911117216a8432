"""scripts/bench_train.py's precision / layout variants, and the pretraining module's channels-last option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parent.parent


def test_variant_rows_are_consistent(tmp_path):
    """A tiny in-process run on the demo experiment: one row per variant, ratios to float32 contiguous, and each
    fraction is the variant's FLOP/s over the measured peak of that dtype (the same flop count for all)."""
    bench = load_script("bench_train")
    argv = ["--device", "cpu", "--experiment", "burgers_demo", "--batch", "8", "--crop", "16", "32", "--steps", "1"]
    argv += ["--n-traj", "16", "--variants", "fp32", "fp32-cl", "bf16-cl", "--ceiling-seconds", "0.2"]
    bench.main([*argv, "--out", str(tmp_path), "--tag", "t"])
    data = json.loads((tmp_path / "train_t.json").read_text())
    rows = data["encoder_step_variants"]
    assert set(rows) == {"fp32", "fp32-cl", "bf16-cl"}  # trainer=cpu: float32, channels-last
    assert data["encoder_step_default_variant"] == "fp32-cl" and data["precision"] == "32-true"
    assert rows["fp32"]["ratio_vs_fp32"] == pytest.approx(1.0)
    peaks = data["ceilings"]["matmul_flops_per_s"]
    for r in rows.values():
        assert r["flops_per_s"] == pytest.approx(r["samples_per_s"] * data["model_flops_per_sample"])
        assert r["fraction_of_fp32_peak"] == pytest.approx(r["flops_per_s"] / peaks["float32"])
    assert data["batch"] == 8 and data["crop"] == [16, 32]
    assert "| `fp32-cl`: float32, channels-last |" in (tmp_path / "train_t.md").read_text()


@pytest.mark.parametrize("channels_last", [True, False])
def test_pretraining_module_layout(channels_last, tmp_path):
    """method.channels_last puts the encoder's convolution weights and the training views in channels-last layout
    (the same numbers, another memory order); false keeps both contiguous."""
    import hydra

    from tests.conftest import compose_cfg

    cfg = compose_cfg(
        "pretrain",
        ["experiment=burgers_demo", f"method.channels_last={str(channels_last).lower()}", f"run_dir={tmp_path}"],
    )
    model = hydra.utils.instantiate(
        cfg.method,
        encoder=hydra.utils.instantiate(cfg.encoder),
        views=hydra.utils.instantiate(cfg.augment),
        optimizer=hydra.utils.instantiate(cfg.optim),
    )
    model.on_fit_start()
    conv = next(m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert conv.weight.is_contiguous(memory_format=fmt)
    u, tt = torch.randn(4, 40, 80), torch.linspace(0, 1, 40).expand(4, 40)  # (B, T, X) first field, times
    x, length = torch.linspace(0, 6, 80).expand(4, 80), torch.full((4,), 6.3)
    views = [
        *model.views.two_views(u, tt, x, length, torch.Generator().manual_seed(0)),
        model.views.eval_view(u, tt, x, length),
    ]
    for v in map(model.laid_out, views):
        assert v.dim() == 4 and v.is_contiguous(memory_format=fmt)
        assert v.is_contiguous() != channels_last


def test_compare_pretrain_report(burgers_data, tmp_path):
    """scripts/compare_pretrain.py on tiny data: two settings x two seeds, the same steps for all runs; the summary
    is computed from the per-seed rows (paired difference, seed spread with ddof=1); a rerun reads the finished
    runs back, and a run directory made with other settings is refused."""
    import numpy as np

    mod = load_script("compare_pretrain")
    argv = ["--data", str(burgers_data), "--experiment", "burgers_demo", "--seeds", "0", "1"]
    argv += ["--a", "method.channels_last=false", "--b", "method.channels_last=true", "--work", str(tmp_path / "w")]
    argv += ["--extra", "debug=smoke", "data.batch_size=8", "--out", str(tmp_path), "--tag", "t"]
    mod.main(argv)
    data = json.loads((tmp_path / "pretrain_compare_t.json").read_text())
    runs, s = data["runs"], data["summary"]
    a = np.array([runs["A"][k]["probe_nmse"] for k in ("0", "1")])
    b = np.array([runs["B"][k]["probe_nmse"] for k in ("0", "1")])
    assert {runs[x][k]["steps"] for x in "AB" for k in ("0", "1")} == {runs["A"]["0"]["steps"]}
    assert s["probe_seed_std_a"] == pytest.approx(a.std(ddof=1))
    d = b - a
    assert s["probe_mean_paired_difference"] == pytest.approx(d.mean())
    half = 12.706 * d.std(ddof=1) / np.sqrt(2)  # t(0.975, 1 degree of freedom)
    assert s["probe_paired_difference_ci95"] == pytest.approx([d.mean() - half, d.mean() + half], rel=1e-3)
    assert s["within_seed_noise"] == (abs(d.mean()) <= half)
    assert "| 0 |" in (tmp_path / "pretrain_compare_t.md").read_text()
    mod.main(argv)  # rerun: the finished runs are read back, the same summary
    assert json.loads((tmp_path / "pretrain_compare_t.json").read_text())["summary"] == s
    other = [("data.batch_size=4" if a == "data.batch_size=8" else a) for a in argv]  # same run names, other runs
    with pytest.raises(SystemExit, match="made with other settings"):
        mod.main(other)
