"""ssl-pde-import: upstream-written LPSDA, PDEArena and The Well files (tests/fixtures/external/), and PDEBench and
LPSDA heat files written here in their documented layouts, become schema-v1 shards holding the source's values,
times, grids and parameters; reruns skip, rewrites are bit-identical, and what cannot be mapped is refused in one
line naming the file and the key."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from data_gen.cli.import_data import main
from data_gen.importers import well
from ssl_pde.cli.inspect import main as inspect_main
from ssl_pde.data.datasets import TrajectoryDataset
from ssl_pde.data.schema import SchemaError, list_shards, validate_shard
from tests.conftest import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "external"
KDV = FIXTURES / "lpsda" / "KdV_train_4.h5"
ARENA = FIXTURES / "pdearena" / "NavierStokes2D_train_142_0.47062_2.h5"
WELL = FIXTURES / "the_well" / "dummy_well_seed0.hdf5"
IC = ["ic_amplitude", "ic_phase", "ic_wavenumber"]


def _import(cli, fmt: str, src: Path, out: Path, *args: str):
    res = cli(main, f"format={fmt}", f"src={src}", f"out_dir={out}", *args)
    assert res.returncode == 0, res.stderr
    return res


def _stacked(directory: Path) -> dict[str, np.ndarray]:
    """Every dataset of the shards under ``directory`` (each validated first), concatenated along trajectories."""
    paths = list_shards(directory)
    out: dict[str, list] = {}
    for p in paths:
        validate_shard(p)
        with h5py.File(p) as f:
            for name in _datasets(f):
                out.setdefault(name, []).append(f[name][...])
    return {k: np.concatenate(v) if v[0].ndim else v[0] for k, v in out.items()}


def _datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda name, o: names.append(name) if isinstance(o, h5py.Dataset) else None)
    return names


def _inspect_ok(cli, path: Path) -> None:
    res = cli(inspect_main, str(path))
    assert res.returncode == 0, res.stderr


def _pdebench(directory: Path, nu: float = 0.01) -> Path:
    """A PDEBench 1D Burgers file in the layout of its Data_Merge.py: 3 trajectories, 5 frames, 16 cell centres, and
    one more time than frames, as PDEBench's Burgers generator writes."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"1D_Burgers_Sols_Nu{nu}.hdf5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.create_dataset("tensor", data=rng.standard_normal((3, 5, 16)).astype(np.float32))
        f.create_dataset("x-coordinate", data=(np.arange(16) + 0.5) / 16)
        f.create_dataset("t-coordinate", data=np.arange(6) * 0.01)
        f.attrs["Nu"] = nu
    return path


def _heat(directory: Path) -> Path:
    """An LPSDA heat file (its Burgers mode) in LPSDA's layout: 2 trajectories, 5 of 9 frames, 16 points."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "Heat_train_2.h5"
    rng = np.random.default_rng(1)
    dt, dx = np.full(2, 0.25), np.full(2, 2 * math.pi / 16)
    with h5py.File(path, "w") as f:
        g = f.create_group("train")
        g.create_dataset("pde_5-16", data=rng.standard_normal((2, 5, 16)))
        g.create_dataset("x", data=np.arange(16)[None] * dx[:, None])
        g.create_dataset("t", data=(np.arange(4, 9)[None] * dt[:, None]))
        g.create_dataset("dt", data=dt)
        g.create_dataset("dx", data=dx)
    return path


def test_lpsda_kdv_and_ks(cli, tmp_path, monkeypatch):
    """KdV and KS become kdv and ks with the values rounded to float32, LPSDA's times and grids as stored, the
    domain length dx * nx and t_end = t[-1]; the split is the group's; the fields are read one trajectory at a time;
    the training loader reads the result."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("KdV_train_4.h5", "KS_valid.h5"):
        shutil.copy(FIXTURES / "lpsda" / name, src / name)
    reads = []
    getitem = h5py.Dataset.__getitem__
    monkeypatch.setattr(h5py.Dataset, "__getitem__", lambda ds, key: reads.append((ds.name, key)) or getitem(ds, key))
    _import(cli, "lpsda", src, tmp_path / "out", "shard_size=3")
    assert {key for name, key in reads if name.startswith("/train/pde_")} == {0, 1, 2, 3}  # never the whole array
    monkeypatch.undo()
    assert [p.name for p in list_shards(tmp_path / "out" / "kdv" / "train")] == ["shard-00000.h5", "shard-00001.h5"]
    got = _stacked(tmp_path / "out" / "kdv" / "train")
    with h5py.File(KDV) as f:
        g = {k: v[...] for k, v in f["train"].items()}
    assert got["u"].dtype == np.float32 and np.array_equal(got["u"], g["pde_140-256"].astype(np.float32)[:, :, None])
    for key in ("t", "x"):
        assert np.array_equal(got[key], g[key]), key
    assert np.array_equal(got["params/domain_length"], g["dx"] * 256)
    assert np.array_equal(got["params/t_end"], g["t"][:, -1])
    assert np.array_equal(got["params/dt"], g["dt"]) and np.array_equal(got["params/dx"], g["dx"])
    assert np.array_equal(got["source_index"], np.arange(4)) and np.all(got["seed"] == -1)
    s = validate_shard(list_shards(tmp_path / "out" / "kdv" / "train")[0])
    assert (s.pde, s.dataset, s.split, s.external, s.n) == ("kdv", "kdv", "train", False, 3)
    assert list(s.attrs["params_unknown"]) == IC and s.attrs["boundary"] == "periodic"
    assert s.attrs["source_format"] == "lpsda" and s.attrs["source_file"] == "KdV_train_4.h5"
    assert s.attrs["source_sha256"] == hashlib.sha256(KDV.read_bytes()).hexdigest()
    assert "does not start at 0" in json.loads(s.attrs["import_notes"])["time_start"]
    assert validate_shard(tmp_path / "out" / "ks" / "valid" / "shard-00000.h5").params["domain_length"].shape == (1,)
    item = TrajectoryDataset(tmp_path / "out" / "kdv" / "train", ["domain_length", "t_end"])[3]
    assert item["u"].shape == (140, 1, 256) and float(item["length"]) == g["dx"][3] * 256
    _inspect_ok(cli, tmp_path / "out")


