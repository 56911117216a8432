"""ssl-pde-export format=well: shards of the real generator (burgers, kdv, ks, ns2d) and an external dataset become
files of The Well holding the shards' values, times, grids, parameters and boundary conditions, which
``the_well.data.WellDataset`` reads (those tests skip without ``the-well``: the ``well`` extra) and
``ssl-pde-import format=well`` brings back unchanged, with each dataset's normalisation statistics (``stats.yaml``,
of its train split) that ``WellDataset(use_normalization=True)`` applies; reruns skip, an interrupted export
resumes, and bad input is refused in one line with nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from data_gen.cli.export_data import export_data, main
from data_gen.cli.generate import generate
from data_gen.cli.import_data import main as import_main
from data_gen.exporters import well
from data_gen.importers.well import ROOT_KEYS
from ssl_pde.data.schema import list_shards, validate_shard
from tests.conftest import compose_cfg, generate_cfg
from tests.test_import import WELL, _contents, _stacked

SPLIT = {"burgers": "train", "kdv": "train", "ks": "train", "ns2d": "valid"}
NS2D = dict(nx=16, ny=12, nt=4, t_start=1.0, t_end=2.5, dt_max=0.1)


@pytest.fixture(scope="module")
def data(tiny_shards, tmp_path_factory) -> Path:
    """The tiny burgers, kdv and ks train splits (6 trajectories in shards of 4) and an ns2d valid split from the
    real generator (3 trajectories in shards of 2, 16 × 12 cells, 4 frames)."""
    root = tmp_path_factory.mktemp("export_src")
    for pde, directory in tiny_shards.items():
        shutil.copytree(directory, root / pde / "train")
    solver = [f"solver.{k}={v}" for k, v in NS2D.items()]
    run = ["split=valid", "num_samples=3", "shard_size=2", "batch_size=2", "device=cpu", "progress=false"]
    generate(compose_cfg("generate", ["pde=ns2d", *solver, f"out_dir={root}", *run]))
    return root


@pytest.fixture(scope="module")
def exported(data, tmp_path_factory) -> Path:
    """``ssl-pde-export format=well`` of every shard of :func:`data`; returns its out_dir."""
    out = tmp_path_factory.mktemp("export_out")
    export_data(compose_cfg("export", ["format=well", f"src={data}", f"out_dir={out}"]))
    return out


def _well_dir(out: Path, dataset: str, split: str) -> Path:
    return out / "datasets" / dataset / "data" / split


def _rows(ds: h5py.Dataset, n: int) -> np.ndarray:
    """A dataset of The Well as (N, ...): as stored when sample_varying, else its one value repeated N times."""
    return ds[...] if ds.attrs["sample_varying"] else np.repeat(ds[...][None], n, axis=0)


def _one_line_refusal(res, message: str) -> None:
    assert res.returncode == 2 and message in res.stderr and res.stderr.count("\n") == 1, res.stderr


def _stats(out: Path, dataset: str) -> dict:
    return yaml.safe_load((out / "datasets" / dataset / "stats.yaml").read_text())


def _moments(x: np.ndarray, rank: int = 0) -> dict[str, np.ndarray]:
    """numpy's mean, std and rms of ``x`` over every axis but the last ``rank`` (the components), in float64."""
    x = np.asarray(x, dtype=np.float64)
    axes = tuple(range(x.ndim - rank))
    return {"mean": x.mean(axis=axes), "std": x.std(axis=axes), "rms": np.sqrt(np.mean(x**2, axis=axes))}


def _assert_stats(stats: dict, name: str, x: np.ndarray, rank: int = 0, time_varying: bool = True) -> None:
    """``stats.yaml``'s statistics of field ``name`` are numpy's over ``x`` (N, [T,] ...), the ``_delta`` ones over
    the differences of consecutive frames of each trajectory (a time-independent field has none)."""
    x = np.asarray(x, dtype=np.float64)
    cases = [("", x)] + ([("_delta", np.diff(x, axis=1))] if time_varying else [])
    for suffix, values in cases:
        scale = np.abs(values).max()
        for key, want in _moments(values, rank).items():
            got = np.asarray(stats[key + suffix][name])
            assert got.shape == want.shape, (name, key + suffix)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14 * scale, err_msg=f"{name} {key}{suffix}")
    if not time_varying:
        assert all(name not in stats[key + "_delta"] for key in ("mean", "std", "rms"))


