"""Shared helpers of the benchmark scripts: timing, machine information, ceilings, reports.

The scripts run as ``python scripts/<name>.py`` (``scripts/`` is ``sys.path[0]``) and import this module as
``benchlib``; a test that loads a script by path gets the same through the script's own ``sys.path`` line.

* timing: :func:`sync`, :func:`timed`, :func:`timed_best` (synchronised on CUDA, best of ``repeat``);
* the machine: :func:`usable_cores`, :func:`load_average`, :func:`machine_info`;
* ceilings measured in this process with its current thread count: :func:`ceilings` (large-matmul FLOP/s per
  dtype, streaming-triad bytes/s), :func:`count_flops` (torch's own count of a model step) and :func:`fraction`;
* reports: :func:`fmt`, :func:`ratio`, :func:`error_record`, :func:`ceilings_line`, :func:`rerun_section`,
  :func:`utc_now`, :func:`write_report`;
* command line (data-generation benchmarks): :func:`add_common_args`, :func:`check_common_args`;
* :func:`time_limit` raises :class:`RefTimeout` in a block that runs too long.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import os
import platform
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

#: Largest square matmul of :func:`ceilings` per device type (CPU sizes shrink to fit the time budget).
MATMUL_N = {"cpu": 2048, "cuda": 8192}
#: Elements of each float32 triad array per device type: 64 MiB on the CPU, 256 MiB on CUDA (beyond any L2).
TRIAD_ELEMENTS = {"cpu": 16 * 2**20, "cuda": 64 * 2**20}


# ---------------------------------------------------------------------------------------------- timing
def sync(device: str | torch.device) -> None:
    """Wait for queued GPU work (no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: str | torch.device) -> tuple[Any, float]:
    """Run ``fn`` and return its result and wall-clock seconds, synchronising the device around it."""
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - t0


