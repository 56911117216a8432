"""2D Navier-Stokes views (ssl_pde/augment/ns_views.py) and 2D shards in the data module.

References: the plain crop of the stored arrays (strengths 0), the registry flows composed by
``splitting_sequence`` directly, and the NS residual (``ssl_pde.pdes.ns2d.ns_residual``) of the
transformed Taylor-Green vortex, an exact solution on the whole plane.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from data_gen.cli.generate import generate
from ssl_pde.augment.lie import splitting_sequence
from ssl_pde.augment.ns_views import NSViews
from ssl_pde.core.errors import UserError
from ssl_pde.data.datasets import PDEDataModule, TrajectoryDataset
from ssl_pde.pdes import PDES
from ssl_pde.pdes.ns2d import ns_residual
from tests.conftest import compose_cfg

NU = 0.1
ALL = {name: 0.3 for name in PDES["ns2d"].symmetries}


def taylor_green(t, x, y):
    """Exact NS solution (rho = 1): decaying Taylor-Green vortex."""
    d = torch.exp(-2 * NU * t)
    return (
        -torch.cos(x) * torch.sin(y) * d,
        torch.sin(x) * torch.cos(y) * d,
        -(torch.cos(2 * x) + torch.cos(2 * y)) / 4 * d**2,
    )


def tg_batch(b: int = 2, nt: int = 5, nx: int = 10, ny: int = 12):
    """(u (B, T, 3, X, Y) float32 with smoke, vx, vy of Taylor-Green; t; x; y) on cell centres of [0, 2 pi]^2."""
    f64 = torch.float64
    t = (0.5 + 0.25 * torch.arange(nt, dtype=f64)).expand(b, nt).clone()
    x = ((torch.arange(nx, dtype=f64) + 0.5) * 2 * math.pi / nx).expand(b, nx).clone()
    y = ((torch.arange(ny, dtype=f64) + 0.5) * 2 * math.pi / ny).expand(b, ny).clone()
    tt, xx, yy = torch.broadcast_tensors(t[:, :, None, None], x[:, None, :, None], y[:, None, None, :])
    vx, vy, _ = taylor_green(tt, xx, yy)
    smoke = 1 + torch.sin(xx + 2 * yy) * torch.exp(-tt) + torch.arange(b, dtype=f64)[:, None, None, None]
    return torch.stack([smoke, vx, vy], dim=2).float(), t, x, y


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def blocks(v: torch.Tensor, ct: int) -> list[torch.Tensor]:
    """Split a view (B, 6 ct, cx, cy) into its 6 quantities (B, ct, cx, cy): t', x', y', smoke, vx', vy'."""
    return list(v.reshape(v.shape[0], 6, ct, *v.shape[2:]).unbind(1))


def test_shapes_layout_and_plain_crop_at_zero_strength():
    """Strengths 0: the view is the plain crop at the sampled origin, coordinates relative to it, in the
    documented quantity-major layout; the eval view is the central crop."""
    u, t, x, y = tg_batch()
    views = NSViews("ns2d", {}, crop_t=3, crop_x=4, crop_y=5)
    assert views.channels == 18
    v = views.view(u, t, x, y, gen(1))
    assert v.shape == (2, 18, 4, 5) and v.dtype == torch.float32
    t0, x0, y0 = views.crop_starts(u, gen(1))
    q = blocks(v, 3)
    for i in range(2):
        a, b, c = int(t0[i]), int(x0[i]), int(y0[i])
        crop = u[i, a : a + 3, :, b : b + 4, c : c + 5]  # (ct, 3, cx, cy)
        for f in range(3):
            assert torch.equal(q[3 + f][i], crop[:, f])
        torch.testing.assert_close(q[0][i], (t[i, a : a + 3] - t[i, a]).float()[:, None, None].expand(3, 4, 5))
        torch.testing.assert_close(q[1][i], (x[i, b : b + 4] - x[i, b]).float()[None, :, None].expand(3, 4, 5))
        torch.testing.assert_close(q[2][i], (y[i, c : c + 5] - y[i, c]).float()[None, None, :].expand(3, 4, 5))
    e = blocks(views.eval_view(u, t, x, y), 3)
    assert torch.equal(e[3], u[:, 1:4, 0, 3:7, 3:8]) and torch.equal(e[0], q[0])


