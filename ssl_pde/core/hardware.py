"""What the CPU can do, for choices that depend on it (``trainer.precision='${cpu_precision:}'``: bf16 autocast
only where it is native; the CPU trainer's default stays float32, ``configs/trainer/cpu.yaml``).

Measured on two 2-core Intel Xeon machines with ``scripts/bench_train.py``: where the CPU has native bfloat16
arithmetic (the ``avx512_bf16`` or ``amx_bf16`` instructions; ``docs/benchmarks/train_cpu_amx.md``) a bfloat16
matmul runs about 6x faster than a float32 one and the pretraining step with bf16 autocast and channels-last about
1.6x faster than the float32 step; where it has not (``train_cpu_nobf16.md``), bfloat16 is emulated and the same
step runs at 0.4x. So the choice follows the instruction set, not a guess.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=8)
def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The instruction-set flags the kernel reports for the first CPU (Linux); empty where there is no such file
    (other systems). Read once per path (the first ``flags`` line only)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    return frozenset(value.split())
    except OSError:
        return frozenset()
    return frozenset()


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU computes in bfloat16 natively (x86 ``avx512_bf16`` or AMX); ``flags`` defaults to
    :func:`cpu_flags`. Other architectures answer False: bfloat16 there is not measured here."""
    if flags is None:
        if platform.machine().lower() not in ("x86_64", "amd64"):
            return False
        flags = cpu_flags()
    return any(f in flags for f in NATIVE_BF16_FLAGS)


def cpu_precision(flags: frozenset[str] | None = None) -> str:
    """The Lightning precision that suits this CPU: ``bf16-mixed`` with native bfloat16, else ``32-true`` (the
    ``${cpu_precision:}`` resolver, an opt-in value of ``trainer.precision``)."""
    return "bf16-mixed" if cpu_has_native_bf16(flags) else "32-true"
