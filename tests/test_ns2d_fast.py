"""The ns2d solver's fast paths (dense-DCT projection, compiled step, single-precision right-hand side) against
the reference paths they replace; each test names its reference."""

from __future__ import annotations

import warnings

import hydra
import numpy as np
import pytest
import scipy.fft
import torch

import data_gen.solvers.mac_grid as mac_grid
from data_gen.solvers import ConfigError
from data_gen.solvers.mac_grid import MATMUL_DCT_MAX, NeumannPoisson, NS2DStepper, NSState, dct_matrix, project
from data_gen.solvers.ns2d import COMPILE_MIN_CELL_STEPS, NS2DGenerator
from data_gen.writer import generation_key
from tests.conftest import compose_cfg

F64 = torch.float64
TINY = dict(nx=16, ny=12, length_y=24.0, nt=3, t_start=1.0, t_end=3.0, dt_max=0.1)


def _state(b: int, nx: int, ny: int, seed: int = 0) -> NSState:
    g = torch.Generator().manual_seed(seed)
    vx = torch.randn(b, nx + 1, ny, generator=g, dtype=F64) * 0.3
    vy = torch.randn(b, nx, ny + 1, generator=g, dtype=F64) * 0.3
    vx[:, 0] = vx[:, -1] = 0
    vy[:, :, 0] = vy[:, :, -1] = 0
    return NSState(torch.rand(b, nx, ny, generator=g, dtype=F64), vx, vy)


def test_dct_matrix_is_scipy_orthonormal_dct():
    """Reference: scipy.fft.dct(type=2, norm="ortho"); the matrix is orthogonal (its transpose inverts it)."""
    c = dct_matrix(9)
    x = torch.randn(3, 9, dtype=F64)
    np.testing.assert_allclose((x @ c.T).numpy(), scipy.fft.dct(x.numpy(), type=2, norm="ortho", axis=-1), atol=1e-14)
    torch.testing.assert_close(c @ c.T, torch.eye(9, dtype=F64), atol=1e-14, rtol=0)


def test_poisson_methods_agree_and_auto_picks_by_size():
    """Reference: the FFT route (itself checked against a dense solve in test_ns2d_solver.py): the dense-matrix
    route gives the same potential and projection to round-off; ``auto`` takes the matmul up to MATMUL_DCT_MAX."""
    nx, ny, dx, dy = 24, 20, 0.5, 0.4
    f = torch.randn(3, nx, ny, dtype=F64)
    f -= f.mean(dim=(1, 2), keepdim=True)
    a, b = NeumannPoisson(nx, ny, dx, dy, method="matmul"), NeumannPoisson(nx, ny, dx, dy, method="fft")
    torch.testing.assert_close(a.solve(f), b.solve(f), atol=1e-13, rtol=0)
    st = _state(2, nx, ny)
    for x, y in zip(project(st.vx, st.vy, a, dx, dy), project(st.vx, st.vy, b, dx, dy), strict=True):
        torch.testing.assert_close(x, y, atol=1e-13, rtol=0)
    assert NeumannPoisson(nx, ny, dx, dy).method == "matmul"
    assert NeumannPoisson(MATMUL_DCT_MAX + 1, 8, dx, dy).method == "fft"
    with pytest.raises(ValueError, match="method"):
        NeumannPoisson(nx, ny, dx, dy, method="dense")