def test_fields_select_the_field_channels_and_the_encoder_width():
    """``fields`` keeps only the named field blocks, in the given order, after the three coordinate blocks of
    the full view (same crop and group element from the same seed); the config's encoder width follows;
    unknown or repeated fields are refused."""
    u, t, x, y = tg_batch()
    strengths = {"scaling": 0.1, "rotation": 0.1, "boost_x": 0.01}
    full = NSViews("ns2d", strengths, crop_t=3, crop_x=4, crop_y=5)
    vel = NSViews("ns2d", strengths, crop_t=3, crop_x=4, crop_y=5, fields=["vy", "vx"])
    assert vel.channels == 15 and vel.without_symmetries().fields == ("vy", "vx")
    q, qv = blocks(full.view(u, t, x, y, gen(3)), 3), vel.view(u, t, x, y, gen(3))
    assert qv.shape == (2, 15, 4, 5)
    qv = list(qv.reshape(2, 5, 3, 4, 5).unbind(1))
    for got, want in zip(qv, [q[0], q[1], q[2], q[5], q[4]], strict=True):
        assert torch.equal(got, want)
    e = vel.eval_view(u, t, x, y).reshape(2, 5, 3, 4, 5)
    assert torch.equal(e[:, 4], blocks(full.eval_view(u, t, x, y), 3)[4])
    for bad in (["vx", "pressure"], ["vx", "vx"], [], "vx"):
        with pytest.raises(UserError, match="field"):
            NSViews("ns2d", {}, fields=bad)
    assert NSViews("ns2d", {}, crop_t=3, fields=None).fields == ("smoke", "vx", "vy")  # None: all three
    assert compose_cfg("pretrain", ["experiment=ns2d_cpu"]).encoder.in_channels == 16 * 5  # default: vx, vy
    cfg = compose_cfg("pretrain", ["experiment=ns2d_cpu", "augment.fields=[smoke,vx,vy]"])
    assert cfg.encoder.in_channels == 16 * 6


def test_determinism_crops_inside_the_box_and_ablation():
    """Same generator seed, same views; other seed, other views; crops never leave the (closed) box; the
    crops-only ablation draws the same crops and returns them untransformed."""
    u, t, x, y = tg_batch(b=64)
    views = NSViews("ns2d", ALL, crop_t=2, crop_x=7, crop_y=12, relative_coords=False)
    a1, a2 = views.two_views(u, t, x, y, gen(3))
    b1, b2 = views.two_views(u, t, x, y, gen(3))
    assert torch.equal(a1, b1) and torch.equal(a2, b2) and not torch.equal(a1, a2)
    assert not torch.equal(a1, views.view(u, t, x, y, gen(4)))
    t0, x0, y0 = views.crop_starts(u, gen(3))
    assert int(t0.max()) == 3 and int(x0.max()) == 3 and int(y0.max()) == 0 and int(t0.min()) == int(x0.min()) == 0
    plain = views.without_symmetries()
    assert plain.names == [] and plain.channels == views.channels
    p = blocks(plain.view(u, t, x, y, gen(3)), 2)
    for i in range(64):
        a, b = int(t0[i]), int(x0[i])
        assert torch.equal(p[4][i], u[i, a : a + 2, 1, b : b + 7])
        assert float(p[1][i].min()) >= float(x[i, 0]) - 1e-6 and float(p[1][i].max()) <= float(x[i, -1]) + 1e-6
    with pytest.raises(UserError, match="larger than the data"):
        NSViews("ns2d", {}, crop_t=2, crop_x=11, crop_y=4).view(u, t, x, y, gen())
    with pytest.raises(UserError, match="unknown generators"):
        NSViews("ns2d", {"galilean_boost": 0.1})