def test_lpsda_heat_is_an_external_dataset(cli, tmp_path):
    """LPSDA's Burgers mode writes the heat equation: imported as the external dataset heat, not as burgers."""
    path = _heat(tmp_path / "src")
    _import(cli, "lpsda", path, tmp_path / "out")
    assert not (tmp_path / "out" / "burgers").exists()
    (shard,) = list_shards(tmp_path / "out" / "heat" / "train")
    s = validate_shard(shard)
    assert (s.pde, s.dataset, s.external, s.field_names) == ("external", "heat", True, ["u"])
    assert "heat equation" in s.attrs["equation"] and list(s.attrs["params_unknown"]) == []
    got = _stacked(shard.parent)
    with h5py.File(path) as f:
        assert np.array_equal(got["u"][:, :, 0], f["train/pde_5-16"][...].astype(np.float32))
        assert np.array_equal(got["params/domain_length"], f["train/dx"][...] * 16)
    _inspect_ok(cli, tmp_path / "out")


def test_pdearena_smoke_is_ns2d(cli, tmp_path):
    """PDEArena's smoke becomes ns2d (smoke <- u, vx, vy): values rounded to float32, buoyancy from buo_y, frame
    times t[0] + k dt (the solver's interval, not linspace's spacing), cell-centred coordinates of the 32 x 32 box
    (PDEArena stores linspace(0, 32, 64) nodes), the staggered velocities recorded."""
    _import(cli, "pdearena", ARENA.parent, tmp_path / "out")
    got = _stacked(tmp_path / "out" / "ns2d" / "train")
    with h5py.File(ARENA) as f:
        g = {k: v[...] for k, v in f["train"].items()}
    assert got["u"].shape == (2, 6, 3, 64, 64)
    for c, key in enumerate(("u", "vx", "vy")):
        assert np.array_equal(got["u"][:, :, c], g[key].astype(np.float32)), key
    assert np.allclose(got["t"], 18.0 + 1.5 * np.arange(6)) and not np.allclose(g["t"], got["t"])
    for key in ("x", "y"):
        assert np.allclose(got[key], (np.arange(64) + 0.5) * 0.5), key  # dx = 32 / 64 (PDEArena stores 32 / 63)
    assert np.array_equal(got["params/buoyancy"], g["buo_y"])
    for key in ("dt", "dx", "dy"):
        assert np.array_equal(got[f"params/{key}"], g[key]), key
    s = validate_shard(list_shards(tmp_path / "out" / "ns2d")[0])
    assert (s.pde, s.split, s.attrs["boundary"]) == ("ns2d", "train", "closed_box")
    assert list(s.attrs["params_unknown"]) == ["ic_noise_coef"]
    notes = json.loads(s.attrs["import_notes"])
    assert "disagrees with the stored dt" in notes["time"] and "staggered" in notes["velocity"]
    _inspect_ok(cli, tmp_path / "out")


