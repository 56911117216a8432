"""The system-identification reference (ssl_pde/eval/sysid.py, scripts/sysid_baseline.py)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch

from ssl_pde.eval.sysid import burgers_viscosity_lsq


def test_viscosity_of_an_exact_solution_is_recovered_on_windows_and_irregular_frames():
    """Against an analytic solution, the Cole-Hopf solution u = -2 nu phi_x / phi of u_t + u u_x = nu u_xx with
    phi = 1 + b exp(-nu k^2 t) cos(k x): the least-squares viscosity matches nu to the derivatives' accuracy, on
    whole periodic trajectories (spectral) and on a window with irregular frame times (finite differences)."""
    nus = torch.tensor([0.05, 0.1, 0.2], dtype=torch.float64)
    length, nx, nt, k, b = 2 * math.pi, 256, 401, 1.0, 0.5
    x = torch.arange(nx, dtype=torch.float64) * length / nx
    t = torch.linspace(0, 0.5, nt, dtype=torch.float64)
    t_irr = t + 0.3 * (t[1] - t[0]) * torch.sin(17 * t)  # frames not evenly spaced
    for times, window in ((t, False), (t_irr, True)):
        tt, xx = times[None, :, None], x[None, None, :]
        e = b * torch.exp(-nus[:, None, None] * k**2 * tt)
        u = 2 * nus[:, None, None] * k * e * torch.sin(k * xx) / (1 + e * torch.cos(k * xx))
        tb, xb = times.expand(3, -1), x.expand(3, -1)
        if window:
            est = burgers_viscosity_lsq(u[:, 100:300, 20:200], tb[:, 100:300], xb[:, 20:200])
            tol = 1e-3
        else:
            est = burgers_viscosity_lsq(u, tb, xb, torch.full((3,), length, dtype=torch.float64))
            tol = 1e-5
        torch.testing.assert_close(est, nus, rtol=tol, atol=0)


def test_script_reports_the_generated_viscosities_far_below_the_constant(burgers_splits, tmp_path, cli):
    """On data of the real generator (an independent solver: ETDRK4 on a finer grid, stored subsampled) the
    residual estimate on whole trajectories is far closer to each trajectory's viscosity than the best constant;
    a crop larger than the data is refused with one line."""
    _, root = burgers_splits
    spec = importlib.util.spec_from_file_location(
        "sysid_baseline", Path(__file__).resolve().parents[1] / "scripts" / "sysid_baseline.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.run(root, "test", crop_t=8, crop_x=16)
    rows = res["rows"]
    assert rows["whole trajectory"]["nmse"] < 1e-2 * rows["best constant (train)"]["nmse"], rows
    bad = cli(mod.main, "--data", str(root), "--crop-t", "999")
    assert bad.returncode == 2 and "crop (999, 64)" in bad.stderr and bad.stderr.count("\n") == 1
