"""Symmetry views of a batch: shapes and channel meaning, seeding, and resampling accuracy."""

from __future__ import annotations

import math

import hydra
import numpy as np
import pytest
import torch

from ssl_pde.augment.lie import splitting_sequence
from ssl_pde.augment.views import LieViews, interpolate
from ssl_pde.core.errors import UserError
from ssl_pde.pdes import PDES
from ssl_pde.pdes.residual import transformed
from tests.conftest import compose_cfg, tiny_generator
from tests.exact import burgers_exact


def burgers_batch(b: int = 3, nt: int = 41, nx: int = 64, t_end: float = 1.0):
    """Exact Burgers solutions (one IC, shifted per sample) sampled on a periodic grid: u (B, T, X)."""
    t = torch.linspace(0, t_end, nt, dtype=torch.float64).repeat(b, 1)
    length = torch.full((b,), 2 * math.pi, dtype=torch.float64)
    x = torch.arange(nx, dtype=torch.float64)[None] * length[:, None] / nx
    shift = torch.arange(b, dtype=torch.float64)[:, None, None]
    u = burgers_exact(t[:, :, None], x[:, None, :] + shift)
    return u, t, x, length


def _views(**kw) -> LieViews:
    base = dict(
        pde="burgers", strengths={"space_translation": 1.0, "galilean_boost": 0.3, "scaling": 0.1}, crop_t=16, crop_x=32
    )
    return LieViews(**{**base, **kw})


def test_augment_configs_build():
    """Every configs/augment/<pde>.yaml instantiates with the registry's generator names."""
    for pde in ("burgers", "kdv", "ks"):
        cfg = compose_cfg("pretrain", [f"pde={pde}"])  # augment follows the pde choice
        views = hydra.utils.instantiate(cfg.augment)
        assert set(views.names) <= set(PDES[pde].symmetries) and views.names


def test_coords_mode_channels_and_identity():
    """coords mode: (B, 3, ct, cx) = (t', x', u'); with every strength 0 it is the raw crop."""
    u, t, x, length = burgers_batch()
    v = _views(strengths={}).view(u, t, x, length, torch.Generator().manual_seed(0))
    assert v.shape == (3, 3, 16, 32) and v.dtype == torch.float32
    dt, dx = float(t[0, 1] - t[0, 0]), float(length[0] / 64)
    torch.testing.assert_close(v[:, 0, :, 0], (torch.arange(16) * dt).float().expand(3, 16))
    torch.testing.assert_close(v[:, 1, 0, :], (torch.arange(32) * dx).float().expand(3, 32))
    # the field channel is the (periodically wrapped) window at the sampled crop start
    t0, x0 = _views(strengths={})._crop_starts(3, 41, 64, torch.Generator().manual_seed(0), "cpu")
    for b in range(3):
        window = torch.roll(u[b], -int(x0[b]), dims=1)[int(t0[b]) : int(t0[b]) + 16, :32]
        torch.testing.assert_close(v[b, 2], window.float())


def test_views_are_seeded_and_independent():
    """Same generator seed -> identical views; the two views of a pair differ."""
    u, t, x, length = burgers_batch()
    views = _views()
    a1, a2 = views.two_views(u, t, x, length, torch.Generator().manual_seed(5))
    b1, b2 = views.two_views(u, t, x, length, torch.Generator().manual_seed(5))
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert not torch.equal(a1, a2)


