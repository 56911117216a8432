"""HDF5 schema: round trip through the real writer, and refusal of incomplete or foreign files."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from ssl_pde.cli.inspect import main as inspect_main
from ssl_pde.core.errors import DataError
from ssl_pde.data.schema import SCHEMA_VERSION, SchemaError, list_shards, validate_shard
from ssl_pde.pdes import PDES


@pytest.mark.parametrize("pde", ["burgers", "kdv", "ks"])
def test_round_trip(tiny_shards, pde):
    """Shards written by ssl-pde-generate validate and hold every field, parameter, seed and diagnostic."""
    shards = list_shards(tiny_shards[pde])
    assert [p.name for p in shards] == ["shard-00000.h5", "shard-00001.h5"]
    sums = [validate_shard(p) for p in shards]
    assert [s.n for s in sums] == [4, 2]
    spec = PDES[pde]
    for s in sums:
        assert s.pde == pde and s.split == "train"
        assert s.field_names == list(spec.field_names)
        assert set(spec.param_names) <= set(s.params)
        assert s.u_shape[1:] == (11, 1, 64 if pde != "ks" else 32)
        assert {"spectral_tail", "max_abs"} <= set(s.diagnostics)
    with h5py.File(shards[0]) as f:
        assert f["u"].dtype == np.float32 and f["u"].attrs["dims"] == "n t c x"
        assert f["u"].chunks[0] == 1 and f["u"].compression is not None
        assert f["t"].dtype == np.float64 and f["x"].dtype == np.float64
        assert f["seed"].dtype == np.int64 and len(set(f["seed"][...])) == 4
        assert f.attrs["schema_version"] == SCHEMA_VERSION and bool(f.attrs["complete"])
        assert "solver:" in f.attrs["config_yaml"] and f.attrs["created_utc"]
        for name in spec.param_names:
            assert f[f"params/{name}"].attrs["sampling"], name
            assert f[f"params/{name}"].dtype == np.float64
        # point sampling of the solver grid: stored x is every (solver_nx / nx)-th solver point
        L = f["params/domain_length"][0]
        np.testing.assert_allclose(f["x"][0], np.arange(f["x"].shape[1]) * L / f["x"].shape[1], rtol=1e-12)
    if pde == "burgers":
        nu = np.concatenate([s.params["nu"] for s in sums])
        assert np.all((nu >= 0.05) & (nu <= 0.5))


def _corrupt(src, tmp_path, mutate):
    dst = tmp_path / "shard-00000.h5"
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        mutate(f)
    return dst


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.attrs.__setitem__("complete", False), "incomplete"),
        (lambda f: f.attrs.__delitem__("complete"), "incomplete"),
        (lambda f: f.attrs.__setitem__("schema_version", 2), "schema_version 2"),
        (lambda f: f.attrs.__delitem__("schema_version"), "schema_version"),
        (lambda f: f.__delitem__("seed"), "/seed"),
        (lambda f: f.__delitem__("params/t_end"), "params/t_end"),
        (lambda f: f.attrs.__setitem__("pde", "heat3d"), "heat3d"),
    ],
)
def test_refuses_bad_shards(tiny_shards, tmp_path, mutate, message):
    """The reader refuses incomplete, wrong-version or partial files, naming what is wrong."""
    bad = _corrupt(list_shards(tiny_shards["kdv"])[0], tmp_path, mutate)
    with pytest.raises(SchemaError, match=message):
        validate_shard(bad)


def test_inspect_cli(cli, tiny_shards, tmp_path):
    """ssl-pde-inspect summarises a valid directory and exits 2 with one line on an incomplete shard."""
    ok = cli(inspect_main, str(tiny_shards["ks"]))
    assert ok.returncode == 0, ok.stderr
    assert "6 trajectories in 2 shard(s)" in ok.stdout and "params/domain_length" in ok.stdout
    bad = _corrupt(list_shards(tiny_shards["ks"])[0], tmp_path, lambda f: f.attrs.__setitem__("complete", False))
    res = cli(inspect_main, str(bad))
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error:") and "incomplete" in res.stderr
    (tmp_path / "not-hdf5").mkdir()
    (tmp_path / "not-hdf5" / "shard-00000.h5").write_text("hello")
    res = cli(inspect_main, str(tmp_path / "not-hdf5"))
    assert res.returncode == 2 and "not a readable HDF5 file" in res.stderr


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e6])
def test_corrupt_values_are_caught_and_named(tiny_shards, tmp_path, value):
    """A NaN, an inf, or a value beyond the trajectory's stored max_abs written into /u of trajectory 1 of a
    complete shard: the structure is still valid, but ssl-pde-inspect refuses it naming the file and the
    trajectory (one line, exit 2), and the data loader (preloaded or lazy) refuses non-finite values the same way."""
    from ssl_pde.cli.inspect import main as inspect_main
    from ssl_pde.data.datasets import TrajectoryDataset
    from ssl_pde.data.schema import check_values

    def poke(f):
        u = f["u"][1]
        u.flat[7] = value
        f["u"][1] = u

    bad = _corrupt(list_shards(tiny_shards["ks"])[0], tmp_path, poke)
    validate_shard(bad)  # the structure is fine
    with pytest.raises(SchemaError, match=r"trajectory 1: "):
        check_values(bad)
    with pytest.raises(SystemExit) as e:
        inspect_main([str(bad)])
    assert e.value.code == 2
    if np.isfinite(value):
        return
    for preload in (True, False):
        with pytest.raises(DataError, match=r"shard-00000.h5: non-finite values in /u of trajectory 1"):
            ds = TrajectoryDataset(bad.parent, preload=preload)
            ds[1]
    assert check_values(list_shards(tiny_shards["ks"])[0]) == 4