def timed_best(
    fn: Callable[[], Any], device: str | torch.device, repeat: int, warmup: int = 0
) -> tuple[Any, float, list[float]]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeat`` times: the last result, the fastest seconds, all."""
    for _ in range(warmup):
        fn()
    out, times = None, []
    for _ in range(max(1, repeat)):
        out, sec = timed(fn, device)
        times.append(sec)
    return out, min(times), times


class RefTimeout(RuntimeError):
    """A block run under :func:`time_limit` ran past its limit."""


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`RefTimeout` in the block after ``seconds`` (POSIX main thread only; else no limit)."""
    usable = (
        seconds is not None
        and seconds > 0
        and hasattr(signal, "SIGALRM")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def _raise(_signum: int, _frame: object) -> None:
        raise RefTimeout(f"timed out after {seconds:g} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------------------------------------- machine
def usable_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (None where unsupported): other work skews the timings."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info(device: str | torch.device) -> dict[str, Any]:
    """Platform, CPU, library versions and accelerator of this run."""
    import numpy as np
    import scipy

    from data_gen.writer import generator_version

    cpu_name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_name = line.split(":", 1)[1].strip()
                break
    dev = torch.device(device)
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_name,
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "load_average_start": load_average(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name,
        "cuda": torch.version.cuda if dev.type == "cuda" else None,
        "generator_version": generator_version(),
    }


# ---------------------------------------------------------------------------------------------- ceilings
def _matmul(device: torch.device, dtype: torch.dtype, budget: float) -> dict[str, Any]:
    """Best FLOP/s of an n x n matmul (2 n^3 flops); on the CPU n shrinks until a rep takes <= budget / 3."""
    n = MATMUL_N.get(device.type, MATMUL_N["cpu"])
    if device.type == "cpu":  # a 512 probe sets n: bfloat16 without native support is ~5x slower than float32
        a = torch.randn(512, 512, device=device).to(dtype)
        a @ a
        _, sec = timed(lambda: a @ a, device)
        while n > 512 and sec * (n / 512) ** 3 > budget / 3:
            n //= 2
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    _, sec, times = timed_best(lambda: a @ b, device, repeat=1, warmup=1)
    t0 = time.perf_counter()
    while len(times) < 5 and (len(times) < 2 or time.perf_counter() - t0 < budget):
        times.append(timed(lambda: a @ b, device)[1])
    best = min(times)
    return {"n": n, "reps": len(times), "best_s": best, "flops_per_s": 2 * n**3 / best}


def _triad(device: torch.device, budget: float) -> dict[str, Any]:
    """Best bytes/s of ``a = b + s * c`` on float32 arrays (3 arrays x 4 bytes per element moved)."""
    n = TRIAD_ELEMENTS.get(device.type, TRIAD_ELEMENTS["cpu"])
    inner = 1 if device.type == "cpu" else 20  # several triads between two synchronisations on the GPU
    a, b, c = torch.empty(n, device=device), torch.rand(n, device=device), torch.rand(n, device=device)

    def triad() -> None:
        for _ in range(inner):
            torch.add(b, c, alpha=0.5, out=a)

    triad()
    times: list[float] = []
    t0 = time.perf_counter()
    while len(times) < 20 and (len(times) < 3 or time.perf_counter() - t0 < budget):
        times.append(timed(triad, device)[1])
    best = min(times)
    return {"array_mib": n * 4 / 2**20, "reps": len(times), "best_s": best, "bytes_per_s": 3 * 4 * n * inner / best}


def ceilings(
    device: str | torch.device,
    dtypes: tuple[str, ...] = ("float32", "bfloat16", "float64"),
    seconds: float = 3.0,
) -> dict[str, Any]:
    """Machine ceilings measured here, with the current torch thread count: what the benchmarks compare against.

    Args:
        device: where to measure.
        dtypes: matmul dtypes (``torch`` attribute names); one that fails is recorded with its error.
        seconds: rough time budget, split evenly between the matmuls and the triad (0: measure nothing).

    Returns:
        ``matmul_flops_per_s`` (dtype -> FLOP/s or None), ``triad_bytes_per_s``, the details of each
        measurement, the thread count and the seconds spent; ``{}`` when ``seconds`` is 0.
    """
    if seconds <= 0:
        return {}
    dev = torch.device(device)
    budget = seconds / (len(dtypes) + 1)
    t0 = time.perf_counter()
    matmul: dict[str, Any] = {}
    with torch.no_grad():
        for name in dtypes:
            try:
                matmul[name] = _matmul(dev, getattr(torch, name), budget)
            except (RuntimeError, TypeError, AttributeError) as e:  # dtype unsupported on this device
                matmul[name] = error_record(e)
        triad = _triad(dev, budget)
    return {
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "matmul_flops_per_s": {k: v.get("flops_per_s") for k, v in matmul.items()},
        "triad_bytes_per_s": triad["bytes_per_s"],
        "matmul": matmul,
        "triad": triad,
        "seconds": time.perf_counter() - t0,
    }


def count_flops(fn: Callable[[], Any]) -> int:
    """Flops of one call of ``fn`` as torch counts them (matmuls and convolutions, forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def fraction(achieved: float | None, ceiling: float | None) -> float | None:
    """``achieved / ceiling`` (e.g. 0.42 of the matmul ceiling), None when either is missing."""
    return ratio(achieved, ceiling)


def ceilings_line(c: dict[str, Any]) -> str:
    """The ceilings as one markdown sentence ("" when none were measured)."""
    if not c:
        return ""
    mm = ", ".join(
        f"{k} {fmt(v['flops_per_s'] / 1e9, '.4g')} GFLOP/s (n={v['n']})" if "n" in v else f"{k} failed"
        for k, v in c["matmul"].items()
    )
    return (
        f"Machine ceilings (same run, {c['torch_threads']} torch threads on `{c['device']}`): matmul {mm}; "
        f"triad bandwidth {c['triad_bytes_per_s'] / 1e9:.4g} GB/s ({c['triad']['array_mib']:.0f} MiB float32 arrays)."
    )


# ---------------------------------------------------------------------------------------------- command line
def add_common_args(p: argparse.ArgumentParser, name: str) -> None:
    """Options of the data-generation benchmarks: device, threads, ceilings' budget, report ``<out>/<name>_<tag>``."""
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads for the batched solver (default: torch's, usually the core count)",
    )
    p.add_argument(
        "--ceiling-seconds",
        type=float,
        default=3.0,
        help="time budget of the machine ceilings measured in the same run (0: skip; default: 3)",
    )
    p.add_argument("--out", type=Path, default=Path("docs/benchmarks"), help="output directory")
    p.add_argument("--tag", default=None, help=f"report name {name}_<tag>.{{json,md}} (default: device type)")


def check_common_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Resolve the device, set the torch threads and check the tag of :func:`add_common_args`' options."""
    from ssl_pde.core.cli import UserError, resolve_device

    try:
        args.device = str(resolve_device(args.device))
    except UserError as e:
        p.error(str(e))
    if args.threads is not None:
        if args.threads <= 0:
            p.error("--threads must be positive")
        torch.set_num_threads(args.threads)
    if args.tag is None:
        args.tag = torch.device(args.device).type
    if not args.tag or any(c in args.tag for c in "/\\ "):
        p.error(f"--tag {args.tag!r} must be a plain name")


# ---------------------------------------------------------------------------------------------- reports
def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` or None when either is missing."""
    return a / b if a is not None and b else None


def fmt(v: float | None, spec: str = ".3g") -> str:
    """A number for the tables, "-" when missing."""
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def error_record(e: BaseException) -> dict[str, str]:
    """An exception as a JSON-friendly record."""
    return {"error": f"{type(e).__name__}: {' '.join(str(e).split())}"}


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def rerun_section(command: str, json_name: str) -> list[str]:
    """Markdown lines of the "How to rerun" section: the command line and the raw-numbers file."""
    return ["## How to rerun", "", "```bash", command, "```", "", f"Raw numbers: `{json_name}`.", ""]


def write_report(out: Path, name: str, tag: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write ``<out>/<name>_<tag>.json`` and ``.md`` atomically (tmp file + ``os.replace``): never half a file."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{name}_{tag}.json", out / f"{name}_{tag}.md"
    for path, text in ((json_path, json.dumps(data, indent=2) + "\n"), (md_path, markdown)):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return json_path, md_path
