"""ssl-pde-generate end to end: determinism, resume after a kill, rejection counting and bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from omegaconf import open_dict

from data_gen.cli.generate import batch_size_for, generate, main
from data_gen.writer import trajectory_seed
from ssl_pde.core.errors import UserError
from ssl_pde.data.schema import list_shards, validate_shard
from tests.conftest import TINY, compose_cfg, generate_cfg, tiny_overrides

CLI = [sys.executable, "-m", "data_gen.cli.generate"]


def _read_u(directory: Path) -> list[np.ndarray]:
    out = []
    for p in list_shards(directory):
        with h5py.File(p) as f:
            out.append(f["u"][...])
    return out


def test_rerun_is_bit_identical_and_skips_done_shards(tmp_path):
    """Same settings -> bit-identical shards; a rerun in place rewrites nothing."""
    generate(generate_cfg("ks", tmp_path / "a"))
    generate(generate_cfg("ks", tmp_path / "b"))
    a, b = _read_u(tmp_path / "a" / "ks" / "train"), _read_u(tmp_path / "b" / "ks" / "train")
    assert len(a) == 2 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    first = list_shards(tmp_path / "a")[0]
    stamp = first.stat().st_mtime_ns
    generate(generate_cfg("ks", tmp_path / "a"))
    assert first.stat().st_mtime_ns == stamp


def test_seeds_are_keyed_by_split_and_shard(tmp_path):
    """Per-trajectory seeds depend on (base seed, split, shard, index) and never collide across splits."""
    s = {(sp, sh, i): trajectory_seed(0, sp, sh, i) for sp in ("train", "valid") for sh in (0, 1) for i in range(50)}
    assert len(set(s.values())) == len(s)
    assert trajectory_seed(0, "train", 0, 0) != trajectory_seed(1, "train", 0, 0)
    generate(generate_cfg("kdv", tmp_path, num_samples=4))
    with h5py.File(list_shards(tmp_path)[0]) as f:
        assert list(f["seed"][...]) == [trajectory_seed(0, "train", 0, i) for i in range(4)]


def test_resume_after_kill(tmp_path):
    """SIGKILL mid-run leaves only complete shards (plus a temporary file); rerunning finishes the rest and
    the result equals an uninterrupted run."""
    args = [
        *tiny_overrides("ks", t_end=40.0, nt_total=161),
        "num_samples=12",
        "shard_size=2",
        "batch_size=2",
        "device=cpu",
        "progress=false",
    ]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*CLI, *args, f"out_dir={killed}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    split = killed / "ks" / "train"
    deadline = time.time() + 120
    while time.time() < deadline and not (split / "shard-00001.h5").exists():
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = list_shards(split)
    assert 2 <= len(done) < 6, "the run should have been killed part-way"
    for p in done:
        validate_shard(p)  # every file with a final name is complete
    stamps = {p: p.stat().st_mtime_ns for p in done}
    res = subprocess.run([*CLI, *args, f"out_dir={killed}"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert len(list_shards(split)) == 6 and not list(split.glob("*.tmp*")) and not list(split.glob("*.lock"))
    assert all(p.stat().st_mtime_ns == s for p, s in stamps.items()), "finished shards were rewritten"
    clean = tmp_path / "clean"
    subprocess.run([*CLI, *args, f"out_dir={clean}"], check=True, capture_output=True)
    for x, y in zip(_read_u(split), _read_u(clean / "ks" / "train"), strict=True):
        assert np.array_equal(x, y)


def _shard_data(directory: Path) -> list[dict[str, np.ndarray]]:
    """Every dataset of every shard (attributes such as the creation time left out)."""
    out = []
    for p in list_shards(directory):
        with h5py.File(p) as f:
            out.append({k: f[k][...] for k in ("u", "t", "x", "seed", "params/domain_length", "diagnostics/max_abs")})
    return out


@pytest.mark.parametrize("mode", ["2 workers", "4 workers", "2 identical runs"])
def test_concurrent_processes_write_what_one_process_writes(tmp_path, mode):
    """Several processes into one directory at once (``worker=i num_workers=n``, or the same command twice): no
    crash, every shard written once, no temporary or lock file left, data identical to one process's."""
    args = [*tiny_overrides("ks"), "num_samples=8", "shard_size=2", "batch_size=2", "device=cpu", "progress=false"]
    one = tmp_path / "one"
    generate(compose_cfg("generate", [*args, f"out_dir={one}"]))
    many = tmp_path / "many"
    n = {"2 workers": 2, "4 workers": 4, "2 identical runs": 2}[mode]
    extra = [[f"worker={i}", f"num_workers={n}"] if "workers" in mode else [] for i in range(n)]
    # one thread each: several processes spinning OpenMP threads on the same 2 cores run 20x slower than one
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([*CLI, *args, *e, f"out_dir={many}"], stderr=subprocess.PIPE, text=True, env=env)
        for e in extra
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    split = many / "ks" / "train"
    assert sorted(p.name for p in split.iterdir()) == [f"shard-0000{i}.h5" for i in range(4)]
    a, b = _shard_data(one), _shard_data(many)
    assert len(a) == len(b) == 4
    for x, y in zip(a, b, strict=True):
        assert all(np.array_equal(x[k], y[k]) for k in x)