def test_the_files_follow_the_well_layout(data, exported):
    """One file per shard under datasets/<pde>/data/<split>/; channels as t0 fields (ns2d's vx, vy as the t1 field
    velocity), float32 as stored; KS times and grids per trajectory (sample_varying), Burgers' once per file; every
    parameter a scalar (the (N, 10) initial-condition coefficients as 10), the simulation parameters listed; periodic
    1D boundaries and ns2d's walls with masks at both ends; the importer's map and the provenance as root attributes."""
    for pde, split in SPLIT.items():
        shards = list_shards(data / pde)
        files = sorted(_well_dir(exported, pde, split).iterdir())
        assert [p.name for p in files] == [p.stem + ".hdf5" for p in shards]  # no temporary or lock file
        for shard, path in zip(shards, files, strict=True):
            with h5py.File(shard) as s, h5py.File(path) as f:
                n = s["u"].shape[0]
                assert (f.attrs["dataset_name"], f.attrs["n_trajectories"], f.attrs["ssl_pde_pde"]) == (pde, n, pde)
                assert f.attrs["ssl_pde_source_file"] == shard.name and f.attrs["grid_type"] == "cartesian"
                assert sorted(f) == sorted(ROOT_KEYS)
                if pde == "ns2d":
                    assert f["t0_fields/smoke"].dtype == np.float32
                    assert list(f["t1_fields"].attrs["field_names"]) == ["velocity"]
                    assert np.array_equal(f["t0_fields/smoke"][...], s["u"][:, :, 0])
                    assert np.array_equal(f["t1_fields/velocity"][...], np.moveaxis(s["u"][:, :, 1:], 2, -1))
                    assert sorted(f["boundary_conditions"]) == ["x_wall", "y_wall"]
                else:
                    assert np.array_equal(f["t0_fields/u"][...], s["u"][:, :, 0])
                    assert list(f["boundary_conditions"]) == ["x_periodic"]
                bc = f["boundary_conditions/x_" + ("wall" if pde == "ns2d" else "periodic")]
                assert list(bc["mask"][...].nonzero()[0]) == [0, s["x"].shape[1] - 1]
                per_traj = pde in ("kdv", "ks") and n > 1  # their own domain length and time span
                for dim, key in (("time", "t"), ("x", "x")):
                    assert f[f"dimensions/{dim}"].attrs["sample_varying"] == per_traj
                    assert np.array_equal(_rows(f[f"dimensions/{dim}"], n), s[key][...])
                for name in s["params"]:
                    v = s[f"params/{name}"][...]
                    if v.ndim == 1:
                        assert np.array_equal(_rows(f[f"scalars/{name}"], n), v)
                        assert name in f.attrs["simulation_parameters"]
                    else:
                        got = np.stack([_rows(f[f"scalars/{name}_{j}"], n) for j in range(v.shape[1])], axis=1)
                        assert np.array_equal(got, v) and name not in f.attrs["simulation_parameters"]
                if pde == "burgers":  # one domain length for the file: once, and as The Well's root attribute
                    assert not f["scalars/domain_length"].attrs["sample_varying"]
                    assert f.attrs["domain_length"] == s["params/domain_length"][0]
                    assert f["scalars/nu"].attrs["sample_varying"] == (n > 1) and "nu" not in f.attrs


