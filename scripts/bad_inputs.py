"""Every command line fed bad input, as a user would: exit status, message, and what it left on disk.

    python scripts/bad_inputs.py --out docs/reliability/bad_inputs.md

Each case runs the real console command (a subprocess) in a scratch directory holding valid tiny data, a real
encoder export and a few broken files. A case passes when the command exits with status 2, prints exactly one
line ``error: ...`` on stderr containing the expected words, and leaves the scratch directory as it was (no new
file or directory, every input unchanged). Writes a Markdown table and a JSON record; exits 1 if a case fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

MODULES = {
    "generate": "data_gen.cli.generate",
    "verify": "data_gen.cli.verify",
    "inspect": "ssl_pde.cli.inspect",
    "pretrain": "ssl_pde.cli.pretrain",
    "eval": "ssl_pde.cli.eval",
    "demo": "ssl_pde.cli.demo",
    "import": "data_gen.cli.import_data",
    "export": "data_gen.cli.export_data",
}
# Tiny Burgers data: seconds to make, enough for the commands to get past their checks.
BURGERS = (
    "pde=burgers solver.nx=64 solver.nt=16 solver.nt_total=16 solver.t_end=0.5 solver.solver_nx=128 "
    "solver.dt_max=0.005 solver.nu_min=0.05 solver.nu_max=0.5 device=cpu progress=false"
).split()


@dataclass
class Case:
    command: str
    args: list[str]
    expect: str  # words the error line must contain
    what: str  # the bad input, in words


def cases(w: Path) -> list[Case]:
    """The bad inputs, with paths inside the scratch directory ``w``."""
    data, enc, gen = w / "data", w / "pre" / "encoder.pt", [*BURGERS, "num_samples=4"]
    ev = [f"data.dir={data}", f"out_dir={w / 'ev'}"]
    pre = ["debug=smoke", "logger=csv", f"data.dir={data}", f"run_dir={w / 'run'}"]
    return [
        Case("generate", [*gen, "pde=heat"], "heat", "a PDE with no config"),
        Case("generate", [*gen, "split=testing", f"out_dir={w / 'g'}"], "unknown split 'testing'", "unknown split"),
        Case("generate", [*gen, "num_samples=0", f"out_dir={w / 'g'}"], "num_samples must be a positive", "zero"),
        Case("generate", [*gen, "shard_size=-4", f"out_dir={w / 'g'}"], "shard_size must be a positive", "negative"),
        Case("generate", [*gen, "batch_size=abc", f"out_dir={w / 'g'}"], "batch_size must be a positive", "a word"),
        Case(
            "generate",
            [*gen, "batch_size={cuda:16}", "device=cpu", f"out_dir={w / 'g'}"],
            "no entry for device type 'cpu'",
            "per-device batch without the device",
        ),
        Case("generate", [*gen, "seed=-1", f"out_dir={w / 'g'}"], "seed must be a non-negative", "negative seed"),
        Case("generate", [*gen, "device=tpu", f"out_dir={w / 'g'}"], "unknown device 'tpu'", "unknown device"),
        Case("generate", [*gen, f"out_dir={w / 'afile'}"], "is a file, not a directory", "out_dir is a file"),
        Case("generate", [*gen, f"out_dir={w / 'afile' / 'sub'}"], "which is a file", "out_dir under a file"),
        Case("generate", [*gen, "num_sample=3"], "did you mean num_samples", "misspelt key"),
        Case("generate", [*gen, "worker=2", "num_workers=2", f"out_dir={w / 'g'}"], "worker must be", "worker range"),
        Case("generate", [*gen, "max_reject_fraction=1.5", f"out_dir={w / 'g'}"], "max_reject_fraction", "> 1"),
        Case(
            "generate",
            [*gen, "solver.t_end=5.0", "solver.nt=8", "solver.nt_total=11", "solver.dt_max=0.5", f"out_dir={w / 'g'}"],
            "time step too large",
            "an unstable time step",
        ),
        Case("generate", [*gen, "solver.nx=0", f"out_dir={w / 'g'}"], "solver:", "zero grid points"),
        Case(
            "generate",
            ["pde=ns2d", "num_samples=2", "solver.compile=yes", f"out_dir={w / 'g'}"],
            "compile must be true, false or auto",
            "ns2d compile not a choice",
        ),
        Case(
            "generate",
            ["pde=ns2d", "num_samples=2", "solver.advection_dtype=float16", f"out_dir={w / 'g'}"],
            "advection_dtype must be float32 or float64",
            "ns2d precision not a choice",
        ),
        Case("generate", [*gen, "pde=kdv,ks"], "Ambiguous value", "a sweep without -m"),
        Case(
            "generate",
            [*BURGERS, "num_samples=4", "solver.nu_max=0.4", f"out_dir={data}", "split=train"],
            "made with other settings",
            "other settings into existing data",
        ),
        Case("inspect", [str(w / "missing")], "does not exist", "a missing path"),
        Case("inspect", [str(w / "empty")], "no shard-*.h5 files", "an empty directory"),
        Case("inspect", [str(w / "broken" / "text" / "shard-00000.h5")], "not a readable HDF5", "a text file"),
        Case("inspect", [str(w / "broken" / "nan")], "trajectory 1: 1 non-finite values in /u", "a NaN"),
        Case("inspect", [str(w / "broken" / "big")], "exceeds its stored max_abs", "a value beyond max_abs"),
        Case("inspect", [str(w / "broken" / "trunc" / "shard-00000.h5")], "not a readable HDF5", "truncated"),
        Case("pretrain", [*pre, f"data.dir={w / 'empty'}"], "no shards under", "no data"),
        Case("pretrain", [*pre, "ckpt_path=last"], "last.ckpt", "resume with no checkpoint"),
        Case("pretrain", [*pre, f"ckpt_path={w / 'evil.pt'}"], "only this run's own checkpoints", "foreign ckpt"),
        Case("pretrain", [*pre, "augment.strengths.scaling=-1"], "strength of scaling must be >= 0", "negative"),
        Case("pretrain", [*pre, "augment.crop_x=4096"], "larger than the data", "crop larger than the data"),
        Case("pretrain", [*pre, f"run_dir={w / 'afile'}"], "is a file, not a directory", "run_dir is a file"),
        Case("pretrain", [*pre, "trainer.max_epochz=3"], "did you mean trainer.max_epochs", "misspelt key"),
        Case("pretrain", [*pre, "experiment=nope"], "unknown experiment 'nope'", "unknown experiment"),
        Case("pretrain", [*pre, "seed=[1"], "bad override", "malformed override"),
        Case("pretrain", [*pre, "encoder.stem=big"], "encoder stem must be one of", "unknown encoder stem"),
        Case("pretrain", [*pre, "method.corrupt.drop_x=1.5"], "drop_x", "corruption level out of range"),
        Case("eval", ev, "ckpt is required", "no ckpt"),
        Case("eval", [*ev, f"ckpt={w / 'missing.pt'}"], "not found", "a missing ckpt"),
        Case("eval", [*ev, f"ckpt={w / 'text.pt'}"], "text.pt", "a text file as ckpt"),
        Case("eval", [*ev, f"ckpt={w / 'empty.pt'}"], "empty.pt", "an empty file as ckpt"),
        Case("eval", [*ev, f"ckpt={w / 'evil.pt'}"], "evil.pt", "a pickle that writes a file when loaded"),
        Case("eval", [*ev, f"ckpt={w / 'evilcfg.pt'}"], "builtins.open", "a stored config naming builtins.open"),
        Case("eval", [*ev, f"ckpt={enc}", "regression.n_labels=999"], "n_labels=999", "more labels than data"),
        Case("eval", [*ev, f"ckpt={enc}", "task=forecast"], "unknown task 'forecast'", "unknown task"),
        Case("eval", [*ev, f"ckpt={enc}", f"out_dir={w / 'afile'}"], "is a file, not a directory", "out_dir file"),
        Case("eval", [*ev, f"ckpt={enc}", "task=timestep", "timestep.arch=lstm"], "unknown timestep.arch", "arch"),
        Case("eval", [*ev, f"ckpt={enc}", "regression.n_lables=3"], "did you mean regression.n_labels", "misspelt"),
        Case("eval", [*ev, f"ckpt={enc}", f"data.dir={w / 'empty'}"], "no shards under", "no data"),
        Case("eval", [*ev, f"ckpt={enc}", "corrupt.noise=-1"], "noise", "negative noise level"),
        Case("eval", [*ev, f"ckpt={enc}", "transfer.extrapolate=1.5"], "extrapolate", "extrapolation quantile > 1"),
        Case("eval", [*ev, f"ckpt={enc}", "transfer.resolution=0"], "resolution", "zero resolution factor"),
        Case("eval", [*ev, f"ckpt={enc}", "eval_crops=[999,1]"], "eval_crops", "more evaluation crops than origins"),
        Case("eval", [*ev, f"ckpt={enc}", "eval_crops=[2]"], "eval_crops", "evaluation crop grid of one axis"),
        Case("eval", [*ev, f"ckpt={enc}", "regression.finetune.head_init=lp"], "head_init", "unknown head_init"),
        Case("eval", [*ev, f"ckpt={enc}", "regression.finetune.backbone_lr_mult=0"], "backbone_lr_mult", "lr mult 0"),
        Case("eval", [*ev, f"ckpt={enc}", "task=pde_id"], "single-PDE export", "PDE identification of one PDE"),
        Case(
            "eval",
            [*ev, f"ckpt={enc}", f"regression.baseline_cache={w / 'afile'}"],
            "regression.baseline_cache",
            "baseline cache is a file",
        ),
        Case("verify", ["pde=ns3d"], "unknown pde 'ns3d'", "unknown PDE"),
        Case("import", [f"src={data}", f"out_dir={w / 'im'}"], "format", "no format"),
        Case("import", ["format=zarr", f"src={data}", f"out_dir={w / 'im'}"], "zarr", "unknown format"),
        Case("import", ["format=lpsda", f"src={w / 'missing'}", f"out_dir={w / 'im'}"], "missing", "missing source"),
        Case("import", ["format=lpsda", f"src={w / 'empty'}", f"out_dir={w / 'im'}"], "empty", "no source files"),
        Case(
            "import",
            ["format=lpsda", f"src={w / 'broken' / 'text'}", f"out_dir={w / 'im'}"],
            "shard-00000.h5",
            "a text file as the source",
        ),
        Case("import", ["format=pdearena", f"src={data}", f"out_dir={w / 'afile'}"], "is a file", "out_dir is a file"),
        Case("export", ["format=well", f"src={w / 'empty'}", f"out_dir={w / 'ex'}"], "no shard", "no shards"),
        Case("export", ["format=netcdf", f"src={data}", f"out_dir={w / 'ex'}"], "netcdf", "unknown format"),
        Case("export", ["format=well", f"src={data}", f"out_dir={w / 'afile'}"], "is a file", "out_dir is a file"),
        Case("demo", [f"out_dir={w / 'afile'}"], "is a file", "out_dir is a file"),
    ]


class Evil:
    """Unpickling this writes a file: what a malicious checkpoint would do."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def prepare(w: Path) -> None:
    """Valid tiny data and an encoder export (the real commands), and broken files beside them."""
    env = _env()
    for split, n in (("train", 16), ("valid", 8), ("test", 8)):
        _check(MODULES["generate"], [*BURGERS, f"split={split}", f"num_samples={n}", f"out_dir={w / 'data'}"], env)
    pre = ["debug=smoke", "logger=csv", f"data.dir={w / 'data'}", f"run_dir={w / 'pre'}"]
    _check(MODULES["pretrain"], pre, env)
    (w / "empty").mkdir()
    (w / "afile").write_text("a file, not a directory\n")
    (w / "text.pt").write_text("not a checkpoint\n")
    (w / "empty.pt").write_bytes(b"")
    import torch

    torch.save({"state_dict": Evil(w / "pwned.txt")}, w / "evil.pt")
    blob = torch.load(w / "pre" / "encoder.pt", weights_only=True)
    blob["encoder"] = {"_target_": "builtins.open", "file": str(w / "pwned2.txt"), "mode": "w"}
    torch.save(blob, w / "evilcfg.pt")
    shard = w / "data" / "burgers" / "train" / "shard-00000.h5"
    for name in ("text", "nan", "big", "trunc"):
        (w / "broken" / name).mkdir(parents=True)
    (w / "broken" / "text" / "shard-00000.h5").write_text("not HDF5\n")
    for name, edit in (("nan", lambda u: np.nan), ("big", lambda u: 1e3 * float(np.abs(u).max()))):
        dst = w / "broken" / name / "shard-00000.h5"
        shutil.copy(shard, dst)
        with h5py.File(dst, "r+") as f:
            u = f["u"][1]
            u[2, 0, 5] = edit(u)
            f["u"][1] = u
    raw = shard.read_bytes()
    (w / "broken" / "trunc" / "shard-00000.h5").write_bytes(raw[: len(raw) // 2])


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": root, "OMP_NUM_THREADS": "1"}


def _check(module: str, args: list[str], env: dict[str, str]) -> None:
    res = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(f"setup failed: {module} {' '.join(args)}\n{res.stderr[-3000:]}")


def snapshot(w: Path) -> dict[str, str]:
    """Path -> content hash of every file (directories as "dir") under ``w``."""
    out = {}
    for p in sorted(w.rglob("*")):
        if "__pycache__" in p.parts:
            continue
        out[str(p.relative_to(w))] = "dir" if p.is_dir() else hashlib.sha1(p.read_bytes()).hexdigest()
    return out


def run_case(case: Case, w: Path) -> dict:
    before = snapshot(w)
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", MODULES[case.command], *case.args], capture_output=True, text=True, env=_env(), cwd=w
    )
    after = snapshot(w)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    added = sorted(set(after) - set(before))
    changed = sorted(k for k in before if k in after and before[k] != after[k])
    removed = sorted(set(before) - set(after))
    one_line = len(lines) == 1 and lines[0].startswith("error: ")
    ok = res.returncode == 2 and one_line and case.expect in lines[0] and not (added or changed or removed)
    message = lines[-1] if lines else ""
    return {
        "command": f"ssl-pde-{case.command}",
        "what": case.what,
        "args": case.args,
        "exit": res.returncode,
        "stderr_lines": len(lines),
        "message": message.replace(str(w), "$W"),
        "left_behind": added,
        "changed": changed + removed,
        "ok": ok,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def table(rows: list[dict]) -> str:
    head = [
        "| # | command | bad input | exit | stderr lines | message | disk after |",
        "|---|---|---|---|---|---|---|",
    ]
    body = []
    for i, r in enumerate(rows, 1):
        disk = (
            "unchanged" if not (r["left_behind"] or r["changed"]) else f"new {r['left_behind']}, changed {r['changed']}"
        )
        msg = r["message"].replace("|", "\\|")
        body.append(f"| {i} | `{r['command']}` | {r['what']} | {r['exit']} | {r['stderr_lines']} | {msg} | {disk} |")
    return "\n".join(head + body) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="Markdown table (and .json beside it)")
    ap.add_argument("--only", default=None, help="run only the cases of this command (e.g. eval)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ssl_pde_bad_inputs_") as tmp:
        w = Path(tmp)
        prepare(w)
        rows = []
        for case in cases(w):
            if args.only and case.command != args.only:
                continue
            r = run_case(case, w)
            rows.append(r)
            print(
                f"{'ok  ' if r['ok'] else 'FAIL'} {r['command']:17s} {r['what']:40s} exit {r['exit']}: {r['message']}"
            )
            for marker in ("pwned.txt", "pwned2.txt"):
                if (w / marker).exists():
                    rows[-1]["ok"] = False
                    print(f"FAIL: loading wrote {marker}")
    n_ok = sum(r["ok"] for r in rows)
    text = f"{n_ok} of {len(rows)} bad inputs handled: exit 2, one `error:` line, nothing written or changed.\n\n"
    text += table(rows)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print(text.splitlines()[0])
    return 0 if n_ok == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
