"""Shared fixtures: small generators built from the real configs, and tiny shards made by the real writer."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import ssl_pde.config  # noqa: F401  (config resolvers for composed configs)
from ssl_pde import CONFIG_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("WANDB_MODE", "offline")
torch.set_num_threads(min(2, torch.get_num_threads()))

#: Overrides of configs/solver/<pde>.yaml giving small grids and short horizons that stay resolved.
TINY: dict[str, dict] = {
    "burgers": dict(nx=64, nt=11, nt_total=11, t_end=0.5, solver_nx=128, dt_max=0.005, nu_min=0.05, nu_max=0.5),
    "kdv": dict(nx=64, nt=11, nt_total=21, length=32.0, t_end=2.0, solver_nx=128, dt_max=0.01),
    "ks": dict(nx=32, nt=11, nt_total=21, length=22.0, t_end=5.0, solver_nx=64, dt_max=0.01),
}


def compose_cfg(config_name: str, overrides: list[str], hydra: bool = False) -> DictConfig:
    """Compose a primary config of ``configs/`` with overrides, as the command line would (with the ``hydra``
    node when ``hydra`` is true)."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name, overrides=overrides, return_hydra_config=hydra)


def tiny_overrides(pde: str, **extra) -> list[str]:
    """Command-line overrides selecting ``pde`` with the TINY solver settings (plus ``extra``)."""
    return [f"pde={pde}"] + [f"solver.{k}={v}" for k, v in {**TINY[pde], **extra}.items()]


def tiny_generator(pde: str, **extra):
    """A generator of ``pde`` built from the real config with the TINY overrides."""
    return hydra.utils.instantiate(compose_cfg("generate", tiny_overrides(pde, **extra)).solver)


def generate_cfg(pde: str, out_dir: Path, num_samples: int = 6, shard_size: int = 4, **solver) -> DictConfig:
    """A full ``ssl-pde-generate`` config for tiny data in ``out_dir``."""
    return compose_cfg(
        "generate",
        [
            *tiny_overrides(pde, **solver),
            f"out_dir={out_dir}",
            f"num_samples={num_samples}",
            f"shard_size={shard_size}",
            "batch_size=4",
            "device=cpu",
            "progress=false",
        ],
    )


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory) -> dict[str, Path]:
    """One tiny train split per PDE (6 trajectories in shards of 4), written by the real generator."""
    from data_gen.cli.generate import generate

    root = tmp_path_factory.mktemp("data")
    out = {}
    for pde in TINY:
        generate(generate_cfg(pde, root))
        out[pde] = root / pde / "train"
    return out


@pytest.fixture(scope="session")
def burgers_data(tmp_path_factory) -> Path:
    """32 train and 16 valid tiny Burgers trajectories (nu in [0.05, 0.5]) from the real generator."""
    from data_gen.cli.generate import generate

    root = tmp_path_factory.mktemp("pretrain_data")
    for split, n in (("train", 32), ("valid", 16)):
        cfg = generate_cfg("burgers", root, num_samples=n, shard_size=16)
        cfg.split = split
        generate(cfg)
    return root


@pytest.fixture(scope="session")
def burgers_splits(tmp_path_factory):
    """Evaluation splits: Burgers train 24, valid 8, test 8 and a second test split of 8 (``test_b``), from the
    real generator."""
    from data_gen.cli.generate import generate
    from ssl_pde.data.datasets import TrajectoryDataset
    from ssl_pde.eval.data import Split

    root, other = tmp_path_factory.mktemp("eval_data"), tmp_path_factory.mktemp("other_test")
    for split, n, seed, where in (
        ("train", 24, 0, root),
        ("valid", 8, 0, root),
        ("test", 8, 0, root),
        ("test", 8, 7, other),
    ):
        cfg = generate_cfg("burgers", where, num_samples=n, shard_size=16)
        cfg.split, cfg.seed = split, seed
        generate(cfg)
    names = ["nu", "domain_length", "t_end"]
    dirs = {"train": root, "valid": root, "test": root, "test_b": other}
    return {
        s: Split.load(TrajectoryDataset(d / "burgers" / s.removesuffix("_b"), names, preload=True), "nu")
        for s, d in dirs.items()
    }, root


class CliResult:
    """What an in-process command-line run left: its exit status and captured output (as a CompletedProcess)."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run a console-script entry point in this process: ``cli(main, *args) -> CliResult``.

    The same ``main`` the installed script calls (parsing, Hydra composition, the exit-status rules), without
    re-importing torch, Lightning and Hydra in a subprocess; ``sys.argv`` is set as the shell would set it.
    """

    def run(main, *args: str) -> CliResult:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", [getattr(main, "__module__", "ssl-pde"), *args])
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if isinstance(e.code, str):  # as the interpreter does at exit: the message on stderr
                print(e.code, file=sys.stderr)
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run


def load_script(name: str):
    """Import ``scripts/<name>.py`` by path (registered in ``sys.modules`` under ``name``, so dataclasses and
    pickling inside it work)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