def test_the_well_is_external_with_constants_parameters_and_boundaries(cli, tmp_path):
    """The Well's dummy file: the t1 field as two component channels, the t0 constant field under /constants, the
    root/scalar parameters broadcast with their origin, the time-varying scalar per frame, the periodic boundary
    conditions with their masks; the split is the directory's (train/valid/test), else split= is needed."""
    res = cli(main, "format=well", f"src={WELL}", f"out_dir={tmp_path / 'none'}")
    assert res.returncode == 2 and "does not say its split" in res.stderr and res.stderr.count("\n") == 1
    (tmp_path / "train").mkdir()
    shutil.copy(WELL, tmp_path / "train" / WELL.name)
    _import(cli, "well", tmp_path / "train", tmp_path / "out")
    directory = tmp_path / "out" / "dummy_dataset" / "train"
    got = _stacked(directory)
    with h5py.File(WELL) as f:
        field = f["t1_fields/field"][...]
        assert np.array_equal(got["u"], np.moveaxis(field, -1, 2))
        assert np.array_equal(got["constants/constant_field"], f["t0_fields/constant_field"][...])
        assert np.array_equal(got["t"], np.tile(f["dimensions/time"][...], (2, 1)))
        assert np.array_equal(got["x"][1], f["dimensions/x"][...]) and np.array_equal(
            got["y"][0], f["dimensions/y"][...]
        )
        assert np.array_equal(got["params/time_varying_scalar"], np.tile(f["scalars/time_varying_scalar"][...], (2, 1)))
        assert np.array_equal(got["boundary_conditions/y_periodic/mask"], f["boundary_conditions/y_periodic/mask"][...])
    assert np.array_equal(got["params/a"], [0.25, 0.25]) and np.array_equal(got["params/b"], [0.75, 0.75])
    s = validate_shard(list_shards(directory)[0])
    assert (s.pde, s.dataset, s.external, s.field_names) == ("external", "dummy_dataset", True, ["field_x", "field_y"])
    assert s.attrs["boundary"] == "periodic"
    with h5py.File(s.path) as f:
        assert "root attribute a" in f["params/a"].attrs["origin"] and "broadcast" in f["params/a"].attrs["origin"]
        assert f["boundary_conditions/x_periodic"].attrs["bc_type"] == "PERIODIC"
    _inspect_ok(cli, tmp_path / "out")
    res = cli(inspect_main, str(tmp_path / "out"))
    assert "dummy_dataset (external) / train" in res.stdout.replace("\n", " ")


def _well_smoke(path: Path) -> None:
    """The dummy file rewritten as a smoke dataset of The Well: a time-varying density, a velocity, a buoyancy per
    trajectory and wall boundaries."""
    shutil.copy(WELL, path)
    rng = np.random.default_rng(2)
    with h5py.File(path, "r+") as f:
        f.attrs.update(dataset_name="smoke_box", simulation_parameters=["buoyancy"])
        for key in ("a", "b"):
            del f.attrs[key]
        del f["t0_fields/constant_field"], f["t1_fields/field"], f["scalars/a"], f["scalars/b"]
        flags = dict(sample_varying=True, time_varying=True, dim_varying=[True, True])
        f["t0_fields"].create_dataset("density", data=rng.random((2, 10, 32, 32)).astype(np.float32)).attrs.update(
            flags
        )
        f["t1_fields"].create_dataset("velocity", data=rng.random((2, 10, 32, 32, 2)).astype(np.float32)).attrs.update(
            flags
        )
        f["t0_fields"].attrs["field_names"], f["t1_fields"].attrs["field_names"] = ["density"], ["velocity"]
        ds = f["scalars"].create_dataset("buoyancy", data=np.array([0.3, 0.4]))
        ds.attrs.update(sample_varying=True, time_varying=False)
        f["scalars"].attrs["field_names"] = ["buoyancy", "time_varying_scalar"]
        for g in f["boundary_conditions"].values():
            g.attrs["bc_type"] = "WALL"


