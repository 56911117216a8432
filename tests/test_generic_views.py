"""Views of external datasets (:class:`~ssl_pde.augment.generic_views.GenericViews`): translations only, along the
periodic axes (read from the shards) and in time, exact permutations of the stored values; the configs that select
them (``pde=external``, ``experiment=well_shear_flow``) and the one naming a registry PDE (``pde=heat``)."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import h5py
import hydra
import pytest
import torch

from data_gen.cli.import_data import main as import_main
from ssl_pde.augment.generic_views import GenericViews
from ssl_pde.cli.inspect import main as inspect_main
from ssl_pde.core.errors import UserError
from ssl_pde.data.datasets import TrajectoryDataset
from ssl_pde.data.schema import list_shards, periodic_axes
from tests.conftest import REPO_ROOT, compose_cfg

WELL = REPO_ROOT / "tests" / "fixtures" / "external" / "the_well" / "dummy_well_seed0.hdf5"


def _data(b: int = 3, nt: int = 7, nx: int = 9, ny: int = 6):
    """u (B, T, 3, X, Y) whose value encodes (channel, frame, x, y): 1000 c + 100 k + 10 i + j; grids with
    per-trajectory spacing."""
    c, k, i, j = torch.meshgrid(torch.arange(3), torch.arange(nt), torch.arange(nx), torch.arange(ny), indexing="ij")
    u = (1000 * c + 100 * k + 10 * i + j).permute(1, 0, 2, 3).float().expand(b, -1, -1, -1, -1).clone()
    s = 1.0 + torch.arange(b, dtype=torch.float64)[:, None]
    return u, 5 + 0.5 * s * torch.arange(nt), s * torch.arange(nx), 2 * s * torch.arange(ny)


def _views(**kw) -> GenericViews:
    base = dict(dataset="toy", fields=["c2", "c0"], n_spatial_dims=2, periodic=["x"], data_fields=["c0", "c1", "c2"])
    return GenericViews(**{**base, "crop_t": 3, "crop_x": 5, "crop_y": 4, **kw})


def test_2d_views_translate_along_periodic_axes_only():
    """x periodic, y not: each view is the stored values of one crop (no interpolation), wrapping around x at random
    positions, fixed at the centre in y, at a random time window; coordinate channels from the crop origin, x
    continued across the period; channels quantity-major ((3 + 2) x 3 frames)."""
    u, t, x, y = _data()
    v = _views()
    assert v.names == ["time_translation", "x_translation"] and v.channels == 15 == GenericViews.view_channels(
        "coords", 3, ["a", "b"], 2
    )
    gen = torch.Generator().manual_seed(0)
    starts_x, starts_t = set(), set()
    for _ in range(20):
        out = v.view(u, t, x, y, gen)
        assert out.shape == (3, 15, 5, 4)
        q = out.reshape(3, 5, 3, 5, 4)  # (B, quantity, frame, x, y)
        for b in range(3):
            first = int(q[b, 3, 0, 0, 0]) - 2000  # field c2 at the crop origin: 100 k + 10 i + j
            k0, i0, j0 = first // 100, first // 10 % 10, first % 10
            assert j0 == (6 - 4) // 2  # y: the central crop, never moved
            k, i, j = torch.meshgrid(torch.arange(3), torch.arange(5), torch.arange(4), indexing="ij")
            want = 100 * (k0 + k) + 10 * ((i0 + i) % 9) + (j0 + j)
            assert torch.equal(q[b, 3], 2000 + want.float()) and torch.equal(q[b, 4], want.float())
            s = b + 1.0
            assert torch.allclose(q[b, 0], (0.5 * s * k).float()) and torch.allclose(q[b, 1], (s * i).float())
            assert torch.allclose(q[b, 2], (2 * s * j).float())
            starts_x.add(i0)
            starts_t.add(k0)
    assert max(starts_x) > 9 - 5 and starts_t == {0, 1, 2, 3, 4}  # crops wrap around x; every window is drawn
    fixed = v.without_symmetries()
    assert fixed.names == [] and torch.equal(fixed.view(u, t, x, y, gen), v.eval_view(u, t, x, y))
    assert torch.equal(v.eval_view(u, t, x, y), v.view(u, t, x, y, None))
    only = _views(mode="fields", generators=["x_translation"], eval_window="start")
    assert only.channels == 6 and only.view(u, t, x, y, gen).shape == (3, 6, 5, 4)
    assert int(only.view(u, t, x, y, gen)[0, 0, 0, 0]) // 100 % 10 == 0  # no time translation: the start window


def test_1d_views_and_refusals():
    """1D: (B, 2 + F, crop_t, crop_x) with channels t', x', fields; a translation along a non-periodic axis, an
    unknown generator or field, 3D data and oversized crops are refused."""
    u, t, x, _ = _data()
    u = u[..., 0]  # (B, T, 3, X)
    v = GenericViews("toy", ["c1"], 1, periodic=["x"], data_fields=["c0", "c1", "c2"], crop_t=4, crop_x=9)
    out = v.view(u, t, x, None, torch.Generator().manual_seed(1))
    assert out.shape == (3, 3, 4, 9) and v.channels == 3
    k, i = torch.meshgrid(torch.arange(4), torch.arange(9), indexing="ij")
    for b in range(3):
        k0, i0 = int(out[b, 2, 0, 0] - 1000) // 100, int(out[b, 2, 0, 0]) // 10 % 10
        assert torch.equal(out[b, 2], (1000 + 100 * (k0 + k) + 10 * ((i0 + i) % 9)).float())
    assert torch.allclose(out[1, 1, 0], 2.0 * torch.arange(9).float())  # x' continues across the period
    walls = dict(periodic=[], data_fields=["u"], crop_t=2, crop_x=2)
    for kw, msg in (
        (dict(generators=["x_translation"], **walls), "not periodic in toy"),
        (dict(generators=["z_translation"], **walls), "unknown"),
        (dict(periodic=["y"], data_fields=["u"]), "not axes of 1D data"),
        (dict(fields=["v"], periodic=["x"], data_fields=["u"]), "fields ['v'] are not channels of toy"),
        (dict(n_spatial_dims=3), "n_spatial_dims must be 1 or 2"),
        (dict(fields="u"), "must be a list of names"),
        (dict(mode="resample"), "unknown view mode"),
    ):
        with pytest.raises(UserError, match=msg.replace("[", r"\[").replace("]", r"\]")):
            GenericViews(**{"dataset": "toy", "fields": ["u"], "n_spatial_dims": 1, **kw})
    with pytest.raises(UserError, match="larger than the data"):
        GenericViews("toy", ["u"], 1, periodic=["x"], data_fields=["u"], crop_t=8, crop_x=4).check_data((7, 1, 9))
    with pytest.raises(RuntimeError, match="before check_dataset"):
        GenericViews("toy", ["u"]).view(u, t, x, None, None)


def test_check_dataset_binds_the_views_to_the_data():
    """Periodic axes and channels come from the data, are returned for the run's config and export, and a stated
    value the data contradict is refused, as are other dimensions."""
    ds = SimpleNamespace(
        n_spatial_dims=2, field_names=["a", "b"], periodic_axes=("x", "y"), item_shape=(10, 2, 32, 32), dataset_name="d"
    )
    v = GenericViews("d", ["b"], 2, crop_t=4, crop_x=16)
    assert v.check_dataset(ds) == {"periodic": ["x", "y"], "data_fields": ["a", "b"]}
    assert v.names == ["time_translation", "x_translation", "y_translation"] and v.field_index == [1]
    assert v.without_symmetries()._config["periodic"] == ["x", "y"]  # the bound settings are kept
    for kw, msg in (
        (dict(periodic=["x"]), r"augment.periodic=\['x'\], but the data under d have \['x', 'y'\]"),
        (dict(data_fields=["b", "a"]), "augment.data_fields"),
        (dict(n_spatial_dims=1), "d is 2D, the views are 1D"),
        (dict(crop_x=64), "larger than the data"),
    ):
        with pytest.raises(UserError, match=msg):
            GenericViews(**{"dataset": "d", "fields": ["b"], "n_spatial_dims": 2, "crop_t": 4, **kw}).check_dataset(ds)


def test_periodic_axes_come_from_the_boundary_conditions(cli, tmp_path):
    """The Well's dummy file (x_periodic, y_periodic) gives (x, y); a file whose y condition is a wall gives (x,), as
    ssl-pde-inspect reports beside the channels; generated-style shards without boundary groups follow their
    boundary attribute."""
    for name, y_type in (("periodic", "PERIODIC"), ("walls", "WALL")):
        (tmp_path / name / "train").mkdir(parents=True)
        path = tmp_path / name / "train" / WELL.name
        shutil.copy(WELL, path)
        with h5py.File(path, "r+") as f:
            f.attrs["dataset_name"] = f"dummy_{name}"
            f["boundary_conditions/y_periodic"].attrs["bc_type"] = y_type
        res = cli(import_main, "format=well", f"src={tmp_path / name}", f"out_dir={tmp_path / 'out'}")
        assert res.returncode == 0, res.stderr
    assert TrajectoryDataset(tmp_path / "out" / "dummy_periodic" / "train").periodic_axes == ("x", "y")
    ds = TrajectoryDataset(tmp_path / "out" / "dummy_walls" / "train")
    assert ds.periodic_axes == ("x",) and ds.field_names == ["field_x", "field_y"] and ds.pde == "external"
    res = cli(inspect_main, str(tmp_path / "out" / "dummy_walls"))
    rows = [line for line in res.stdout.splitlines() if "periodic axes" in line or "channels" in line]
    assert res.returncode == 0 and "field_x, field_y" in rows[0], rows
    assert rows[1].replace("│", " ").split() == ["periodic", "axes", "x"], rows
    (shard,) = list_shards(tmp_path / "out" / "dummy_walls")
    with h5py.File(shard, "r+") as f:
        del f["boundary_conditions"]
        f.attrs["boundary"] = "periodic"
    assert periodic_axes(shard) == ("x", "y")
    with h5py.File(shard, "r+") as f:
        f.attrs["boundary"] = "closed_box"
    assert periodic_axes(shard) == ()


@pytest.mark.parametrize(
    "overrides, target, channels",
    [
        (["pde=external", "data.dataset=heat"], "GenericViews", 3),
        (["pde=external", "data.dataset=x", "augment.mode=fields", "augment.fields=[a,b]"], "GenericViews", 2),
        (["pde=heat"], "LieViews", 3),
        (["experiment=well_shear_flow"], "GenericViews", (3 + 2) * 16),
    ],
)
def test_external_configs_compose(overrides, target, channels, tmp_path):
    """pde=external (the generic views, no probe), pde=heat (the registry heat's symmetries for the imported heat
    dataset) and the shear_flow overlay compose in struct mode; the encoder's channels are the views'."""
    cfg = compose_cfg("pretrain", [*overrides, f"run_dir={tmp_path}"])
    views = hydra.utils.instantiate(cfg.augment)
    dm = hydra.utils.instantiate(cfg.data)
    assert type(views).__name__ == target and views.channels == channels == cfg.encoder.in_channels
    assert dm.dataset == cfg.data.dataset and cfg.name == f"{cfg.data.dataset}_vicreg" and dm.param_names == []
    assert cfg.pde.probe_param is None and hydra.utils.instantiate(cfg.encoder).stem[0].in_channels == channels
    if target == "LieViews":
        assert views.names == ["space_translation", "amplitude_scaling", "scaling"]
    with pytest.raises(hydra.errors.InstantiationException, match=r"data\.dataset=<its directory name>"):
        hydra.utils.instantiate(compose_cfg("pretrain", ["pde=external", f"run_dir={tmp_path}"]).data)