def test_a_worker_leaves_other_shards_work_in_progress_alone(tmp_path):
    """A run removes stale temporaries only of shards it has claimed: worker 0 of 2 deletes shard 0's leftover
    and never touches shard 1's (worker 1's work in progress); a claim held elsewhere makes a run wait."""
    from data_gen.claims import try_claim

    split = tmp_path / "ks" / "train"
    split.mkdir(parents=True)
    stale = split / "shard-00000.h5.tmp.otherhost.123"
    busy = split / "shard-00001.h5.tmp.otherhost.456"
    stale.write_text("left by a killed run")
    busy.write_text("being written")
    cfg = generate_cfg("ks", tmp_path, num_samples=4, shard_size=2)
    with open_dict(cfg):
        cfg.worker, cfg.num_workers = 0, 2
    generate(cfg)
    assert not stale.exists() and busy.read_text() == "being written"
    assert [p.name for p in list_shards(split)] == ["shard-00000.h5"]
    held = try_claim(split / "shard-00001.h5")
    assert held is not None and try_claim(split / "shard-00001.h5") is None  # one holder at a time
    held.release()
    again = try_claim(split / "shard-00001.h5")
    assert again is not None and not (split / "shard-00000.h5.lock").exists()
    again.release()
    assert not (split / "shard-00001.h5.lock").exists()


def test_rejected_trajectories_are_replaced_and_counted(tmp_path):
    """Under-resolved trajectories are never stored: they are replaced from the seed stream and counted."""
    cfg = generate_cfg(
        "burgers",
        tmp_path,
        num_samples=8,
        shard_size=8,
        nu_min=0.01,
        nu_max=0.5,
        solver_nx=128,
        nx=32,
        t_end=1.0,
        max_spectral_tail=1e-6,
        dt_max=0.004,
    )
    cfg.max_reject_fraction = 0.9
    generate(cfg)
    s = validate_shard(list_shards(tmp_path)[0])
    assert s.n == 8 and s.n_rejected > 0
    assert s.diagnostics["spectral_tail"].max() <= 1e-6
    assert "under-resolved" in s.attrs["rejection_reasons"]


def _run_bad(cli, tmp_path: Path, *args: str):
    return cli(main, f"out_dir={tmp_path / 'out'}", "num_samples=2", "progress=false", *args)