def test_same_window_shares_the_crop_and_nothing_else():
    """same_window: both views read the same frames and cells (their crops-only versions are equal) while
    the group elements differ; without it the windows differ for some trajectories."""
    u, t, x, y = tg_batch(b=32)
    kw = dict(crop_t=2, crop_x=7, crop_y=6)
    shared = NSViews("ns2d", ALL, same_window=True, **kw)
    plain = shared.without_symmetries()
    assert plain.same_window
    p1, p2 = plain.two_views(u, t, x, y, gen(5))
    assert torch.equal(p1, p2)  # same crops, no transformation
    v1, v2 = shared.two_views(u, t, x, y, gen(5))
    assert not torch.equal(v1, v2)  # other group elements
    q1, q2 = NSViews("ns2d", {}, **kw).two_views(u, t, x, y, gen(5))
    assert not torch.equal(q1, q2)  # independent windows by default


def test_normalize_coords_divides_by_the_crop_extent():
    """normalize_coords: the same draws give the same fields, and coordinate channels equal to the plain
    ones divided by the untransformed crop's extent per axis ((ct-1) dt, (cx-1) dx, (cy-1) dy of the
    Taylor-Green grid); the evaluation view's coordinates then span exactly [0, 1]."""
    u, t, x, y = tg_batch(b=4)
    kw = dict(crop_t=3, crop_x=6, crop_y=5)
    plain = NSViews("ns2d", ALL, **kw)
    norm = NSViews("ns2d", ALL, normalize_coords=True, **kw)
    assert norm.without_symmetries().normalize_coords
    extents = (2 * float(t[0, 1] - t[0, 0]), 5 * float(x[0, 1] - x[0, 0]), 4 * float(y[0, 1] - y[0, 0]))
    a, b = blocks(plain.view(u, t, x, y, gen(3)), 3), blocks(norm.view(u, t, x, y, gen(3)), 3)
    for k in range(3):
        torch.testing.assert_close(b[k], a[k] / extents[k], rtol=1e-5, atol=1e-6)
    for k in range(3, 6):
        assert torch.equal(a[k], b[k])
    e = blocks(norm.eval_view(u, t, x, y), 3)
    for k in range(3):
        assert float(e[k].amin()) == 0.0 and abs(float(e[k].amax()) - 1.0) < 1e-6


def test_eval_window_picks_the_frames():
    """eval_window: the evaluation input reads frames [0, ct), the middle ones or the last ct (its smoke
    channels equal the stored smoke there, central cells), and an unknown window is refused."""
    u, t, x, y = tg_batch(b=2, nt=7)
    for window, t0 in (("start", 0), ("center", 2), ("end", 4)):
        v = blocks(NSViews("ns2d", ALL, crop_t=3, crop_x=6, crop_y=6, eval_window=window).eval_view(u, t, x, y), 3)
        assert torch.equal(v[3], u[:, t0 : t0 + 3, 0, 2:8, 3:9]), window
    with pytest.raises(UserError, match="unknown eval_window 'middle'"):
        NSViews("ns2d", ALL, eval_window="middle")


def _compose(names, eps, t, x, y, u, v, p, order=2, steps=1, inverse=False):
    """The registry flows composed directly: the reference for the view's transformation."""
    syms = [PDES["ns2d"].symmetries[n] for n in names]
    seq = splitting_sequence(len(syms), order, steps)
    shape = (eps.shape[1],) + (1,) * (t.dim() - 1)
    for i, frac in reversed(seq) if inverse else seq:
        e = eps[i].reshape(shape) * frac * (-1 if inverse else 1)
        t, x, y, u, v, p = syms[i].fn(e, t, x, y, u, v, p)
    return t, x, y, u, v, p