def test_coords_mode_values_follow_the_group_action():
    """The u' channel of a Galilean-boosted view is the crop shifted by the sampled eps."""
    u, t, x, length = burgers_batch()
    views = _views(strengths={"galilean_boost": 0.3})
    v = views.view(u, t, x, length, torch.Generator().manual_seed(1))
    raw = _views(strengths={}).view(u, t, x, length, torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    views._crop_starts(3, 41, 64, g, "cpu")
    eps = views.sample_eps(3, g, torch.device("cpu"))[0]
    torch.testing.assert_close(v[:, 2] - raw[:, 2], eps.float()[:, None, None].expand(3, 16, 32))


def test_interpolation_matches_the_exact_solution():
    """Fourier (x) + degree-5 Lagrange (t) interpolation of 41 frames reproduces the exact solution."""
    u, t, x, length = burgers_batch()
    g = torch.Generator().manual_seed(0)
    tq = (0.1 + 0.8 * torch.rand(3, 5, 1, generator=g, dtype=torch.float64)).expand(3, 5, 7)
    xq = 10 * torch.rand(3, 5, 7, generator=g, dtype=torch.float64)
    got = interpolate(u, t, length, x[:, 0], tq, xq, degree=5)
    shift = torch.arange(3, dtype=torch.float64)[:, None, None]
    torch.testing.assert_close(got, burgers_exact(tq, xq + shift), rtol=0, atol=1e-7)


@pytest.mark.parametrize(
    ("names", "crop_t"),
    [
        (("space_translation",), 16),
        (("galilean_boost", "scaling", "space_translation"), 16),
        (("scaling", "galilean_boost"), 30),  # long crops: pre-image times must stay inside the data
    ],
)
def test_resample_mode_is_the_transformed_solution_on_a_grid(names, crop_t):
    """resample mode equals the exactly transformed exact solution at the regular grid's points."""
    u, t, x, length = burgers_batch()
    strengths = {n: {"space_translation": 1.0, "galilean_boost": 0.3, "scaling": 0.1}[n] for n in names}
    views = _views(strengths=strengths, mode="resample", crop_t=crop_t)
    v = views.view(u, t, x, length, torch.Generator().manual_seed(2))
    assert v.shape == (3, 1, crop_t, 32)
    g = torch.Generator().manual_seed(2)
    t0, x0 = views._crop_starts(3, 41, 64, g, "cpu")
    eps = views.sample_eps(3, g, torch.device("cpu"))
    spec = PDES["burgers"]
    for b in range(3):

        def exact(tt, xx, b=b):
            return burgers_exact(tt, xx + b)

        fn = exact  # the transformed solution, composed by the same factor sequence as the views
        for i, frac in splitting_sequence(len(views.names), 2, 1):
            fn = transformed(fn, spec.symmetries[views.names[i]], float(eps[i, b]) * frac)
        tc, xc = float(t[b, t0[b]]), float(x0[b]) * 2 * math.pi / 64
        o = torch.tensor([[tc]], dtype=torch.float64), torch.tensor([[xc]], dtype=torch.float64)
        ot, ox = o
        for i, frac in splitting_sequence(len(views.names), 2, 1):
            ot, ox, _ = spec.symmetries[views.names[i]](float(eps[i, b]) * frac, ot, ox, torch.zeros_like(ot))
        tg = float(ot) + float(t[b, 1] - t[b, 0]) * torch.arange(crop_t, dtype=torch.float64)[:, None]
        t_hi = torch.tensor([[float(t[b, -1])]], dtype=torch.float64)
        for i, frac in splitting_sequence(len(views.names), 2, 1):
            t_hi, _, _ = spec.symmetries[views.names[i]](float(eps[i, b]) * frac, t_hi, ox, torch.zeros_like(ot))
        tg = tg - max(float(tg[-1, 0] - t_hi), 0.0)
        xg = float(ox) + 2 * math.pi / 64 * torch.arange(32, dtype=torch.float64)[None, :]
        tg, xg = torch.broadcast_tensors(tg, xg)
        want = fn(tg.reshape(-1), xg.reshape(-1)).reshape(crop_t, 32)
        torch.testing.assert_close(v[b, 0].double(), want, rtol=0, atol=1e-5)


def test_resample_refuses_whole_line_generators():
    with pytest.raises(UserError, match="projective"):
        _views(strengths={"projective": 0.1}, mode="resample")


def test_bad_view_config():
    with pytest.raises(UserError, match="lorentz"):
        _views(strengths={"lorentz": 0.1})
    with pytest.raises(UserError, match="mode"):
        _views(mode="warp")


def test_views_of_generated_kdv_data():
    """Views work on the generator's own data (float32 storage, jittered domain lengths)."""
    gen = tiny_generator("kdv")
    batch = gen.generate(np.arange(4))
    u = torch.from_numpy(batch.u[:, :, 0])
    views = LieViews("kdv", {"space_translation": 16.0, "galilean_boost": 0.4, "scaling": 0.05}, crop_t=8, crop_x=32)
    v1, v2 = views.two_views(
        u,
        torch.from_numpy(batch.t),
        torch.from_numpy(batch.x),
        torch.from_numpy(batch.params["domain_length"]),
        torch.Generator().manual_seed(0),
    )
    assert v1.shape == v2.shape == (4, 3, 8, 32) and torch.isfinite(v1).all()


def test_resample_refuses_crops_longer_than_the_scaled_data():
    u, t, x, length = burgers_batch()
    views = _views(strengths={"scaling": 0.3}, mode="resample", crop_t=40)
    with pytest.raises(UserError, match="crop_t=40"):
        for seed in range(5):  # some sample stretches time by up to e^{0.6}
            views.view(u, t, x, length, torch.Generator().manual_seed(seed))
