"""Mixed pretraining over Burgers, KdV and KS (``experiment=mixed_1d_vicreg``) on tiny data from the real generator:
mixing proportions, each element viewed by its own PDE's generators only, a short run through the real command line
with per-PDE exports that the evaluation loads, and the configs composing in struct mode."""

from __future__ import annotations

import csv
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError

import ssl_pde.config  # noqa: F401
from data_gen.cli.generate import generate
from ssl_pde.augment.mixed import MixedViews
from ssl_pde.augment.views import LieViews
from ssl_pde.cli.pretrain import main
from ssl_pde.core.errors import UserError
from ssl_pde.data.datasets import TrajectoryDataset
from ssl_pde.data.mixed import MixedDataModule, MixedDataset, MixedSampler, batch_counts
from ssl_pde.data.schema import SchemaError
from ssl_pde.metrics import ridge_classify
from ssl_pde.pdes import pde_index
from tests.conftest import compose_cfg, generate_cfg

PDES3 = ("burgers", "kdv", "ks")
SIZES = {"burgers": 16, "kdv": 8, "ks": 8}  # train trajectories per PDE (valid: 8 each)


@pytest.fixture(scope="module")
def mixed_data(tmp_path_factory) -> Path:
    """Tiny train and valid splits of Burgers, KdV and KS on 11 frames x 64 points each (KS at nx=64: a mix needs
    one trajectory shape), from the real generator."""
    root = tmp_path_factory.mktemp("mixed_data")
    for pde in PDES3:
        extra = {"nx": 64, "solver_nx": 128} if pde == "ks" else {}
        for split, n in (("train", SIZES[pde]), ("valid", 8)):
            cfg = generate_cfg(pde, root, num_samples=n, shard_size=8, **extra)
            cfg.split = split
            generate(cfg)
    return root


def _module(root: Path, mix: dict[str, float], batch_size: int = 8, **kw) -> MixedDataModule:
    dm = MixedDataModule(str(root), mix, batch_size=batch_size, num_workers=0, **kw)
    dm.setup("fit")
    return dm


def test_batch_counts_have_the_weights_as_expectation():
    """Systematic rounding: every batch has floor or ceil of B w_k of each PDE, B in all, and averaged over the
    offset u the counts are exactly B w_k."""
    w = np.array([0.5, 0.3, 0.2])
    for b in (1, 7, 8, 64):
        us = (np.arange(2000) + 0.5) / 2000
        counts = np.array([batch_counts(w, b, u) for u in us])
        assert (counts.sum(1) == b).all()
        assert (counts >= np.floor(b * w - 1e-9)).all() and (counts <= np.ceil(b * w + 1e-9)).all()
        np.testing.assert_allclose(counts.mean(0), b * w, atol=1e-3)