BAD = [
    (["pde=navier"], "unknown pde 'navier'"),
    (["pde=burgers", "solver.nu_min=-0.01"], "nu_min must be positive"),
    (["pde=burgers", "solver.nu_max=0"], "nu_max must be positive"),
    (["pde=ks", "solver.nx=0"], "nx must be a positive integer, got 0"),
    (["pde=kdv", "solver.nx=-8"], "nx must be a positive integer, got -8"),
    (["pde=kdv", "num_samples=-3"], "num_samples must be a positive integer, got -3"),
    (["pde=ks", "split=training"], "unknown split 'training'"),
    (["pde=ks", "device=tpu"], "device 'tpu'"),
    (["pde=ks", "nonexistent_key=1"], "nonexistent_key"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_exits_2_with_one_line(cli, tmp_path, args, message):
    """Bad values: one line on stderr naming the value, exit status 2, nothing written."""
    res = _run_bad(cli, tmp_path, *args)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr
    if not args[-1].startswith("nonexistent"):  # Hydra's own override errors add a hint line
        assert res.stderr.count("\n") == 1, res.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("pde", "solver", "message"),
    [
        ("kdv", {"t_end": 20.0, "nt_total": 11, "dt_max": 2.0}, "time step too large"),
        ("burgers", {"t_end": 5.0, "nt_total": 11, "dt_max": 0.5}, "time step too large"),
        ("burgers", {"nu_min": 1e-4, "nu_max": 2e-4, "solver_nx": 64, "nx": 32, "t_end": 2.0}, "under-resolved"),
    ],
)
def test_unstable_or_under_resolved_settings_fail_cleanly(cli, tmp_path, pde, solver, message):
    """Settings that cannot give valid data end with exit 2, the reason, and no files or directories left."""
    args = tiny_overrides(pde, **solver)
    res = _run_bad(cli, tmp_path, *args)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and res.stderr.startswith("error:") and res.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("sub, message", [("", "is a file, not a directory"), ("/sub", "which is a file")])
def test_out_dir_that_is_a_file(cli, tmp_path, sub, message):
    """An output directory that is a file, or lies under one, is refused before any work, and said so."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    res = cli(main, *tiny_overrides("ks"), f"out_dir={blocker}{sub}", "num_samples=2")
    assert res.returncode == 2 and message in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert blocker.read_text() == "not a directory"


def test_refuses_to_mix_settings(cli, tmp_path):
    """Resuming into a directory made with other settings is refused unless overwrite=true."""
    generate(generate_cfg("ks", tmp_path, num_samples=2))
    args = [*tiny_overrides("ks", length=24.0), f"out_dir={tmp_path}", "num_samples=2", "progress=false"]
    res = cli(main, *args)
    assert res.returncode == 2 and "other settings" in res.stderr
    res = cli(main, *args, "overwrite=true")
    assert res.returncode == 0, res.stderr
    assert validate_shard(list_shards(tmp_path)[0]).params["domain_length"].max() > 22 * 1.1


def test_tiny_settings_cover_all_pdes():
    assert set(TINY) == {"burgers", "kdv", "ks"}


def test_workers_as_a_sweep_and_as_a_slurm_array(tmp_path):
    """``-m worker=0,1 num_workers=2`` (Hydra's local launcher here; ``hydra/launcher=slurm_generate`` makes it a
    SLURM job array) writes every shard; the SLURM launcher config composes with one job per worker."""
    args = [*tiny_overrides("ks"), "num_samples=8", "shard_size=2", "batch_size=2", "device=cpu", "progress=false"]
    res = subprocess.run([*CLI, "-m", *args, f"out_dir={tmp_path}", "worker=0,1", "num_workers=2"], capture_output=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(list_shards(tmp_path / "ks" / "train")) == 4
    cfg = compose_cfg("generate", ["hydra/launcher=slurm_generate", "worker=3", "num_workers=16"], hydra=True)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher") and cfg.hydra.launcher.gpus_per_node == 0
    assert cfg.hydra.sweep.subdir == "worker3"


def test_batch_size_per_device_type():
    """ns2d's default solves one trajectory at a time on a CPU and 16 on a GPU (configs/pde/ns2d.yaml); an integer
    applies to every device; a mapping without the device's type, or with a bad entry, is refused naming it."""
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    ns = compose_cfg("generate", ["pde=ns2d"])
    assert batch_size_for(ns.batch_size, cpu) == 1 and batch_size_for(ns.batch_size, cuda) == 16
    fixed = compose_cfg("generate", ["pde=ns2d", "batch_size=4"])
    assert batch_size_for(fixed.batch_size, cpu) == 4 and batch_size_for(fixed.batch_size, cuda) == 4
    assert batch_size_for(compose_cfg("generate", ["pde=burgers"]).batch_size, cpu) == 512
    with pytest.raises(UserError, match=r"no entry for device type 'cuda' \(it has: cpu\); set pde\.batch_size\.cuda"):
        batch_size_for({"cpu": 1}, cuda)
    with pytest.raises(UserError, match="unknown device types \\['gpu'\\]"):
        batch_size_for({"cpu": 1, "gpu": 16}, cpu)  # a misspelt key is refused on every device, not only on a GPU
    on_cpu = compose_cfg("generate", ["pde=ns2d", "pde.batch_size.cpu=2"])  # one entry changed on the command line
    assert batch_size_for(on_cpu.batch_size, cpu) == 2 and batch_size_for(on_cpu.batch_size, cuda) == 16
    with pytest.raises(UserError, match=r"batch_size\.cpu must be a positive integer, got 0"):
        batch_size_for({"cpu": 0}, cpu)
    with pytest.raises(UserError, match="batch_size must be a positive integer, got 'abc'"):
        batch_size_for("abc", cpu)