def test_well_dataset_reads_every_pde(data, exported):
    """WellDataset (n_steps_input = n_steps_output = 1): one sample per (trajectory, window); a known sample holds
    the shard's frames (float32, channels last in the shard's order), every parameter as constant scalars, the
    trajectory's own grid and frame times; periodic boundaries read as PERIODIC (2), ns2d's walls as WALL (0); with
    full_trajectory_mode one sample per trajectory holding all its frames."""
    pytest.importorskip("the_well")
    import torch
    from the_well.data import WellDataset

    for pde, split in SPLIT.items():
        src = _stacked(data / pde)
        param_names = validate_shard(list_shards(data / pde)[0]).param_names
        n, nt, axes = *src["u"].shape[:2], "xyz"[: src["u"].ndim - 3]
        base = dict(path=str(exported / "datasets" / pde), well_split_name=split, use_normalization=False)
        ds = WellDataset(**base, normalize_time_grid=False)
        assert len(ds) == n * (nt - 1), pde
        i, w = n - 1, 2  # the last trajectory (in the last file), its third window
        sample = ds[i * (nt - 1) + w]
        for key, frame in (("input_fields", w), ("output_fields", w + 1)):
            assert sample[key].dtype == torch.float32 and sample[key].shape[0] == 1
            assert np.array_equal(sample[key][0].numpy(), np.moveaxis(src["u"][i, frame], 0, -1)), (pde, key)
        params = np.concatenate([src[f"params/{name}"][i].reshape(-1) for name in param_names])
        assert np.array_equal(sample["constant_scalars"].numpy(), params)
        assert ds.metadata.constant_scalar_names[0] == param_names[0]
        grid = sample["space_grid"].numpy()  # (X[, Y], n_axes)
        for k, a in enumerate(axes):
            line = tuple(slice(None) if j == k else 0 for j in range(len(axes)))
            assert np.array_equal(grid[(*line, k)], src[a][i]), (pde, a)
        assert sample["input_time_grid"].item() == src["t"][i, w]
        assert sample["output_time_grid"].item() == src["t"][i, w + 1]
        code = 0 if pde == "ns2d" else 2  # the_well.data.datasets.BoundaryCondition: WALL 0, PERIODIC 2
        assert np.array_equal(sample["boundary_conditions"].numpy(), np.full((len(axes), 2), code))
        full = WellDataset(**base, full_trajectory_mode=True)
        assert len(full) == n
        whole = full[i]
        assert whole["input_fields"].shape[0] + whole["output_fields"].shape[0] == nt
        frames = np.concatenate([whole["input_fields"].numpy(), whole["output_fields"].numpy()])
        assert np.array_equal(frames, np.moveaxis(src["u"][i], 1, -1))


def test_stats_yaml_holds_the_statistics_of_the_train_split(data, exported):
    """<dataset>/stats.yaml, for each dataset with a train split: mean, std, rms of every field over the train
    split's trajectories, frames and grid points, and the _delta ones over consecutive frames, equal to numpy's
    (float64); the files it covers named with their export keys. ns2d, exported without its train split: none."""
    for pde, split in SPLIT.items():
        path = exported / "datasets" / pde / "stats.yaml"
        if split != "train":
            assert not path.exists()
            continue
        stats = _stats(exported, pde)
        assert set(stats) == {*well.STATS_KEYS, "ssl_pde"}
        assert all(list(stats[key]) == ["u"] for key in well.STATS_KEYS)
        _assert_stats(stats, "u", _stacked(data / pde)["u"][:, :, 0])
        files = sorted(_well_dir(exported, pde, "train").iterdir())
        keys = {p.name: well.existing_key(p) for p in files}
        assert stats["ssl_pde"] == {"stats_revision": well.STATS_REVISION, "split": "train", "files": keys}


def _zscore(x: np.ndarray, m: dict) -> np.ndarray:
    return (x - m["mean"]) / m["std"]


def test_well_dataset_normalises_with_the_exported_statistics(data, exported):
    """WellDataset(use_normalization=True) with ZScoreNormalization returns (field - mean) / std, with
    RMSNormalization field / rms, and DeltaWellDataset's targets are (next - this - mean_delta) / std_delta, the
    statistics computed here with numpy; use_normalization=True alone normalises nothing (the_well 1.2.0)."""
    pytest.importorskip("the_well")
    from the_well.data import DeltaWellDataset, WellDataset
    from the_well.data.normalization import RMSNormalization, ZScoreNormalization

    for pde in ("burgers", "ks"):
        u = _stacked(data / pde)["u"][:, :, 0].astype(np.float64)  # (N, T, X)
        m, md = _moments(u), _moments(np.diff(u, axis=1))
        n, nt = u.shape[:2]
        i, w = n - 1, 1  # the last trajectory, its second window
        base = dict(path=str(exported / "datasets" / pde), well_split_name="train", use_normalization=True)
        tol = dict(rtol=1e-5, atol=1e-5)
        sample = WellDataset(**base, normalization_type=ZScoreNormalization)[i * (nt - 1) + w]
        for key, frame in (("input_fields", w), ("output_fields", w + 1)):
            np.testing.assert_allclose(sample[key][0, ..., 0].numpy(), _zscore(u[i, frame], m), **tol, err_msg=pde)
        sample = WellDataset(**base, normalization_type=RMSNormalization)[i * (nt - 1) + w]
        np.testing.assert_allclose(sample["input_fields"][0, ..., 0].numpy(), u[i, w] / m["rms"], **tol)
        sample = DeltaWellDataset(**base, normalization_type=ZScoreNormalization)[i * (nt - 1) + w]
        np.testing.assert_allclose(sample["input_fields"][0, ..., 0].numpy(), _zscore(u[i, w], m), **tol)
        step = _zscore(u[i, w + 1] - u[i, w], md)
        atol = 1e-6 * np.abs(u).max() / md["std"]  # float32 differences of nearby frames, in units of std_delta
        np.testing.assert_allclose(sample["output_fields"][0, ..., 0].numpy(), step, rtol=1e-5, atol=atol)
        plain = WellDataset(**base)
        assert plain.norm is None
        assert np.array_equal(plain[i * (nt - 1) + w]["input_fields"][0, ..., 0].numpy(), u[i, w].astype(np.float32))