def test_compiled_generation_equals_eager():
    """Reference: the eager step, op by op. ``compile=true`` runs the same SSP-RK3 step through torch.compile:
    every stored frame and diagnostic agrees to round-off (fused loops may reorder sums), for two batch sizes
    from one compiled graph."""
    gen_e, gen_c = NS2DGenerator(**TINY, compile=False), NS2DGenerator(**TINY, compile=True)
    params = gen_e.sample_params(np.array([3, 4]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a silent fallback to eager would make this test vacuous
        out_c = gen_c.solve(params, keep_float64=True)
    out_e = gen_e.solve(params, keep_float64=True)
    assert float(out_e["u"][:, -1, 1:].abs().max()) > 1e-3  # the flow moved
    torch.testing.assert_close(out_c["u"], out_e["u"], atol=1e-12, rtol=0)
    for k in ("divergence", "cfl", "smoke_mass_drift"):
        torch.testing.assert_close(out_c[k], out_e[k], atol=1e-12, rtol=1e-9)
    # another batch size (a shard's last batch, replacements) reuses the graph: the batch dimension is dynamic
    from torch._dynamo.utils import counters

    graphs = counters["stats"]["unique_graphs"]
    params3 = gen_e.sample_params(np.array([7, 8, 9]))
    torch.testing.assert_close(
        gen_c.solve(params3, keep_float64=True)["u"], gen_e.solve(params3, keep_float64=True)["u"], atol=1e-12, rtol=0
    )
    assert counters["stats"]["unique_graphs"] == graphs


class _FakeCompilerError(RuntimeError):
    """Stands for an exception raised inside torch's compiler stack (e.g. no C++ toolchain)."""


_FakeCompilerError.__module__ = "torch._inductor.exc"


def test_compiler_failure_warns_once_and_continues_eagerly(monkeypatch):
    """Reference: the eager stepper. A compiler failure on the first step becomes one warning and the eager
    step's result, and later steppers of the process do not try again; an ordinary exception (a bug) is not
    swallowed."""

    def broken_compile(fn, **kwargs):
        def run(*args):
            raise _FakeCompilerError("no C++ compiler found")

        return run

    monkeypatch.setattr(mac_grid, "_COMPILED_STEP", [])
    monkeypatch.setattr(mac_grid, "_COMPILE_FAILED", [])
    monkeypatch.setattr(mac_grid.torch, "compile", broken_compile)
    b = torch.tensor([0.3, 0.4], dtype=F64)
    st0 = _state(2, 8, 6)
    ref = NS2DStepper(8, 6, 16.0, 12.0, 0.01, b).step(st0, 0.05)
    stepper = NS2DStepper(8, 6, 16.0, 12.0, 0.01, b, compile=True)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler found.*solver.compile=false"):
        out = stepper.step(st0, 0.05)
    assert not stepper.compiled
    torch.testing.assert_close(out.vx, ref.vx, atol=0, rtol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stepper.step(out, 0.05)  # no second warning
        later = NS2DStepper(8, 6, 16.0, 12.0, 0.01, b, compile=True)  # the next batch's stepper: no new attempt
        torch.testing.assert_close(later.step(st0, 0.05).vx, ref.vx, atol=0, rtol=0)
        assert not later.compiled

    def buggy_compile(fn, **kwargs):
        def run(*args):
            raise ValueError("a bug in the step")

        return run

    monkeypatch.setattr(mac_grid, "_COMPILED_STEP", [])
    monkeypatch.setattr(mac_grid, "_COMPILE_FAILED", [])
    monkeypatch.setattr(mac_grid.torch, "compile", buggy_compile)
    with pytest.raises(ValueError, match="a bug in the step"):
        NS2DStepper(8, 6, 16.0, 12.0, 0.01, b, compile=True).step(st0, 0.05)


def test_compile_auto_decides_by_work_and_is_not_part_of_the_shard_key():
    """``compile=auto`` compiles from COMPILE_MIN_CELL_STEPS cell-steps on; true/false force it; other values are
    a configuration error. How the step runs is not part of the generation key; the precision is, except at its
    earlier behaviour (float64), so shard directories written before the setting existed still resume."""
    gen = NS2DGenerator(**TINY)
    cells = gen.nx * gen.ny
    assert not gen.use_compile(2, 100)
    assert gen.use_compile(1, -(-COMPILE_MIN_CELL_STEPS // cells))
    assert NS2DGenerator(**TINY, compile=True).use_compile(1, 1)
    default = hydra.utils.instantiate(compose_cfg("generate", ["pde=ns2d"]).solver)  # the generation setting:
    assert default.use_compile(1, default.total_steps(np.array([0])))  # one trajectory (the CPU batch) compiles
    assert not NS2DGenerator(**TINY, compile=False).use_compile(10**6, 10**6)
    with pytest.raises(ConfigError, match="compile must be"):
        NS2DGenerator(**TINY, compile="yes")
    with pytest.raises(ConfigError, match="advection_dtype must be"):
        NS2DGenerator(**TINY, advection_dtype="float16")
    base = {"_target_": "data_gen.solvers.NS2DGenerator", **TINY, "advection_dtype": "float64"}
    key = generation_key({**base, "compile": "auto"}, 0, "train", 0, 8)
    assert generation_key({**base, "compile": True}, 0, "train", 0, 8) == key
    assert generation_key({**base, "advection_dtype": "float32"}, 0, "train", 0, 8) != key
    old = {k: v for k, v in base.items() if k != "advection_dtype"}  # a directory written before the setting
    assert generation_key(old, 0, "train", 0, 8) == key


def test_float32_right_hand_side_keeps_projection_exact_and_differs_by_rounding():
    """Reference: the float64 solver. Single-precision fluxes change the trajectory by rounding only (relative
    difference between 1e-9 and 1e-5 over the run, far below the discretisation error measured by
    ssl-pde-verify), while the projection in float64 keeps the divergence at double-precision round-off."""
    g64, g32 = NS2DGenerator(**TINY), NS2DGenerator(**TINY, advection_dtype="float32")
    params = g64.sample_params(np.array([5, 6]))
    a, b = g64.solve(params, keep_float64=True), g32.solve(params, keep_float64=True)
    rel = float(torch.linalg.vector_norm(a["u"] - b["u"]) / torch.linalg.vector_norm(a["u"]))
    assert 1e-9 < rel < 1e-5, rel
    assert float(b["divergence"].max()) < 1e-12
    assert float(b["smoke_mass_drift"].max()) < 1e-6
