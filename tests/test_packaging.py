"""A non-editable install carries the Hydra configs: the wheel holds ``ssl_pde/configs`` and an installed copy,
imported away from the repository, composes every primary config from it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from tests.conftest import REPO_ROOT


def test_wheel_carries_the_configs(tmp_path):
    src = tmp_path / "src"  # a copy, so that the build's scratch directory stays out of the repository
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in ("ssl_pde", "data_gen"):
        shutil.copytree(REPO_ROOT / name, src / name, ignore=skip)
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
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        "import ssl_pde; from ssl_pde import CONFIG_DIR; from hydra import compose, initialize_config_dir\n"
        f"assert str(CONFIG_DIR).startswith({str(target)!r}), CONFIG_DIR\n"
        "with initialize_config_dir(str(CONFIG_DIR), version_base='1.3'):\n"
        "    for name in ('pretrain', 'eval', 'generate', 'verify', 'demo'):\n"
        "        compose(name, ['experiment=ks_vicreg'] if name == 'pretrain' else [])\n"
        "print('ok')\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(target)}
    )
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