def test_sampler_mixes_by_the_weights_seeded():
    """Over many batches the shares of the PDEs match the normalised weights; each PDE's indices come from its own
    range; the order depends only on (seed, epoch)."""
    sizes, weights, b = [40, 400, 25], [2.0, 1.0, 1.0], 7
    s = MixedSampler(sizes, weights, b, seed=3)
    assert len(s) == (465 // b) * b
    counts = np.zeros(3)
    for epoch in range(6):
        s.set_epoch(epoch)
        for batch in s.batches():
            assert len(batch) == b
            k = np.searchsorted(s.offsets, batch, side="right") - 1
            c = np.bincount(k, minlength=3)
            assert c[0] in (3, 4) and c[1] in (1, 2) and c[2] in (1, 2)  # floor or ceil of 3.5, 1.75, 1.75
            counts += c
    np.testing.assert_allclose(counts / counts.sum(), [0.5, 0.25, 0.25], atol=0.01)
    s.set_epoch(2)
    again = MixedSampler(sizes, weights, b, seed=3)
    again.set_epoch(2)
    assert list(s) == list(again)
    again.set_epoch(3)
    assert list(s) != list(again)
    assert list(s) != list(MixedSampler(sizes, weights, b, seed=4).__iter__())
    with pytest.raises(UserError, match="must be finite and > 0"):
        MixedSampler(sizes, [1.0, 0.0, 1.0], b, seed=0)


def test_data_module_batches_carry_each_elements_pde(mixed_data):
    """The loader's batches: shares by data.mix, every element tagged with its PDE's registry index and holding
    exactly that PDE's stored trajectory; a weight of 0 leaves a PDE out; the validation order interleaves PDEs."""
    dm = _module(mixed_data, {"burgers": 2.0, "kdv": 1.0, "ks": 1.0}, batch_size=8, preload=True)
    ds = dm.train_set
    assert isinstance(ds, MixedDataset) and ds.names == list(PDES3) and len(ds) == 32
    own = {p: TrajectoryDataset(mixed_data / p / "train", preload=True) for p in PDES3}
    loader = dm.train_dataloader()
    seen = np.zeros(3)
    for epoch in range(8):
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            assert batch["u"].shape == (8, 11, 1, 64) and batch["pde"].shape == (8,)
            for j in range(8):
                p = PDES3[[pde_index(n) for n in PDES3].index(int(batch["pde"][j]))]
                ref = own[p][int(batch["index"][j])]
                assert torch.equal(batch["u"][j], ref["u"]) and torch.equal(batch["x"][j], ref["x"])
                assert float(batch["length"][j]) == float(ref["length"])
            seen += [int((batch["pde"] == pde_index(p)).sum()) for p in PDES3]
    np.testing.assert_allclose(seen / seen.sum(), [0.5, 0.25, 0.25], atol=0.03)
    val = [int(c) for b in dm.val_dataloader() for c in b["pde"]]
    assert sorted(val) == sorted(pde_index(p) for p in PDES3 for _ in range(8))
    assert len(set(val[:12])) == 3  # the probe's fitting half holds every PDE
    assert _module(mixed_data, {"burgers": 1.0, "kdv": 0.0, "ks": 1.0}).train_set.names == ["burgers", "ks"]


def test_mixed_data_refuses_other_shapes_and_unknown_pdes(mixed_data, tmp_path):
    """A PDE stored on another grid size, an unknown PDE, a negative weight: refused with the reason."""
    cfg = generate_cfg("ks", tmp_path, num_samples=4, shard_size=4)  # the TINY KS grid: 32 points
    generate(cfg)
    (tmp_path / "burgers").symlink_to(mixed_data / "burgers")
    with pytest.raises(SchemaError, match=r"one shape \(T, C, X\), got burgers \(11, 1, 64\), ks \(11, 1, 32\)"):
        _module(tmp_path, {"burgers": 1.0, "ks": 1.0})
    with pytest.raises(UserError, match="unknown PDEs"):
        MixedDataModule(str(mixed_data), {"burgers": 1.0, "wave": 1.0})
    with pytest.raises(UserError, match="finite and >= 0"):
        MixedDataModule(str(mixed_data), {"burgers": -1.0})


def _views(mode: str = "coords", **strengths: dict[str, float]) -> MixedViews:
    return MixedViews(
        {p: LieViews(p, strengths.get(p, {}), mode=mode, crop_t=6, crop_x=16) for p in PDES3}, mode, 6, 16
    )


def _batch(root: Path) -> dict:
    dm = _module(root, {p: 1.0 for p in PDES3}, batch_size=12, preload=True)
    return next(iter(dm.val_dataloader()))


def test_each_element_is_viewed_by_its_own_pdes_generators(mixed_data):
    """Only KdV has a Galilean boost: Burgers and KS views are pure crops of their trajectories (coordinates on the
    stored grid), KdV views are boosted; each PDE's views are exactly its own LieViews on its own elements, drawn in
    turn from the one generator (a spy sees each PDE's elements only)."""
    batch = _batch(mixed_data)
    views = _views(kdv={"galilean_boost": 0.4})
    u, t, x, length, pde = views.inputs(batch)
    gen = torch.Generator().manual_seed(5)
    v1, v2 = views.two_views(u, t, x, length, pde, gen)
    assert v1.shape == v2.shape == (12, 3, 6, 16)
    for j in range(12):
        name = "kdv" if int(pde[j]) == pde_index("kdv") else "other"
        dt, dx = float(t[j, 1] - t[j, 0]), float(length[j]) / 64
        tt = torch.arange(6, dtype=torch.float64)[:, None] * dt
        xx = torch.arange(16, dtype=torch.float64)[None, :] * dx
        on_grid = torch.allclose(v1[j, 0].double(), tt.expand(6, 16), atol=1e-5) and torch.allclose(
            v1[j, 1].double(), xx.expand(6, 16), atol=1e-4 * float(length[j])
        )
        assert on_grid == (name == "other"), (j, name)
        if name == "other":  # the field channel is a window of the stored trajectory (x wraps)
            field = u[j].double()
            wins = [torch.roll(field, -x0, dims=1)[t0 : t0 + 6, :16] for t0 in range(11 - 6 + 1) for x0 in range(64)]
            assert any(torch.allclose(v1[j, 2].double(), w, atol=1e-6) for w in wins), j
    # the same draws from each PDE's own views on its own elements, in the views' order
    gen, ref_gen = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    out = views.view(u, t, x, length, pde, gen)
    seen = {}
    for name, v in views.views.items():
        m = pde == pde_index(name)
        seen[name] = v.view(u[m], t[m], x[m], length[m], ref_gen)
        assert torch.equal(out[m], seen[name]), name
        assert torch.equal(views.eval_view(u, t, x, length, pde)[m], v.eval_view(u[m], t[m], x[m], length[m]))
    calls = {}
    for name, v in views.views.items():
        orig = v.view

        def spy(uu, *a, _name=name, _orig=orig, **k):
            calls[_name] = uu
            return _orig(uu, *a, **k)

        v.view = spy
    views.view(u, t, x, length, pde, torch.Generator().manual_seed(0))
    for name in PDES3:
        assert torch.equal(calls[name], u[pde == pde_index(name)]), name


def test_mixed_views_refuse_what_they_cannot_read(mixed_data):
    """Views of another crop size, elements of a PDE without views, a single-PDE dataset."""
    with pytest.raises(UserError, match="share"):
        MixedViews({"burgers": LieViews("burgers", {}, crop_t=6, crop_x=8)}, "coords", 6, 16)
    views = MixedViews({"burgers": LieViews("burgers", {}, crop_t=6, crop_x=16)}, "coords", 6, 16)
    batch = _batch(mixed_data)
    with pytest.raises(UserError, match=r"batch elements of \['kdv', 'ks'\], which have no views here"):
        views.eval_view(*views.inputs(batch))
    with pytest.raises(UserError, match="mixed views read mixed data"):
        views.check_dataset(TrajectoryDataset(mixed_data / "burgers" / "train"))
    with pytest.raises(UserError, match=r"data.mix reads \['kdv', 'ks'\], which have no views"):
        views.check_dataset(_module(mixed_data, {p: 1.0 for p in PDES3}).train_set)


def test_ridge_classify_reads_separable_classes():
    """The identity probe: separable classes (arbitrary codes) -> accuracy 1 against the majority floor."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 2, 3] * 20)[torch.randperm(60, generator=gen)]
    feats = torch.randn(60, 5, generator=gen) * 0.1
    for j, code in enumerate((0, 2, 3)):  # each class displaced along its own direction
        feats[:, j] += (labels == code).float()
    r = ridge_classify(feats, labels)
    assert r["accuracy"] == 1.0 and r["floor_accuracy"] < 0.6


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_mixed_pretraining_run_writes_per_pde_exports_the_evaluation_loads(cli, mixed_data, tmp_path):
    """experiment=mixed_1d_vicreg debug=smoke through the real command line: it trains and logs (loss, RankMe, the
    PDE identity probe; no parameter probe, no best.ckpt), and writes encoder_<pde>.pt per PDE, one set of weights,
    each an ordinary export of its PDE that ssl_pde.eval.setup loads and feeds with its own data."""
    from ssl_pde.eval.setup import build_views, load_encoder

    run = tmp_path / "run"
    res = cli(
        main, "experiment=mixed_1d_vicreg", "debug=smoke", f"data.dir={mixed_data}", f"run_dir={run}", "logger=csv"
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert (run / "checkpoints" / "last.ckpt").is_file() and not (run / "checkpoints" / "best.ckpt").exists()
    rows = _metrics(run)
    losses = [float(r["train/loss"]) for r in rows if r["train/loss"]]
    assert len(losses) == 8 and all(np.isfinite(losses))  # 32 trajectories / 8 per batch, 2 epochs
    assert any(r["val/rankme"] for r in rows) and any(r["val/pde_accuracy"] for r in rows)
    assert "val/probe_nmse" not in rows[0]
    assert not (run / "encoder.pt").exists()
    cfg = OmegaConf.load(run / "config.yaml")
    assert dict(cfg.data.mix) == {"burgers": 1.0, "kdv": 1.0, "ks": 1.0} and cfg.augment.mode == "resample"
    weights = None
    for p, param in (("burgers", "nu"), ("kdv", "domain_length"), ("ks", "domain_length")):
        path = run / f"encoder_{p}.pt"
        enc, exp, _ = load_encoder(path, torch.device("cpu"))
        assert exp["pde"] == exp["dataset"] == p and exp["probe_param"] == param
        assert exp["mixed"]["mix"] == {"burgers": 1.0, "kdv": 1.0, "ks": 1.0}
        views = build_views(exp, path, None)
        assert isinstance(views, LieViews) and views.pde == p and (views.crop_t, views.crop_x) == (8, 32)
        assert views.mode == "resample" and views.strengths.tolist() == [
            float(v) for v in cfg.augment.views[p].strengths.values() if v > 0
        ]
        ds = TrajectoryDataset(mixed_data / p / "valid", [param], preload=True)
        views.check_dataset(ds)
        z = enc(views.eval_view(*views.inputs(ds.__getitems__([0, 1, 2]))))
        assert z.shape == (3, 64) and torch.isfinite(z).all()
        if weights is None:
            weights = exp["state_dict"]
        assert all(torch.equal(weights[k], exp["state_dict"][k]) for k in weights)


def test_mixed_and_single_pde_settings_do_not_combine(cli, mixed_data, tmp_path):
    """Mixed views on one PDE's data, or one PDE's views on mixed data: one line, exit 2, nothing written."""
    for args, why in (
        (["experiment=mixed_1d_vicreg", "data=trajectories", "data.dataset=burgers"], "mixed views read mixed data"),
        (["experiment=mixed_1d_vicreg", "augment=burgers", "augment.pde=burgers"], "mixed views and mixed data"),
    ):
        run = tmp_path / "run"
        res = cli(main, *args, "debug=smoke", f"data.dir={mixed_data}", f"run_dir={run}", "logger=csv")
        assert res.returncode == 2 and why in res.stderr and res.stderr.strip().count("\n") == 0, res.stderr[-2000:]
        assert not run.exists()


def test_mixed_experiment_composes_in_struct_mode(tmp_path):
    """experiment=mixed_1d_vicreg composes in struct mode: the mix declared once in data.mix, every PDE's views
    reading the common mode and crop size, each PDE's own strengths (KdV's scaling off), the members' probe
    parameters; views and encoder agree on channels; a PDE's views set to another crop are refused."""
    cfg = compose_cfg("pretrain", ["experiment=mixed_1d_vicreg", f"run_dir={tmp_path}", "augment.crop_t=16"])
    assert OmegaConf.is_struct(cfg)
    with pytest.raises(ConfigAttributeError):
        cfg.data.mixx = 1
    assert cfg.name == "mixed_1d_vicreg" and dict(cfg.data.mix) == {"burgers": 1.0, "kdv": 1.0, "ks": 1.0}
    for p in PDES3:
        v = cfg.augment.views[p]
        assert (v.pde, v.mode, v.crop_t, v.crop_x) == (p, "resample", 16, 128)
    assert cfg.augment.views.kdv.strengths.scaling == 0.0 and cfg.augment.views.burgers.strengths.scaling == 0.1
    assert cfg.pde.members.burgers.probe_param == "nu" and cfg.pde.members.ks.probe_param == "domain_length"
    views = hydra.utils.instantiate(cfg.augment)
    assert isinstance(views, MixedViews) and views.channels == cfg.encoder.in_channels == 1
    assert [v.names for v in views.views.values()] == [
        ["space_translation", "galilean_boost", "scaling"],
        ["space_translation", "galilean_boost"],
        ["space_translation", "galilean_boost"],
    ]
    coords = compose_cfg("pretrain", ["experiment=mixed_1d_vicreg", "augment.mode=coords"])
    assert coords.encoder.in_channels == 3 and coords.augment.views.ks.mode == "coords"
    bad = compose_cfg("pretrain", ["experiment=mixed_1d_vicreg", "augment.views.kdv.crop_t=16"])
    with pytest.raises(hydra.errors.InstantiationException, match="every PDE's views of a mix share"):
        hydra.utils.instantiate(bad.augment)
