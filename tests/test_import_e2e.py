"""End to end on imported data, through the real command lines (in-process): ``ssl-pde-import`` of upstream-written
files, ``ssl-pde-pretrain`` on the result with the existing experiments (registry PDEs) or the generic views
(external datasets), and the evaluation of the encoders on imported splits."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import torch

from data_gen.cli.generate import generate
from data_gen.cli.import_data import main as import_main
from ssl_pde.cli.eval import main as eval_main
from ssl_pde.cli.pretrain import main as pretrain_main
from ssl_pde.data.datasets import TrajectoryDataset
from ssl_pde.eval.curves import probe_curve
from ssl_pde.eval.data import Split
from ssl_pde.eval.setup import load_inputs
from tests.conftest import REPO_ROOT, compose_cfg, generate_cfg
from tests.eval_helpers import TINY_EVAL

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "external"
ARENA = FIXTURES / "pdearena" / "NavierStokes2D_train_142_0.47062_2.h5"
LPSDA_KS = [FIXTURES / "lpsda" / name for name in ("KS_train_4.h5", "KS_valid.h5", "KS_test.h5")]
WELL = FIXTURES / "the_well" / "dummy_well_seed0.hdf5"
#: ssl-pde-generate's KS in LPSDA's setting (configs/solver/ks.yaml): 256 points, 140 of 500 frames, L = 64 and
#: T = 100 jittered by 10 % per trajectory; the keys of conftest.TINY set back to it.
KS_LPSDA = dict(nx=256, nt=140, nt_total=500, length=64.0, t_end=100.0, solver_nx=256, dt_max=0.05)


def _run(cli, main, *args: str) -> None:
    res = cli(main, *args)
    assert res.returncode == 0, res.stderr[-3000:]


def _pretrain(cli, run: Path, *args: str, logger: str = "csv") -> dict:
    """``ssl-pde-pretrain debug=smoke`` (CSV logs only by default); returns the exported encoder."""
    _run(cli, pretrain_main, "debug=smoke", f"run_dir={run}", f"logger={logger}", *args)
    return torch.load(run / "encoder.pt", weights_only=True)


def write_pdearena_files(out: Path, n: dict[str, int]) -> list[Path]:
    """Test helper: files in PDEArena's layout whose values come from this project's ns2d generator.

    PDEArena's generator needs PhiFlow 2.1 (numpy < 1.24), so the fixture is its only upstream-written file: 2
    trajectories of one buoyancy. For splits with several buoyancies this helper runs ``ssl-pde-generate pde=ns2d``
    on PDEArena's 32 x 32 box at 64 x 64 cells (frames every 1.5 time units, as upstream), one buoyancy per
    trajectory drawn from PDEArena's U(0.2, 0.5), and writes each trajectory as one file named and laid out as
    PDEArena's writer does (``NavierStokes2D_<mode>_<seed>_<buoyancy:.5f>[_<n>].h5``; group ``<mode>``: ``u``, ``vx``,
    ``vy`` (N, T, X, Y) float64, ``t = linspace(tmin, tmin + T dt, T)``, ``dt``, node grids ``x``, ``y`` =
    ``linspace(0, 32, 64)``, ``dx``, ``dy`` = 32 / 63, ``buo_y``). Two differences from upstream: the frames are
    at t = 1.5 .. 9 (not 18 .. 25.5, which costs 5 times the solver time) and the velocities are cell-centre values
    (PhiFlow's are staggered face values); each file's buoyancy is the one its trajectory was simulated with.

    Args:
        out: directory of the files.
        n: trajectories per split, e.g. ``{"train": 6, "valid": 3, "test": 3}``.

    Returns:
        The files written.
    """
    total = sum(n.values())
    solver = dict(nx=64, ny=64, nt=6, t_start=1.5, t_end=9.0, dt_max=0.1)
    gen = out / "generated"
    cfg = compose_cfg(
        "generate",
        [
            "pde=ns2d",
            *[f"solver.{k}={v}" for k, v in solver.items()],
            *[f"out_dir={gen}", f"num_samples={total}", f"shard_size={total}", f"batch_size={total}"],
            *["device=cpu", "progress=false"],
        ],
    )
    generate(cfg)
    with h5py.File(gen / "ns2d" / "train" / "shard-00000.h5") as f:
        u, t, b = f["u"][...].astype(np.float64), f["t"][...], f["params/buoyancy"][...]
    nodes = np.linspace(0.0, 32.0, 64)[None]
    paths, i = [], 0
    for mode, count in n.items():
        for _ in range(count):
            dt = t[i, 1] - t[i, 0]
            name = f"NavierStokes2D_{mode}_{1000 + i}_{b[i]:.5f}" + ("_1" if mode == "train" else "") + ".h5"
            with h5py.File(out / name, "w") as f:
                g = f.create_group(mode)
                for c, key in enumerate(("u", "vx", "vy")):
                    g.create_dataset(key, data=u[i : i + 1, :, c])
                g.create_dataset("t", data=np.linspace(t[i, 0], t[i, 0] + 6 * dt, 6)[None])
                g.create_dataset("dt", data=[dt])
                for key in ("x", "y"):
                    g.create_dataset(key, data=nodes)
                    g.create_dataset(f"d{key}", data=[32.0 / 63])
                g.create_dataset("buo_y", data=b[i : i + 1])
            paths.append(out / name)
            i += 1
    shutil.rmtree(gen)
    return paths


def test_pdearena_pretraining_and_buoyancy_regression(cli, tmp_path):
    """Imported PDEArena smoke (the upstream-written fixture, 2 trajectories of buoyancy 0.4706 in train, and 12
    trajectories of this project's generator written in PDEArena's layout by :func:`write_pdearena_files`: train 8,
    valid 3, test 3) is pretrained on by ``experiment=ns2d_vicreg debug=smoke`` with 4-frame, 32 x 32 crops (the
    files hold 6 frames of 64 x 64) and evaluated by ``ssl-pde-eval``'s buoyancy regression with the tiny budgets.

    Checked: the importer maps the helper's files as it maps upstream's (values, the solver's frame times, cell
    centres, buoyancy); pretraining runs with the RankMe diagnostic and without the online probe (3 valid
    trajectories: no best.ckpt, last.ckpt kept); the regression writes finite scores for every method and cell.
    Not proven: that the encoder learns buoyancy, or anything about accuracy: 8 labels, 2 pretraining epochs, and a
    train split mixing two time windows (t 18 .. 25.5 upstream, 1.5 .. 9 from the helper) and two velocity
    discretisations (staggered upstream, centred here)."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(ARENA, src / ARENA.name)
    files = write_pdearena_files(src, {"train": 6, "valid": 3, "test": 3})
    data = tmp_path / "data"
    _run(cli, import_main, "format=pdearena", f"src={src}", f"out_dir={data}")
    sets = {s: TrajectoryDataset(data / "ns2d" / s, ["buoyancy"], preload=True) for s in ("train", "valid", "test")}
    assert [len(sets[s]) for s in ("train", "valid", "test")] == [8, 3, 3]
    assert all(ds.item_shape == (6, 3, 64, 64) and ds.periodic_axes == () for ds in sets.values())
    with h5py.File(files[-1]) as f:  # the last test file, as the importer maps it
        item = sets["test"][2]
        assert np.array_equal(item["u"][:, 1].numpy(), f["test/vx"][0].astype(np.float32))
        assert np.allclose(item["t"].numpy(), f["test/t"][0, 0] + 1.5 * np.arange(6))
        assert np.allclose(item["x"].numpy(), (np.arange(64) + 0.5) * 0.5)
        assert float(item["params"]["buoyancy"]) == f["test/buo_y"][0]
    assert len({float(b) for s in sets.values() for b in s.__getitems__(list(range(len(s))))["params"]["buoyancy"]}) > 6

    run = tmp_path / "run"
    exp = _pretrain(cli, run, "experiment=ns2d_vicreg", "augment.crop_t=4", f"data.dir={data}")
    assert exp["dataset"] == "ns2d" and exp["encoder"]["in_channels"] == 4 * 5
    assert (run / "checkpoints" / "last.ckpt").is_file() and not (run / "checkpoints" / "best.ckpt").exists()
    assert "no online probe (3 validation trajectories" in (run / "pretrain.log").read_text()

    out = tmp_path / "eval"
    args = [f"ckpt={run / 'encoder.pt'}", f"data.dir={data}", f"out_dir={out}", "wandb.enabled=false", *TINY_EVAL]
    _run(cli, eval_main, *args, "regression.n_labels=8", "regression.label_draws=[0,1]")
    doc = json.loads((out / "results.json").read_text())
    assert (doc["pde"], doc["param"], doc["n_valid"], doc["n_test"]) == ("ns2d", "buoyancy", 3, 3)
    cells = doc["result"]["cells"]
    assert len(cells) == 2
    for cell in cells:
        methods = {"floor", "ssl_linear", "ssl_mlp", "ssl_finetune", "random_init", "supervised"}
        assert set(cell["test"]) == methods
        assert all(math.isfinite(cell["test"][m][k]) for m in methods for k in ("nmse", "mse", "rel_l1"))


def test_a_split_of_two_resolutions_is_refused_in_one_line(cli, tmp_path):
    """PDEArena's fixture beside a copy of it on every other cell (32 x 32, in PDEArena's layout) import into one
    ns2d train split; pretraining on it ends in one line naming the two shapes, with nothing written."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(ARENA, src / ARENA.name)
    with h5py.File(ARENA) as f, h5py.File(src / "NavierStokes2D_train_143_0.47062_2.h5", "w") as g:
        for key, ds in f["train"].items():
            a = ds[...]
            g[f"train/{key}"] = a[:, :, ::2, ::2] if a.ndim == 4 else a[:, ::2] if key in ("x", "y") else a
    _run(cli, import_main, "format=pdearena", f"src={src}", f"out_dir={tmp_path / 'data'}")
    shutil.copytree(tmp_path / "data" / "ns2d" / "train", tmp_path / "data" / "ns2d" / "valid")
    run = tmp_path / "run"
    args = ["debug=smoke", "experiment=ns2d_vicreg", "augment.crop_t=4", f"data.dir={tmp_path / 'data'}"]
    res = cli(pretrain_main, *args, f"run_dir={run}", "logger=csv")
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0, res.stderr[-2000:]
    assert "different trajectory shapes (T, C, X[, Y]) [(6, 3, 32, 32), (6, 3, 64, 64)]" in res.stderr
    assert not run.exists()


def _concat(splits: list[Split]) -> Split:
    """One split holding the trajectories of ``splits`` (same grid and frame count), in order."""
    first = splits[0]
    data = {k: torch.cat([s.data[k] for s in splits]) for k in first.data}
    params = {k: torch.cat([s.params[k] for s in splits]) for k in first.params}
    return Split(data, torch.cat([s.y for s in splits]), params)


def test_ks_domain_length_probe_on_imported_lpsda(cli, tmp_path):
    """A KS encoder pretrained (``experiment=ks_vicreg debug=smoke``: 8 x 32 resample crops) on this project's KS in
    LPSDA's setting (the real generator: 256 points, 140 of 500 frames, L = 64 and T = 100 each jittered by 10 %;
    16 train and 8 valid trajectories) probes the domain length of LPSDA's own KS trajectories: the 6 of the
    upstream-written fixtures KS_train_4, KS_valid and KS_test (one per file: L = 256 dx), imported by
    ``ssl-pde-import`` (each file's group gives its split), are the test split of
    :func:`ssl_pde.eval.curves.probe_curve` (scripts/probe_curve.py's library function). The labelled subsets
    (8 and 16) and the ridge strength come from the generated train and valid splits: the imported files hold too
    few trajectories for the protocol's 8 labels at least, and the probe's question is whether a representation
    learnt on generated data reads LPSDA's data.

    Checked: same grid and frame count on both sides (the crops fit; per-trajectory grids and domain lengths read
    from the imported files); finite, structured probe scores with LPSDA's domain lengths as the test targets.
    Not proven: any accuracy (6 test trajectories, a smoke-scale encoder)."""
    gen = tmp_path / "gen"
    for split, n in (("train", 16), ("valid", 8)):
        cfg = generate_cfg("ks", gen, num_samples=n, shard_size=16, **KS_LPSDA)
        cfg.split = split
        generate(cfg)
    run = tmp_path / "run"
    exp = _pretrain(cli, run, "experiment=ks_vicreg", f"data.dir={gen}")
    assert exp["augment"]["mode"] == "resample" and (run / "checkpoints" / "best.ckpt").is_file()  # the probe ran

    src = tmp_path / "src"
    src.mkdir()
    for path in LPSDA_KS:
        shutil.copy(path, src / path.name)
    imported = tmp_path / "imported"
    _run(cli, import_main, "format=lpsda", f"src={src}", f"out_dir={imported}")
    inp = load_inputs([run / "encoder.pt"], gen, torch.device("cpu"), split_names=("train", "valid"))
    lpsda = load_inputs([run / "encoder.pt"], imported, torch.device("cpu"), split_names=("train", "valid", "test"))
    assert TrajectoryDataset(imported / "ks" / "test").item_shape == TrajectoryDataset(gen / "ks" / "train").item_shape
    test = _concat([lpsda.splits[s] for s in ("train", "valid", "test")])
    dx = []
    for path in LPSDA_KS:
        with h5py.File(path) as f:
            dx.append(next(iter(f.values()))["dx"][...])
    assert torch.equal(test.y, torch.from_numpy(np.concatenate(dx) * 256))  # LPSDA's per-trajectory L, as stored
    assert bool(((test.y > 64 * 0.9) & (test.y < 64 * 1.1)).all())  # within the generator's L = 64 +- 10 %
    doc = probe_curve(dataclasses.replace(inp, splits={**inp.splits, "test": test}), [8, 16], draws=[0, 1])
    assert (doc["pde"], doc["param"], doc["n_test"]) == ("ks", "domain_length", 6)
    for row in doc["rows"]:
        assert len(row["per_cell"]) == 2
        assert all(math.isfinite(row[f"{m}_{k}"][0]) for m in ("ssl_linear", "floor") for k in ("nmse", "mse"))


def write_heat_files(out: Path, n: dict[str, int], nt: int = 16, nx: int = 64) -> list[Path]:
    """Test helper: LPSDA heat files (``Heat_<mode>[_<n>].h5``, what its Burgers mode writes) in LPSDA's layout, whose
    values are exact heat solutions ``phi = 2 + sum_k a_k e^{-nu k^2 t} sin(k x + p_k)``, k = 1, 2, 3, with LPSDA's
    nu = 0.01 and L = 2 pi: the last ``nt`` of 2 ``nt`` frames on [0, 4], ``nx`` points (no upstream heat file is
    among the fixtures)."""
    rng = np.random.default_rng(3)
    paths = []
    for mode, count in n.items():
        t_all = np.linspace(0.0, 4.0, 2 * nt)
        t, x = np.tile(t_all[-nt:], (count, 1)), np.tile(np.arange(nx) * 2 * np.pi / nx, (count, 1))
        k = np.arange(1, 4)[None, :, None, None]
        a, p = rng.uniform(-1, 1, (count, 3, 1, 1)), rng.uniform(0, 2 * np.pi, (count, 3, 1, 1))
        decay = np.exp(-0.01 * k**2 * t[:, None, :, None])
        phi = 2 + (a * decay * np.sin(k * x[:, None, None, :] + p)).sum(1)
        path = out / (f"Heat_{mode}_{count}.h5" if mode == "train" else f"Heat_{mode}.h5")
        with h5py.File(path, "w") as f:
            g = f.create_group(mode)
            g.create_dataset(f"pde_{nt}-{nx}", data=phi)
            g.create_dataset("x", data=x)
            g.create_dataset("dx", data=np.full(count, 2 * np.pi / nx))
            g.create_dataset("t", data=t)
            g.create_dataset("dt", data=np.full(count, t_all[1]))
        paths.append(path)
    return paths


def test_external_datasets_pretrain_with_generic_views(cli, tmp_path):
    """External datasets (``pde=external``, no probe parameter): The Well's dummy file (upstream-written, 2D, two
    channels, periodic along x and y, imported as ``dummy_dataset``) and LPSDA-layout heat files
    (:func:`write_heat_files`, imported as ``heat``) pretrain with the generic views; the periodic axes are read from
    the shards and kept in encoder.pt with the channels; no online probe (RankMe only, no best.ckpt); the W&B
    figure of the views is drawn for both.
    ``pde=heat`` names the registry PDE of the imported heat dataset instead: heat's own symmetries."""
    data = tmp_path / "data"
    for split in ("train", "valid"):
        (tmp_path / "well" / split).mkdir(parents=True)
        shutil.copy(WELL, tmp_path / "well" / split / WELL.name)
    _run(cli, import_main, "format=well", f"src={tmp_path / 'well'}", f"out_dir={data}")
    (tmp_path / "heat").mkdir()
    write_heat_files(tmp_path / "heat", {"train": 8, "valid": 4})
    _run(cli, import_main, "format=lpsda", f"src={tmp_path / 'heat'}", f"out_dir={data}")

    two_d = ["augment.n_spatial_dims=2", "augment.fields=[field_y,field_x]", "augment.crop_t=4", "augment.crop_x=16"]
    run = tmp_path / "well_run"
    exp = _pretrain(
        cli, run, "pde=external", "data.dataset=dummy_dataset", f"data.dir={data}", *two_d, logger="wandb_csv"
    )
    assert (exp["pde"], exp["dataset"], exp["probe_param"]) == ("external", "dummy_dataset", None)
    aug = exp["augment"]
    assert aug["periodic"] == ["x", "y"] and aug["data_fields"] == ["field_x", "field_y"]
    assert exp["encoder"]["in_channels"] == (3 + 2) * 4
    assert not (run / "checkpoints" / "best.ckpt").exists()
    metrics = (run / "csv" / "metrics.csv").read_text()
    assert "val/rankme" in metrics and "val/probe_nmse" not in metrics
    assert list((run / "wandb").rglob("views_*.png"))  # the figure of the first batch's views

    run = tmp_path / "heat_run"
    exp = _pretrain(cli, run, "pde=external", "data.dataset=heat", f"data.dir={data}", logger="wandb_csv")
    assert exp["augment"]["periodic"] == ["x"] and exp["dataset"] == "heat" and exp["encoder"]["in_channels"] == 3
    assert list((run / "wandb").rglob("views_*.png"))
    run = tmp_path / "heat_registry"
    exp = _pretrain(cli, run, "pde=heat", f"data.dir={data}")
    assert exp["pde"] == "heat" and exp["augment"]["_target_"].endswith("LieViews")
    res = cli(pretrain_main, "debug=smoke", "pde=external", f"data.dir={data}", f"run_dir={tmp_path / 'no'}")
    assert res.returncode == 2 and "data.dataset=<" in res.stderr and not (tmp_path / "no").exists()