def test_vector_fields_have_statistics_per_component(tmp_path):
    """An ns2d train split: the velocity's statistics are lists of two (x, y), smoke's a float, over its 3
    trajectories in two files; WellDataset normalises each channel with its component's mean and std."""
    solver = [f"solver.{k}={v}" for k, v in NS2D.items()]
    run = ["split=train", "num_samples=3", "shard_size=2", "batch_size=2", "device=cpu", "progress=false"]
    generate(compose_cfg("generate", ["pde=ns2d", *solver, f"out_dir={tmp_path / 'data'}", *run]))
    export_data(compose_cfg("export", ["format=well", f"src={tmp_path / 'data'}", f"out_dir={tmp_path / 'out'}"]))
    u = _stacked(tmp_path / "data" / "ns2d")["u"]  # (N, T, 3, X, Y): smoke, vx, vy
    stats = _stats(tmp_path / "out", "ns2d")
    assert len(stats["mean"]["velocity"]) == 2 and isinstance(stats["std_delta"]["smoke"], float)
    _assert_stats(stats, "smoke", u[:, :, 0])
    _assert_stats(stats, "velocity", np.moveaxis(u[:, :, 1:], 2, -1), rank=1)
    pytest.importorskip("the_well")
    from the_well.data import WellDataset
    from the_well.data.normalization import ZScoreNormalization

    path = str(tmp_path / "out" / "datasets" / "ns2d")
    ds = WellDataset(path=path, well_split_name="train", use_normalization=True, normalization_type=ZScoreNormalization)
    i, w, nt = 2, 1, u.shape[1]
    got = ds[i * (nt - 1) + w]["input_fields"][0].numpy()  # (X, Y, 3)
    for c in range(3):
        np.testing.assert_allclose(got[..., c], _zscore(u[i, w, c], _moments(u[:, :, c])), rtol=1e-5, atol=1e-5)