def test_transformed_view_lies_on_an_exact_ns_solution():
    """All nine flows composed (Strang): the view's (t', x', y', vx', vy') are the registry flows applied to
    the crop points, and lie on the graph of the transformed Taylor-Green vortex, whose NS residual is at
    round-off."""
    u, t, x, y = tg_batch(b=3)
    views = NSViews("ns2d", ALL, crop_t=3, crop_x=6, crop_y=7, relative_coords=False)
    v = views.view(u, t, x, y, gen(5))
    g = gen(5)
    t0, x0, y0 = views.crop_starts(u, g)
    eps = views.sample_eps(3, g, u.device)
    assert eps.shape == (9, 3) and float(eps.abs().min()) > 0
    q = blocks(v, 3)
    for i in range(3):
        a, b, c = int(t0[i]), int(x0[i]), int(y0[i])
        tt, xx, yy = torch.broadcast_tensors(
            t[i, a : a + 3, None, None], x[i, None, b : b + 6, None], y[i, None, None, c : c + 7]
        )
        crop = u[i, a : a + 3, :, b : b + 6, c : c + 7].double()
        ref = _compose(
            views.names, eps[:, i : i + 1], tt[None], xx[None], yy[None], crop[None, :, 1], crop[None, :, 2], 0
        )
        for k, r in zip((0, 1, 2, 4, 5), ref[:5], strict=True):
            torch.testing.assert_close(q[k][i], r[0].float(), rtol=1e-6, atol=1e-6)
        assert torch.equal(q[3][i], crop[:, 0].float())  # smoke: invariant

        def sol(tp, xp, yp, i=i):
            e = eps[:, i : i + 1]
            z = torch.zeros_like(tp)
            t_, x_, y_, *_ = _compose(
                views.names, e, tp[None], xp[None], yp[None], z[None], z[None], z[None], inverse=True
            )
            out = _compose(views.names, e, t_, x_, y_, *taylor_green(t_, x_, y_))
            return out[3][0], out[4][0], out[5][0]

        pts = [q[k][i].double().flatten() for k in range(3)]
        assert ns_residual(sol, *pts, nu=NU) < 1e-10
        with torch.no_grad():
            su, sv, _ = sol(*pts)
        torch.testing.assert_close(su, q[4][i].double().flatten(), rtol=0, atol=1e-4)
        torch.testing.assert_close(sv, q[5][i].double().flatten(), rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def ns_data(tmp_path_factory):
    """Tiny ns2d train/valid splits (16 x 16 cells, 5 frames) from the real generator."""
    root = tmp_path_factory.mktemp("ns_data")
    solver = dict(nx=16, ny=16, nt=5, t_start=1.0, t_end=3.0, dt_max=0.1)
    for split, n in (("train", 3), ("valid", 2)):
        cfg = compose_cfg(
            "generate",
            [
                "pde=ns2d",
                *[f"solver.{k}={v}" for k, v in solver.items()],
                *[f"out_dir={root}", f"split={split}", f"num_samples={n}", "shard_size=2", "batch_size=2"],
                *["device=cpu", "progress=false"],
            ],
        )
        generate(cfg)
    return root


@pytest.mark.parametrize("preload", [False, True])
def test_data_module_reads_2d_shards(ns_data, preload):
    """2D items: u (T, 3, X, Y), t, x, y, the box size from the grids (32 x 32), buoyancy; lazy and preloaded
    reads agree; the views accept the batch."""
    ds = TrajectoryDataset(ns_data / "ns2d" / "train", ["buoyancy"], preload=preload)
    assert len(ds) == 3 and ds.n_spatial_dims == 2
    item = ds[2]
    assert item["u"].shape == (5, 3, 16, 16) and item["u"].dtype == torch.float32
    assert item["y"].shape == (16,) and float(item["length"]) == float(item["length_y"]) == pytest.approx(32.0)
    assert 0.2 <= float(item["params"]["buoyancy"]) <= 0.5
    dm = PDEDataModule(str(ns_data), "ns2d", batch_size=3, preload=preload, param_names=["buoyancy"])
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"u", "t", "x", "y", "length", "length_y", "index", "params"}
    assert batch["u"].shape == (3, 5, 3, 16, 16) and batch["length"].shape == (3,)
    row = int(np.flatnonzero(batch["index"].numpy() == 2)[0])
    assert torch.equal(batch["u"][row], item["u"]) and torch.equal(batch["y"][row], item["y"])
    views = NSViews("ns2d", ALL, crop_t=2, crop_x=8, crop_y=8)
    v1, v2 = views.two_views(*views.inputs(batch), gen())
    assert v1.shape == v2.shape == (3, 12, 8, 8) and torch.isfinite(v1).all()
    assert views.eval_view(*views.inputs(batch)).shape == (3, 12, 8, 8)