def test_the_well_registry_hook(cli, tmp_path, monkeypatch):
    """An entry of well.REGISTRY_MAPS writes a dataset of The Well as a registry PDE: here a smoke box as ns2d."""
    (tmp_path / "valid").mkdir()
    _well_smoke(tmp_path / "valid" / "smoke.hdf5")
    fields = {"smoke": "density", "vx": "velocity_x", "vy": "velocity_y"}
    monkeypatch.setitem(well.REGISTRY_MAPS, "smoke_box", well.RegistryMap("ns2d", fields, {"buoyancy": "buoyancy"}))
    _import(cli, "well", tmp_path / "valid", tmp_path / "out")
    got = _stacked(tmp_path / "out" / "ns2d" / "valid")
    with h5py.File(tmp_path / "valid" / "smoke.hdf5") as f:
        assert np.array_equal(got["u"][:, :, 0], f["t0_fields/density"][...])
        assert np.array_equal(got["u"][:, :, 2], f["t1_fields/velocity"][..., 1])
    assert np.array_equal(got["params/buoyancy"], [0.3, 0.4]) and "params/time_varying_scalar" in got
    s = validate_shard(list_shards(tmp_path / "out" / "ns2d")[0])
    assert (s.pde, s.external, s.attrs["boundary"]) == ("ns2d", False, "closed_box")
    assert list(s.attrs["params_unknown"]) == ["ic_noise_coef"]
    del fields["vy"]  # a channel the map leaves out is refused
    res = cli(main, "format=well", f"src={tmp_path / 'valid'}", f"out_dir={tmp_path / 'out2'}")
    assert res.returncode == 2 and "'velocity_y'" in res.stderr and "smoke.hdf5" in res.stderr


def test_pdebench_burgers_from_the_documented_layout(cli, tmp_path):
    """PDEBench's Burgers (never tested on an upstream-written file): nu = Nu / pi (its diffusion is (Nu / pi) u_xx),
    Nu kept, the extra time dropped, the domain length from the cell centres; the split comes from split=."""
    path = _pdebench(tmp_path / "src")
    res = cli(main, "format=pdebench", f"src={path}", f"out_dir={tmp_path / 'out'}")
    assert res.returncode == 2 and "split=" in res.stderr and not (tmp_path / "out").exists()
    _import(cli, "pdebench", path, tmp_path / "out", "split=test")
    got = _stacked(tmp_path / "out" / "burgers" / "test")
    with h5py.File(path) as f:
        assert np.array_equal(got["u"][:, :, 0], f["tensor"][...])
        assert np.array_equal(got["t"], np.tile(f["t-coordinate"][:5], (3, 1)))
        assert np.array_equal(got["x"], np.tile(f["x-coordinate"][...], (3, 1)))
    assert np.array_equal(got["params/nu"], np.full(3, 0.01 / math.pi)) and np.array_equal(got["params/Nu"], [0.01] * 3)
    assert np.allclose(got["params/domain_length"], 1.0, rtol=1e-12) and np.array_equal(got["params/t_end"], [0.04] * 3)
    s = validate_shard(list_shards(tmp_path / "out")[0])
    assert (s.pde, s.split) == ("burgers", "test") and list(s.attrs["params_unknown"]) == IC
    assert "not tested on an upstream-written file" in json.loads(s.attrs["import_notes"])["tested"]
    _inspect_ok(cli, tmp_path / "out")


def _contents(path: Path) -> dict:
    """Every dataset's bytes and every attribute of a file (groups' too), but created_utc."""
    out = {}
    with h5py.File(path) as f:
        out["/"] = {k: str(v) for k, v in f.attrs.items() if k != "created_utc"}
        names: list[str] = []
        f.visit(names.append)
        for name in names:
            data = f[name][...].tobytes() if name in _datasets(f) else None
            out[name] = (data, {k: str(v) for k, v in f[name].attrs.items()})
    return out


@pytest.mark.parametrize("fmt", ["lpsda", "pdearena", "well", "pdebench"])
def test_rerun_skips_and_a_rewrite_is_bit_identical(cli, tmp_path, fmt):
    """A rerun rewrites nothing; a deleted shard (and a leftover temporary file) is written again, identically."""
    src = {"lpsda": KDV, "pdearena": ARENA, "well": WELL}.get(fmt) or _pdebench(tmp_path / "src")
    args = [f"format={fmt}", f"src={src}", f"out_dir={tmp_path / 'out'}", "shard_size=2", "split=train"]
    assert cli(main, *args).returncode == 0
    shards = list_shards(tmp_path / "out")
    before = {p: (p.stat().st_mtime_ns, _contents(p)) for p in shards}
    res = cli(main, *args)
    assert res.returncode == 0 and "already present" in res.stdout
    assert all(p.stat().st_mtime_ns == before[p][0] for p in shards)
    shards[0].unlink()
    shards[0].with_name(shards[0].name + ".tmp.host.1").write_text("left by a killed run")
    assert cli(main, *args).returncode == 0
    assert _contents(shards[0]) == before[shards[0]][1]
    left = sorted(p.name for p in shards[0].parent.iterdir())
    assert left == sorted(p.name for p in shards if p.parent == shards[0].parent)  # no temporary or lock file


