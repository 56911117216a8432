"""Time-steppers and their evaluation pieces: FiLM conditioning, the FNO layer, condition reduction, rollouts,
the persistence floor."""

from __future__ import annotations

import pytest
import torch

from ssl_pde.eval.data import Split


@pytest.mark.parametrize("arch", ["cnn", "fno", "unet"])
@pytest.mark.parametrize("hidden", [0, 7])
def test_stepper_film_starts_as_the_unconditioned_map(arch, hidden):
    """FiLM weights start at zero, so every conditioning variant starts from the same function; after a few
    optimiser steps on a condition-dependent target the condition changes the output."""
    from ssl_pde.models.timestepper import build_stepper

    fields = 3 if arch == "unet" else 1
    shape = (3, 4, 3, 16, 16) if arch == "unet" else (3, 4, 32)
    torch.manual_seed(0)
    a = build_stepper(arch, 4, 2, 16, cond_dim=0, fields=fields)
    torch.manual_seed(0)
    b = build_stepper(arch, 4, 2, 16, cond_dim=5, cond_hidden=hidden, fields=fields)
    u, c = torch.randn(shape), torch.randn(3, 5)
    out = b(u, c)
    assert out.shape == (3, 2, *shape[2:])
    torch.testing.assert_close(out, a(u))
    opt = torch.optim.Adam(b.parameters(), lr=1e-2)
    target = c[:, :1].reshape(3, *[1] * (len(shape) - 1))
    for _ in range(3):
        opt.zero_grad()
        ((b(u, c) - target) ** 2).mean().backward()
        opt.step()
    assert not torch.allclose(b(u, c), b(u, -c))
    with pytest.raises(ValueError, match="needs cond"):
        b(u)


def test_fno_spectral_layer_is_translation_equivariant():
    """A Fourier layer commutes with periodic shifts (exact: it is diagonal in Fourier space)."""
    from ssl_pde.models.timestepper import SpectralConv1d

    torch.manual_seed(0)
    layer = SpectralConv1d(6, 8)
    h = torch.randn(2, 6, 64)
    torch.testing.assert_close(layer(torch.roll(h, 5, -1)), torch.roll(layer(h), 5, -1), atol=1e-5, rtol=1e-5)


def test_reduce_conditions_keeps_the_leading_principal_components():
    """A condition whose variance lies in 2 known directions: 2 PCs span them, train stats are (0, 1)."""
    from ssl_pde.eval.timestep import reduce_conditions

    gen = torch.Generator().manual_seed(0)
    z = torch.randn(200, 2, generator=gen) * torch.tensor([5.0, 2.0])
    mix = torch.linalg.qr(torch.randn(10, 10, generator=gen))[0][:2]  # (2, 10) orthonormal rows
    c = z @ mix + 1e-3 * torch.randn(200, 10, generator=gen)
    tr, te = reduce_conditions(c[:150], c[150:], 2)
    assert tr.shape == (150, 2) and te.shape == (50, 2)
    torch.testing.assert_close(tr.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(tr.std(0), torch.ones(2), atol=1e-5, rtol=0)
    # the 2 components determine the original (standardised) condition up to the noise
    coef = torch.linalg.lstsq(tr, (c[:150] - c[:150].mean(0)) / c[:150].std(0)).solution
    resid = (c[150:] - c[:150].mean(0)) / c[:150].std(0) - te @ coef
    assert resid.abs().max() < 0.05
    full_tr, _ = reduce_conditions(c[:150], c[150:], None)
    assert full_tr.shape == (150, 10)


def test_one_step_teacher_forcing_by_hand():
    """One-step predictions read true frames (a persistence stepper's block j repeats frame start + j f - 1),
    while its rollout repeats the last true frame; both are aligned with the same truth. Checked against
    indices worked out by hand, and one_step_metrics against the rollout-error formula."""
    from ssl_pde.eval.timestep import rollout
    from ssl_pde.metrics import one_step_metrics

    class Persist(torch.nn.Module):
        def forward(self, u, cond=None):  # (B, h, X) -> (B, 2, X): the last input frame, twice
            return u[:, -1:].repeat(1, 2, 1)

    u = torch.arange(3 * 11 * 5, dtype=torch.float32).reshape(3, 11, 1, 5) ** 0.5 + 1
    s = Split({"u": u}, torch.ones(3))
    pred, truth = rollout(Persist(), s, None, 3, 2, torch.device("cpu"), start=4, teacher_forced=True)
    rpred, rtruth = rollout(Persist(), s, None, history=3, future=2, device=torch.device("cpu"), start=4)
    assert pred.shape == truth.shape == rpred.shape == (3, 6, 5)  # frames 4..9 (3 blocks of 2)
    torch.testing.assert_close(truth, u[:, 4:10, 0])
    torch.testing.assert_close(rtruth, truth)
    for j, f in enumerate((3, 5, 7)):  # block j: frames 4+2j, 5+2j from frame 3+2j
        torch.testing.assert_close(pred[:, 2 * j], u[:, f, 0])
        torch.testing.assert_close(pred[:, 2 * j + 1], u[:, f, 0])
    torch.testing.assert_close(rpred, u[:, 3:4, 0].expand(3, 6, 5))
    m = one_step_metrics(pred, truth)
    e = ((pred - truth) ** 2).sum(-1) / (truth**2).sum(-1)
    assert m["one_step_nmse"] == pytest.approx(float(e.mean()), rel=1e-6)
    assert m["one_step_mse"] == pytest.approx(float(((pred - truth) ** 2).mean()), rel=1e-6)
    assert m["one_step_mse"] < float(((rpred - truth) ** 2).mean())  # true inputs beat persistence from frame 3
