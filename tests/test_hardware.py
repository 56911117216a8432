"""The CPU trainer's precision follows the instruction set: bf16 autocast only where bfloat16 is native."""

from __future__ import annotations

import pytest

from ssl_pde.core.hardware import cpu_flags, cpu_has_native_bf16, cpu_precision
from tests.conftest import compose_cfg

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse2 avx2 avx512f avx512bw {extra}
bugs\t\t: spectre_v1

processor\t: 1
flags\t\t: fpu sse2
"""


@pytest.mark.parametrize(
    ("extra", "native"),
    [("", False), ("avx512_bf16", True), ("amx_bf16 amx_tile", True), ("avx512_fp16 avx512_vnni", False)],
)
def test_flags_decide_bf16(tmp_path, extra, native):
    """The first CPU's flags line is read; only avx512_bf16 or amx_bf16 count as native bfloat16."""
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO.format(extra=extra))
    flags = cpu_flags(path)
    assert "avx512f" in flags and "bugs" not in flags
    assert cpu_has_native_bf16(flags) is native
    assert cpu_precision(flags) == ("bf16-mixed" if native else "32-true")


def test_no_cpuinfo_means_float32(tmp_path):
    """Without a flags file (not Linux) nothing is claimed: float32."""
    assert cpu_flags(tmp_path / "missing") == frozenset()
    assert cpu_precision(frozenset()) == "32-true"


@pytest.mark.parametrize(
    ("flags", "expected"), [(frozenset({"avx2", "amx_bf16"}), "bf16-mixed"), (frozenset(), "32-true")]
)
def test_the_resolver_follows_the_flags(monkeypatch, flags, expected):
    """``${cpu_precision:}`` (an opt-in value of trainer.precision) follows the patched flags on any machine."""
    from omegaconf import OmegaConf

    import ssl_pde.config  # noqa: F401  (registers the resolver)
    import ssl_pde.core.hardware as hardware

    monkeypatch.setattr(hardware.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(hardware, "cpu_flags", lambda *a: flags)
    assert OmegaConf.create({"precision": "${cpu_precision:}"}).precision == expected


def test_trainer_cpu_is_float32(tmp_path):
    """trainer=cpu stays float32 on every CPU; bf16 is an explicit choice."""
    cfg = compose_cfg("pretrain", ["experiment=burgers_demo", f"run_dir={tmp_path}"])
    assert cfg.trainer.precision == "32-true"
    cfg = compose_cfg("pretrain", ["experiment=burgers_demo", "trainer.precision=bf16-mixed", f"run_dir={tmp_path}"])
    assert cfg.trainer.precision == "bf16-mixed"