def _mutated(tmp_path: Path, src: Path, name: str, mutate) -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, path)
    with h5py.File(path, "r+") as f:
        mutate(f)
    return path


BAD = [
    ("lpsda", lambda f: f.__delitem__("train/dx"), "missing key '/train/dx'"),
    ("lpsda", lambda f: f["train"].create_dataset("nu", data=[1.0]), "unexpected key '/train/nu'"),
    ("pdearena", lambda f: f.__delitem__("train/buo_y"), "missing key '/train/buo_y'"),
    ("pdearena", lambda f: f["train"].create_dataset("p", data=[1.0]), "unexpected key '/train/p'"),
    ("pdearena", lambda f: f.create_group("extra"), "unexpected key '/extra'"),
    ("well", lambda f: f.__delitem__("dimensions/time"), "missing key '/dimensions/time'"),
    ("well", lambda f: f.create_group("t3_fields"), "unexpected key '/t3_fields'"),
    ("well", lambda f: f.attrs.__delitem__("n_trajectories"), "missing root attribute 'n_trajectories'"),
    ("pdebench", lambda f: f.attrs.__delitem__("Nu"), "missing root attribute 'Nu'"),
    ("pdebench", lambda f: f.attrs.__setitem__("beta", 0.1), "unexpected root attribute 'beta'"),
    ("pdebench", lambda f: f.__delitem__("x-coordinate"), "missing key '/x-coordinate'"),
]


@pytest.mark.parametrize(("fmt", "mutate", "message"), BAD)
def test_a_source_it_cannot_map_is_refused_in_one_line(cli, tmp_path, fmt, mutate, message):
    """A missing or unexpected key: one line naming the file and the key, exit status 2, nothing written."""
    src = {"lpsda": KDV, "pdearena": ARENA, "well": WELL}.get(fmt) or _pdebench(tmp_path / "pdebench")
    path = _mutated(tmp_path, src, src.name, mutate)
    res = cli(main, f"format={fmt}", f"src={path.parent}", f"out_dir={tmp_path / 'out'}", "split=train")
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error:") and res.stderr.count("\n") == 1, res.stderr
    assert str(path) in res.stderr and message in res.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([f"src={KDV}"], "format is required"),
        (["format=arena"], "unknown format 'arena'"),
        (["format=lpsda", "src=/nonexistent/dir"], "src '/nonexistent/dir' does not exist"),
        (["format=lpsda"], "src is required"),
        (["format=lpsda", f"src={KDV}", "split=training"], "unknown split 'training'"),
        (["format=lpsda", f"src={KDV}", "split=test"], "says split 'train', not split='test'"),
        (["format=lpsda", f"src={KDV}", "shard_size=0"], "shard_size must be a positive integer"),
        (["format=lpsda", f"src={WELL}"], "does not say the equation"),
    ],
)
def test_bad_settings_are_refused_in_one_line(cli, tmp_path, args, message):
    res = cli(main, *args, f"out_dir={tmp_path / 'out'}")
    assert res.returncode == 2 and message in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert not (tmp_path / "out").exists()


def test_the_schema_accepts_external_datasets_and_unknown_registry_parameters(cli, tmp_path):
    """An imported registry shard may omit exactly the parameters it lists in params_unknown; an external shard needs
    a dataset name; 'external' is no registry PDE."""
    _import(cli, "lpsda", KDV, tmp_path / "out")
    (kdv,) = list_shards(tmp_path / "out")
    with h5py.File(kdv, "r+") as f:
        f.attrs["params_unknown"] = ["ic_amplitude", "ic_phase"]
    with pytest.raises(SchemaError, match=r"parameters \['ic_wavenumber'\] of kdv are not stored"):
        validate_shard(kdv)
    _import(cli, "lpsda", _heat(tmp_path / "heat"), tmp_path / "out")
    (heat,) = list_shards(tmp_path / "out" / "heat")
    with h5py.File(heat, "r+") as f:
        f.attrs["dataset"] = "a/b"
    with pytest.raises(SchemaError, match="without a valid dataset attribute"):
        validate_shard(heat)
