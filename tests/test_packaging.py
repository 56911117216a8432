"""A non-editable install carries the Hydra configs and runs: the wheel holds ``ssl_pde/configs`` (the top-level
``configs/`` through the package's link), and in a fresh virtual environment (dependencies from this one, the
project only from the wheel) the installed ``ssl-pde-generate`` writes valid shards away from any checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from ssl_pde.data.schema import list_shards, validate_shard
from tests.conftest import REPO_ROOT, tiny_overrides


def test_wheel_carries_the_configs(tmp_path):
    src = tmp_path / "src"  # a copy, so that the build's scratch directory stays out of the repository
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in ("ssl_pde", "data_gen", "configs"):
        shutil.copytree(REPO_ROOT / name, src / name, ignore=skip, symlinks=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, src / name)
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src)]
    subprocess.run([*build, "-w", str(wheels)], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = wheels.glob("ssl_pde-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for cfg in ("pretrain", "eval", "generate", "verify", "demo"):
        assert f"ssl_pde/configs/{cfg}.yaml" in names, cfg
    assert "ssl_pde/configs/experiment/ks_vicreg.yaml" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True, capture_output=True)
    where = subprocess.run(
        [py, "-c", "import ssl_pde; print(ssl_pde.CONFIG_DIR)"], capture_output=True, text=True, cwd=tmp_path
    )
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr
    out = tmp_path / "data"
    args = ["pde=ks", *tiny_overrides("ks")[1:], "num_samples=4", f"out_dir={out}", "device=cpu", "progress=false"]
    res = subprocess.run([venv / "bin" / "ssl-pde-generate", *args], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert sum(validate_shard(p).n for p in list_shards(out / "ks" / "train")) == 4
