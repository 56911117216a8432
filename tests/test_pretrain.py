"""VICReg pretraining through the real command line (in-process; the kill test in a real process) on tiny
generated data: checkpoints, offline W&B,
resume, a falling loss, refusal of NaN data and of a diverging loss, and every config composing."""

from __future__ import annotations

import csv
import glob
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import hydra
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import ssl_pde.config  # noqa: F401
from data_gen.cli.generate import generate
from ssl_pde import CONFIG_DIR
from ssl_pde.cli.pretrain import main
from ssl_pde.models.encoders import ResNet18
from tests.conftest import REPO_ROOT, compose_cfg

CLI = [sys.executable, "-m", "ssl_pde.cli.pretrain"]


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_smoke_writes_checkpoints_wandb_and_encoder(cli, burgers_data, tmp_path):
    """debug=smoke: last/best checkpoints, CSV metrics, an offline W&B run holding config and metrics,
    and an exported encoder that rebuilds from its own config."""
    run = tmp_path / "run"
    res = cli(main, "debug=smoke", f"data.dir={burgers_data}", f"run_dir={run}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "checkpoints" / "best.ckpt").is_file()
    rows = _metrics(run)
    keys = set(rows[0])
    for k in (
        "train/loss",
        "train/invariance",
        "train/variance",
        "train/covariance",
        "train/emb_std_min",
        "train/lr",
        "val/rankme",
        "val/probe_nmse",
        "val/probe_floor_nmse",
    ):
        assert k in keys, k
    assert any(r["val/probe_nmse"] for r in rows)
    (wandb_file,) = glob.glob(str(run / "wandb" / "offline-run-*" / "run-*.wandb"))
    blob = Path(wandb_file).read_bytes()
    for needle in (b"train/invariance", b"val/probe_nmse", b"probe_param", b"VICRegModule"):
        assert needle in blob, needle
    exported = torch.load(run / "encoder.pt", weights_only=True)
    enc = hydra.utils.instantiate(exported["encoder"])
    enc.load_state_dict(exported["state_dict"])
    assert isinstance(enc, ResNet18) and exported["pde"] == "burgers" and exported["augment"]["mode"] == "coords"
    assert exported["seed"] == OmegaConf.load(run / "config.yaml").seed  # ssl-pde-eval seeds cells from it


def test_ns2d_smoke_pretrains_with_the_buoyancy_probe(cli, tmp_path):
    """experiment=ns2d_vicreg debug=smoke on tiny ns2d data (32 x 32 cells, 8 frames) from the real
    generator: 2D views (8 frames x 5 channels: t', x', y', vx', vy' by default), the online buoyancy probe,
    checkpoints and encoder.pt; unknown or malformed augment.fields end with one line, exit status 2 and nothing
    of the run written."""
    solver = dict(nx=32, ny=32, nt=8, t_start=1.0, t_end=4.5, dt_max=0.1)
    for split in ("train", "valid"):
        cfg = compose_cfg(
            "generate",
            [
                "pde=ns2d",
                *[f"solver.{k}={v}" for k, v in solver.items()],
                *[f"out_dir={tmp_path}", f"split={split}", "num_samples=8", "shard_size=8", "batch_size=8"],
                *["device=cpu", "progress=false"],
            ],
        )
        generate(cfg)
    run = tmp_path / "run"
    res = cli(main, "experiment=ns2d_vicreg", "debug=smoke", f"data.dir={tmp_path}", f"run_dir={run}", "logger=csv")
    assert res.returncode == 0, res.stderr[-3000:]
    assert (run / "checkpoints" / "last.ckpt").is_file()
    rows = _metrics(run)
    assert any(r["val/probe_nmse"] for r in rows) and any(r["train/loss"] for r in rows)
    exported = torch.load(run / "encoder.pt", weights_only=True)
    assert exported["pde"] == "ns2d" and exported["probe_param"] == "buoyancy"
    assert exported["encoder"]["in_channels"] == 40 and exported["augment"]["crop_y"] == 32
    assert exported["augment"]["fields"] == ["vx", "vy"]
    enc = hydra.utils.instantiate(exported["encoder"])
    enc.load_state_dict(exported["state_dict"])
    for fields, why in (("[vx,pressure]", "unknown field 'pressure'"), ("vx", "got the string 'vx'")):
        bad = tmp_path / "bad"
        res = cli(
            main,
            "experiment=ns2d_vicreg",
            "debug=smoke",
            f"data.dir={tmp_path}",
            f"run_dir={bad}",
            f"augment.fields={fields}",
        )
        assert res.returncode == 2 and why in res.stderr and res.stderr.strip().count("\n") == 0, res.stderr[-2000:]
        assert not bad.exists()  # refused before the run writes anything


def test_resume_continues_steps_and_wandb_run(cli, burgers_data, tmp_path):
    """ckpt_path=last restores the step count (and optimizer/scheduler) and reuses the W&B run id."""
    run = tmp_path / "run"
    assert cli(main, "debug=smoke", f"data.dir={burgers_data}", f"run_dir={run}").returncode == 0
    step0 = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    run_id = (run / "wandb_run_id.txt").read_text()
    res = cli(
        main, "debug=smoke", f"data.dir={burgers_data}", f"run_dir={run}", "ckpt_path=last", "trainer.max_epochs=4"
    )
    assert res.returncode == 0, res.stderr[-3000:]
    ck = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ck["global_step"] == 2 * step0 == 16 and ck["epoch"] >= 3
    assert "optimizer_states" in ck and "lr_schedulers" in ck
    runs = sorted(glob.glob(str(run / "wandb" / "offline-run-*")))
    assert len(runs) == 2 and all(r.endswith(run_id) for r in runs)
    steps = [int(r["step"]) for r in _metrics(run) if r["train/loss"]]
    assert max(steps) >= 2 * step0 - 1
    # one continuous metric table: the first run's rows are kept, none repeated
    assert steps == sorted(set(steps)) and min(steps) <= 1 and len(steps) >= 2 * step0 - 2
    epochs = sorted({int(float(r["epoch"])) for r in _metrics(run) if r.get("epoch")})
    assert epochs == [0, 1, 2, 3]


def test_resume_keeps_the_runs_precision(cli, burgers_data, tmp_path):
    """A run started in bf16 (trainer.precision given) and resumed without it keeps bf16 (config.yaml says so),
    where the trainer's default would be float32; setting trainer.precision on the resume changes it."""
    run = tmp_path / "run"
    args = ["debug=smoke", f"data.dir={burgers_data}", f"run_dir={run}", "logger=csv"]
    assert cli(main, *args, "trainer.precision=bf16-mixed").returncode == 0
    res = cli(main, *args, "ckpt_path=last", "trainer.max_epochs=3")
    assert res.returncode == 0, res.stderr[-3000:]
    assert OmegaConf.load(run / "config.yaml").trainer.precision == "bf16-mixed"
    assert "resuming with the run's own precision bf16-mixed" in (run / "pretrain.log").read_text()
    res = cli(main, *args, "ckpt_path=last", "trainer.max_epochs=4", "trainer.precision=32-true")
    assert res.returncode == 0, res.stderr[-3000:]
    assert OmegaConf.load(run / "config.yaml").trainer.precision == "32-true"


def test_killed_pretraining_resumes_with_its_whole_history(cli, burgers_data, tmp_path):
    """kill -9 once the first epoch's checkpoint exists, then ckpt_path=last: the run reaches its last epoch
    and metrics.csv holds every epoch once, steps strictly increasing (rows logged after the checkpoint by the
    killed process are replaced by the resumed run's)."""
    import os
    import signal
    import time

    run = tmp_path / "run"
    args = ["debug=smoke", f"data.dir={burgers_data}", f"run_dir={run}", "logger=csv", "trainer.max_epochs=6"]
    env = {
        "WANDB_MODE": "offline",
        "PATH": "/usr/bin:/bin",
        "HOME": str(Path.home()),
        "PYTHONPATH": str(REPO_ROOT),
    }
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 240
    while not (run / "checkpoints" / "last.ckpt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert killed and (run / "checkpoints" / "last.ckpt").exists()
    res = cli(main, *args, "ckpt_path=last")
    assert res.returncode == 0, res.stderr[-3000:]
    rows = _metrics(run)
    steps = [int(r["step"]) for r in rows if r["train/loss"]]
    assert steps == sorted(set(steps)) and steps[0] <= 1 and steps[-1] >= 4 * 6 - 2, steps
    epochs = sorted({int(float(r["epoch"])) for r in rows if r.get("epoch")})
    assert epochs == list(range(6)), epochs


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_loss_falls_when_overfitting_one_batch(cli, burgers_data, tmp_path, precision):
    """debug=overfit (one batch, fixed views, 40 steps): the VICReg loss falls well below its start, in float32
    and under the bf16 autocast that trainer=cpu picks on CPUs with native bfloat16 (both forced here, so both
    paths run on any machine)."""
    run = tmp_path / "run"
    over = [f"data.dir={burgers_data}", f"run_dir={run}", "logger=csv", f"trainer.precision={precision}"]
    res = cli(main, "debug=overfit", *over)
    assert res.returncode == 0, res.stderr[-3000:]
    losses = [float(r["train/loss"]) for r in _metrics(run) if r["train/loss"]]
    assert len(losses) == 40
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses


def test_nan_in_data_stops_with_a_clear_message(cli, burgers_data, tmp_path):
    """A NaN in one trajectory stops pretraining with one line naming the shard and the trajectory."""
    data = tmp_path / "data"
    shutil.copytree(burgers_data, data)
    with h5py.File(data / "burgers" / "train" / "shard-00000.h5", "r+") as f:
        u = f["u"][...]
        u[3, 2, 0, 5] = np.nan
        f["u"][...] = u
    res = cli(main, "debug=smoke", f"data.dir={data}", f"run_dir={tmp_path / 'run'}", "logger=csv")
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "shard-00000.h5: non-finite values in /u of trajectory 3" in last, last


def test_diverging_loss_stops_with_a_clear_message(cli, burgers_data, tmp_path):
    res = cli(
        main, "debug=smoke", f"data.dir={burgers_data}", f"run_dir={tmp_path / 'run'}", "logger=csv", "optim.lr=1e30"
    )
    assert res.returncode == 2
    assert "non-finite VICReg loss at step" in res.stderr.strip().splitlines()[-1]


def test_refused_runs_leave_nothing_behind(cli, burgers_data, tmp_path):
    """Missing data, a missing checkpoint, a run_dir that is a file: one line, exit 2, no run directory, no
    log, no W&B run, nothing printed before the error."""
    res = cli(main, "debug=smoke", f"data.dir={tmp_path / 'nothing'}", f"run_dir={tmp_path / 'run'}")
    assert res.returncode == 2 and res.stderr.strip().startswith(f"error: no shards under '{tmp_path / 'nothing'}")
    assert res.stderr.strip().count("\n") == 0
    assert not (tmp_path / "run").exists() and not res.stdout.strip()
    res = cli(main, "debug=smoke", f"data.dir={burgers_data}", f"run_dir={tmp_path / 'run2'}", "ckpt_path=last")
    assert res.returncode == 2 and "last.ckpt" in res.stderr and res.stderr.strip().count("\n") == 0
    assert not (tmp_path / "run2").exists()
    afile = tmp_path / "afile"
    afile.write_text("x")
    for run_dir, why in ((afile, "is a file, not a directory"), (afile / "sub", "which is a file")):
        res = cli(main, "debug=smoke", f"data.dir={burgers_data}", f"run_dir={run_dir}")
        assert res.returncode == 2 and why in res.stderr and res.stderr.strip().count("\n") == 0, res.stderr
    assert afile.read_text() == "x"
    # a checkpoint from outside the run directory is never unpickled: this one would create a file on load
    marker = tmp_path / "pwned"
    evil = tmp_path / "shared.ckpt"
    evil.write_bytes(pickle.dumps(_Touch(marker)))
    res = cli(main, "debug=smoke", f"data.dir={tmp_path}", f"run_dir={tmp_path / 'run3'}", f"ckpt_path={evil}")
    assert res.returncode == 2 and "only this run's own checkpoints" in res.stderr and not marker.exists()


class _Touch:
    """Unpickling it creates ``path`` (a stand-in for any code a pickle can run)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@pytest.mark.parametrize(
    "overlay",
    sorted(
        [f"experiment={p.stem}" for p in (CONFIG_DIR / "experiment").glob("*.yaml")]
        + [f"debug={p.stem}" for p in (CONFIG_DIR / "debug").glob("*.yaml")]
        + [f"scale={p.stem}" for p in (CONFIG_DIR / "scale").glob("*.yaml")]
        + ["trainer=ddp", "trainer=gpu", "augment.mode=resample", "encoder.stem=half", "encoder.stem=fine"]
    ),
)
def test_every_config_composes_and_instantiates(overlay, tmp_path):
    """Each experiment/debug overlay composes in struct mode and builds its data module, views, encoder and
    module (without fitting); the encoder accepts the views' channels."""
    cfg = compose_cfg("pretrain", [overlay, f"run_dir={tmp_path}"])
    dm = hydra.utils.instantiate(cfg.data)
    views = hydra.utils.instantiate(cfg.augment)
    enc = hydra.utils.instantiate(cfg.encoder)
    model = hydra.utils.instantiate(cfg.method, encoder=enc, views=views, optimizer=hydra.utils.instantiate(cfg.optim))
    assert dm.dataset == cfg.data.dataset and model.hparams.probe_param == cfg.pde.probe_param
    out = enc(torch.zeros(2, views.channels, 16, 32))
    assert out.shape == (2, cfg.method.projector.in_dim)
    assert hydra.utils.get_class(cfg.trainer._target_).__name__ == "Trainer"


def test_encoder_stems_set_the_first_stage_resolution():
    """The image stem quarters a (T, X) crop before the first stage, ``half`` halves it, ``fine`` keeps it (read
    from the first stage's output); an unknown stem is refused with one line naming it."""
    from ssl_pde.core.errors import UserError
    from ssl_pde.models.encoders import ResNet18

    x = torch.zeros(2, 3, 32, 64)
    for stem, div in (("imagenet", 4), ("half", 2), ("fine", 1)):
        enc = ResNet18(3, (8, 16, 32, 64), stem=stem)
        assert enc.layers[0](enc.stem(x)).shape == (2, 8, 32 // div, 64 // div)
        assert enc(x).shape == (2, 64)
    with pytest.raises(UserError, match="encoder stem must be one of imagenet, fine, half, got 'big'"):
        ResNet18(3, (8, 16, 32, 64), stem="big")


def test_slurm_launcher_config_composes(tmp_path):
    """The SLURM launcher overlay (hydra-submitit-launcher) composes with DDP over two nodes."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "pretrain",
            overrides=["hydra/launcher=slurm", "trainer=ddp", "trainer.num_nodes=2", f"run_dir={tmp_path}"],
            return_hydra_config=True,
        )
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert cfg.hydra.launcher.nodes == 2 and cfg.trainer.strategy == "ddp" and cfg.trainer.sync_batchnorm