def test_statistics_read_in_blocks_of_frames_are_the_same(monkeypatch):
    """compute_stats on The Well's own dummy file (a t1 field and a time-independent t0 field): numpy's statistics,
    the same when each trajectory is read one frame at a time."""
    with h5py.File(WELL) as f:
        field, constant = f["t1_fields/field"][...], f["t0_fields/constant_field"][...]
    whole = well.compute_stats([WELL])
    _assert_stats(whole, "field", field, rank=1)
    _assert_stats(whole, "constant_field", constant, time_varying=False)
    monkeypatch.setattr(well, "BLOCK_BYTES", 1)
    framed = well.compute_stats([WELL])
    for key in well.STATS_KEYS:
        assert set(framed[key]) == set(whole[key])
        for name in whole[key]:
            np.testing.assert_allclose(framed[key][name], whole[key][name], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("pde", list(SPLIT))
def test_a_round_trip_through_the_importer_gives_the_registry_pde_back(cli, data, exported, tmp_path, pde):
    """ssl-pde-import format=well of the export: the registry PDE again (the files carry their map, REGISTRY_MAPS
    stays empty), with the shards' values, times, grids and parameters (coefficients stacked back into (N, k))."""
    res = cli(import_main, "format=well", f"src={_well_dir(exported, pde, SPLIT[pde]).parent}", f"out_dir={tmp_path}")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [pde]
    src, back = _stacked(data / pde), _stacked(tmp_path / pde / SPLIT[pde])
    for key in ("u", "t", *"xyz"[: src["u"].ndim - 3], *(k for k in src if k.startswith("params/"))):
        assert np.array_equal(back[key], src[key]), key
    assert not any(k.startswith("params/") and k not in src for k in back)  # no component scalar left over
    s = validate_shard(list_shards(tmp_path / pde)[0])
    assert (s.pde, s.dataset, s.external, list(s.attrs["params_unknown"])) == (pde, pde, False, [])


def test_parameter_components_can_be_left_out(cli, data, tmp_path):
    """param_components=false: ns2d's 80 noise coefficients are no scalars; the importer lists them as unknown."""
    res = cli(main, "format=well", f"src={data / 'ns2d'}", f"out_dir={tmp_path / 'out'}", "param_components=false")
    assert res.returncode == 0, res.stderr
    assert "ns2d: no train split in this run, so no stats.yaml written" in res.stdout  # a valid split only
    assert not (tmp_path / "out" / "datasets" / "ns2d" / "stats.yaml").exists()
    path = _well_dir(tmp_path / "out", "ns2d", "valid") / "shard-00000.hdf5"
    with h5py.File(path) as f:
        assert list(f["scalars"].attrs["field_names"]) == ["buoyancy"]
        assert list(f.attrs["ssl_pde_params_left_out"]) == ["ic_noise_coef"]
    res = cli(import_main, "format=well", f"src={path.parent}", f"out_dir={tmp_path / 'back'}")
    assert res.returncode == 0, res.stderr
    s = validate_shard(list_shards(tmp_path / "back")[0])
    assert s.param_names == ["buoyancy"] and list(s.attrs["params_unknown"]) == ["ic_noise_coef"]


def _external(cli, tmp_path: Path) -> tuple[Path, Path]:
    """The Well's dummy file imported (the external dataset dummy_dataset: a t1 field as two channels, a constant
    field, parameters once per file, a time-varying scalar), then exported; returns (shards, export out_dir)."""
    (tmp_path / "src" / "train").mkdir(parents=True)
    shutil.copy(WELL, tmp_path / "src" / "train" / WELL.name)
    for command, args in (
        (import_main, [f"src={tmp_path / 'src'}", f"out_dir={tmp_path / 'shards'}"]),
        (main, [f"src={tmp_path / 'shards'}", f"out_dir={tmp_path / 'out'}"]),
    ):
        res = cli(command, "format=well", *args)
        assert res.returncode == 0, res.stderr
    return tmp_path / "shards" / "dummy_dataset" / "train", tmp_path / "out"


def test_an_external_dataset_round_trips(cli, tmp_path):
    """An external dataset: each channel a t0 field, the constant a time-independent t0 field, the per-file values
    (times, grids, parameters a, b, the time-varying scalar) once per file again; imported back: the same shard
    content as the first import."""
    shards, out = _external(cli, tmp_path)
    path = _well_dir(out, "dummy_dataset", "train") / "shard-00000.hdf5"
    with h5py.File(path) as f, h5py.File(WELL) as w:
        assert list(f["t0_fields"].attrs["field_names"]) == ["field_x", "field_y", "constant_field"]
        assert not f["t0_fields/constant_field"].attrs["time_varying"] and f.attrs["ssl_pde_pde"] == "external"
        assert np.array_equal(f["t0_fields/constant_field"][...], w["t0_fields/constant_field"][...])
        assert np.array_equal(f["scalars/time_varying_scalar"][...], w["scalars/time_varying_scalar"][...])
        assert f["scalars/time_varying_scalar"].attrs["time_varying"] and f.attrs["a"] == 0.25
        assert np.array_equal(f["dimensions/time"][...], w["dimensions/time"][...])
        assert not f["dimensions/y"].attrs["sample_varying"]
    res = cli(import_main, "format=well", f"src={path.parent}", f"out_dir={tmp_path / 'back'}")
    assert res.returncode == 0, res.stderr
    first, back = _stacked(shards), _stacked(tmp_path / "back" / "dummy_dataset" / "train")
    assert set(back) >= set(first) - {"source_index"}
    for key in first:
        assert np.array_equal(back[key], first[key]), key


def test_well_dataset_reads_an_exported_external_dataset(cli, tmp_path):
    """WellDataset on the exported external dataset: the two channels, the constant field and scalars, the
    time-varying scalar per frame; stats.yaml has the constant field's statistics (no _delta ones), which
    normalise it."""
    pytest.importorskip("the_well")
    from the_well.data import WellDataset

    shards, out = _external(cli, tmp_path)
    src = _stacked(shards)
    ds_args = dict(path=str(out / "datasets" / "dummy_dataset"), well_split_name="train")
    ds = WellDataset(**ds_args)
    n, nt = src["u"].shape[:2]
    assert len(ds) == n * (nt - 1)
    sample = ds[nt]  # trajectory 1, window 1
    assert np.array_equal(sample["input_fields"][0].numpy(), np.moveaxis(src["u"][1, 1], 0, -1))
    assert np.array_equal(sample["constant_fields"][..., 0].numpy(), src["constants/constant_field"][1])
    assert np.array_equal(sample["input_scalars"][0].numpy(), src["params/time_varying_scalar"][1, 1:2])
    assert ds.metadata.constant_scalar_names == ["a", "b"] and ds.metadata.scalar_names == ["time_varying_scalar"]

    stats = _stats(out, "dummy_dataset")  # each channel a field; the constant field without _delta statistics
    for c, name in enumerate(("field_x", "field_y")):
        _assert_stats(stats, name, src["u"][:, :, c])
    _assert_stats(stats, "constant_field", src["constants/constant_field"], time_varying=False)
    from the_well.data.normalization import ZScoreNormalization

    normed = WellDataset(**ds_args, use_normalization=True, normalization_type=ZScoreNormalization)[nt]
    want = _zscore(src["constants/constant_field"][1], _moments(src["constants/constant_field"]))
    np.testing.assert_allclose(normed["constant_fields"][..., 0].numpy(), want, rtol=1e-5, atol=1e-5)


def test_a_rerun_skips_and_an_interrupted_export_resumes(cli, data, tmp_path, monkeypatch):
    """A rerun rewrites nothing, stats.yaml included. Interrupted after its first file (Ctrl-C: exit 130), an
    export leaves that file complete and no temporary or empty directory, and no stats.yaml; the rerun writes the
    rest (a killed run's temporary file removed), identical to an uninterrupted export, and the same stats.yaml.
    Interrupted while writing stats.yaml, it leaves none and no temporary file; a changed train file makes a rerun
    recompute it."""
    args = ["format=well", f"src={data / 'ks'}"]
    assert cli(main, *args, f"out_dir={tmp_path / 'whole'}").returncode == 0
    files = sorted(_well_dir(tmp_path / "whole", "ks", "train").iterdir())
    stats = tmp_path / "whole" / "datasets" / "ks" / "stats.yaml"
    stamps = [p.stat().st_mtime_ns for p in [*files, stats]]
    res = cli(main, *args, f"out_dir={tmp_path / 'whole'}")
    assert res.returncode == 0 and "2 file(s), 2 already present" in res.stdout
    assert "stats.yaml: up to date" in res.stdout
    assert [p.stat().st_mtime_ns for p in [*files, stats]] == stamps

    write, calls = well.write, []

    def interrupted(path, p, provenance):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        write(path, p, provenance)

    monkeypatch.setattr(well, "write", interrupted)
    res = cli(main, *args, f"out_dir={tmp_path / 'out'}")
    assert res.returncode == 130 and "rerun the same command to resume" in res.stderr
    directory = _well_dir(tmp_path / "out", "ks", "train")
    assert sorted(p.name for p in directory.iterdir()) == [files[0].name]
    assert sorted(p.name for p in directory.parents[1].iterdir()) == ["data"]  # no stats.yaml of one file
    monkeypatch.setattr(well, "write", write)
    (directory / (files[1].name + ".tmp.host.1")).write_text("left by a killed run")
    stamp = (directory / files[0].name).stat().st_mtime_ns
    res = cli(main, *args, f"out_dir={tmp_path / 'out'}")
    assert res.returncode == 0 and "1 already present" in res.stdout
    assert (directory / files[0].name).stat().st_mtime_ns == stamp
    assert sorted(p.name for p in directory.iterdir()) == [p.name for p in files]
    for p in files:
        assert _contents(directory / p.name) == _contents(p)
    resumed = directory.parents[1] / "stats.yaml"
    assert resumed.read_bytes() == stats.read_bytes()

    resumed.unlink()  # interrupted in the statistics pass: at the rename of its temporary file

    def rename_interrupted(src, dst):
        raise KeyboardInterrupt

    replace = well.os.replace
    monkeypatch.setattr(well.os, "replace", rename_interrupted)
    assert cli(main, *args, f"out_dir={tmp_path / 'out'}").returncode == 130
    monkeypatch.setattr(well.os, "replace", replace)
    assert sorted(p.name for p in directory.parents[1].iterdir()) == ["data"]
    assert cli(main, *args, f"out_dir={tmp_path / 'out'}").returncode == 0
    assert resumed.read_bytes() == stats.read_bytes()

    written = yaml.safe_load(resumed.read_text())  # a train file changed since: its stats.yaml is recomputed
    written["ssl_pde"]["files"][files[0].name] = "0" * 16
    resumed.write_text(yaml.safe_dump(written))
    res = cli(main, *args, f"out_dir={tmp_path / 'out'}")
    assert res.returncode == 0 and f"wrote {resumed}" in res.stdout
    assert resumed.read_bytes() == stats.read_bytes()


def _copy(shard: Path, to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(shard, to))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no_format", "format is required"),
        ("bad_format", "unknown format 'netcdf'"),
        ("no_src", "src 'missing' does not exist"),
        ("no_shards", "no shard-*.h5 files under src"),
        ("out_is_file", "is a file, not a directory"),
        ("corrupt", "shard-00001.h5: not a readable HDF5 file"),
        ("two_grids", "WellDataset reads one layout per directory"),
        ("same_output", "would both be written to"),
        ("other_data", "holds other data; use another out_dir or overwrite=true"),
        ("other_stats", "stats.yaml holds other data; use another out_dir or overwrite=true"),
    ],
)
def test_bad_input_is_refused_in_one_line(cli, data, tmp_path, case, message):
    """Bad settings, no shard, an unreadable shard, shards WellDataset could not read as one directory, two shards
    with one output file, and an out_dir holding other files or another's stats.yaml: one line naming it, exit
    status 2, nothing written (a valid shard before the bad one included); overwrite=true replaces them."""
    out, src = tmp_path / "out", tmp_path / "src"
    burgers = list_shards(data / "burgers")
    _copy(burgers[0], src / "burgers" / "train" / burgers[0].name)
    args = {"format": "well", "src": str(src), "out_dir": str(out)}
    if case == "no_format":
        del args["format"]
    elif case == "bad_format":
        args["format"] = "netcdf"
    elif case == "no_src":
        args["src"] = "missing"
    elif case == "no_shards":
        args["src"] = str(tmp_path / "empty")
        (tmp_path / "empty").mkdir()
    elif case == "out_is_file":
        out.write_text("a file")
    elif case == "corrupt":
        (src / "burgers" / "train" / "shard-00001.h5").write_bytes(b"not hdf5")
    elif case == "two_grids":
        generate(generate_cfg("burgers", tmp_path / "coarse", num_samples=1, nx=32))
        _copy(list_shards(tmp_path / "coarse")[0], src / "burgers" / "train" / "shard-00001.h5")
    elif case == "same_output":
        _copy(burgers[0], src / "again" / "burgers" / "train" / burgers[0].name)
    elif case == "other_data":
        _copy(burgers[1], src / "burgers" / "train" / burgers[1].name)
        assert cli(main, *(f"{k}={v}" for k, v in args.items())).returncode == 0
        (src / "burgers" / "train" / burgers[1].name).unlink()
        _copy(burgers[0], src / "burgers" / "train" / burgers[1].name)  # another shard under that name
    elif case == "other_stats":  # statistics this exporter did not write
        (out / "datasets" / "burgers").mkdir(parents=True)
        (out / "datasets" / "burgers" / "stats.yaml").write_text("mean: {u: 0.0}\nstd: {u: 1.0}\n")
    before = sorted(out.rglob("*")) if out.is_dir() else None
    _one_line_refusal(cli(main, *(f"{k}={v}" for k, v in args.items())), message)
    if case == "out_is_file":
        assert out.read_text() == "a file"
    else:
        assert (sorted(out.rglob("*")) if out.is_dir() else None) == before
    if case in ("other_data", "other_stats"):
        assert cli(main, *(f"{k}={v}" for k, v in args.items()), "overwrite=true").returncode == 0
        assert _stats(out, "burgers")["ssl_pde"]["split"] == "train"
