"""GPU checks (opt-in: ``pytest -m gpu``; they need a CUDA device and are skipped without one).

Each compares the GPU path with the CPU path of the same code, which the default tier verifies against
independent references (Radau, exact solutions, PDE residuals): float64 solvers must agree to round-off,
views must build the same tensors from the same group parameters, and a bf16 pretraining smoke run must
finish with a checkpoint. The comparison helpers take both devices as arguments, so
``test_helpers_on_cpu`` runs their logic on CPU-vs-CPU in the default tier.
"""

from __future__ import annotations

import hydra
import numpy as np
import pytest
import torch

from tests.conftest import TINY, tiny_generator

CUDA = torch.cuda.is_available()
GPU_SMOKE = ["debug=smoke", "trainer=gpu", "logger=csv", "augment.crop_t=8", "augment.crop_x=32"]
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device")


def solver_difference(pde: str, dev_a: str, dev_b: str, n: int = 4) -> float:
    """Max relative L2 difference between the same trajectories (seeds 0..n-1) generated on two devices."""
    if pde == "ns2d":
        from data_gen.solvers.ns2d import NS2DGenerator
        from tests.conftest import compose_cfg

        overrides = ["solver.nx=32", "solver.ny=32", "solver.nt=6", "solver.t_start=1.0", "solver.t_end=3.5"]
        cfg = compose_cfg("generate", ["pde=ns2d", *overrides, "solver.dt_max=0.1"])
        gen: NS2DGenerator = hydra.utils.instantiate(cfg.solver)
    else:
        gen = tiny_generator(pde)
    seeds = np.arange(n)
    a = gen.generate(seeds, device=dev_a).u.astype(np.float64)
    b = gen.generate(seeds, device=dev_b).u.astype(np.float64)
    num = np.sqrt(((a - b) ** 2).reshape(n, -1).sum(1))
    return float((num / np.sqrt((b**2).reshape(n, -1).sum(1))).max())


def view_difference(dev_a: str, dev_b: str) -> float:
    """Max abs difference of coords-mode Burgers views built on two devices from the same crops and eps."""
    from hydra.utils import instantiate

    from tests.conftest import compose_cfg

    acfg = compose_cfg("pretrain", ["experiment=burgers_vicreg", "augment.crop_t=8", "augment.crop_x=32"]).augment
    views = instantiate(acfg)
    batch = tiny_generator("burgers").generate(np.arange(4))
    u = torch.from_numpy(batch.u[:, :, 0])
    t, x = torch.from_numpy(batch.t), torch.from_numpy(batch.x)
    length = torch.from_numpy(batch.params["domain_length"])
    out = []
    for dev in (dev_a, dev_b):
        g = torch.Generator(device="cpu").manual_seed(0)  # same draws on both devices
        out.append(views.view(u.to(dev), t.to(dev), x.to(dev), length.to(dev), g).cpu())
    return float((out[0] - out[1]).abs().max())


@pytest.mark.parametrize("pde", [*TINY, "ns2d"])
def test_helpers_on_cpu(pde):
    """The comparison helpers themselves: the same device twice gives exactly the same trajectories and,
    for the same generator draws, the same views."""
    assert solver_difference(pde, "cpu", "cpu", n=2) == 0.0
    if pde == "burgers":
        assert view_difference("cpu", "cpu") == 0.0
        # the GPU smoke run's command line composes to the GPU trainer in bf16
        from tests.conftest import compose_cfg

        trainer = compose_cfg("pretrain", ["data.dir=x", *GPU_SMOKE]).trainer
        assert trainer.accelerator == "gpu" and "bf16" in str(trainer.precision), trainer


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("pde", [*TINY, "ns2d"])
def test_solvers_agree_on_gpu_and_cpu(pde):
    """Float64 on both devices: the trajectories agree to round-off amplified over a short horizon."""
    assert solver_difference(pde, "cpu", "cuda") < 1e-9


@pytest.mark.gpu
@needs_cuda
def test_views_agree_on_gpu_and_cpu():
    """Views are pure maps of (crop, eps): the same draws give the same view on both devices (float32)."""
    assert view_difference("cpu", "cuda") < 1e-4


@pytest.mark.gpu
@needs_cuda
def test_bf16_pretraining_smoke_on_gpu(tmp_path):
    """ssl-pde-pretrain debug=smoke on the GPU trainer (bf16 mixed precision, channels-last) finishes with
    a checkpoint and a finite loss."""
    import subprocess
    import sys

    from data_gen.cli.generate import generate
    from tests.conftest import generate_cfg

    for split in ("train", "valid"):
        cfg = generate_cfg("burgers", tmp_path, num_samples=16, shard_size=16)
        cfg.split = split
        generate(cfg)
    run = tmp_path / "run"
    res = subprocess.run(
        [sys.executable, "-m", "ssl_pde.cli.pretrain", *GPU_SMOKE, f"data.dir={tmp_path}", f"run_dir={run}"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert (run / "checkpoints" / "last.ckpt").is_file()
