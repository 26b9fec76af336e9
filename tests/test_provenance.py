"""sdbench.runs.provenance: what a run records about the machine that produced its numbers.

    pytest tests/test_provenance.py

The CPU line matters because training reproduces bit for bit only on the same code and vector ISA: the
committed arith_target file's 39 cells from another machine diverge after 25-225 steps (README).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdbench.runs.provenance import cpu_description, hardware

# Two processors of /proc/cpuinfo (only the first one's lines are read), the flags cut to what matters.
AVX512 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx fma avx2 avx512f avx512dq avx512bw avx512vl avx512ifma

processor\t: 1
model name\t: Other CPU
flags\t\t: fpu sse2
"""
AVX2 = "model name\t: Intel(R) Xeon(R) CPU E5-2686 v4\nflags\t\t: fpu sse2 avx fma avx2\n"


def test_cpu_description_names_the_first_model_and_the_widest_isa_torch_dispatches_on():
    assert cpu_description(AVX512) == "AMD EPYC 9R14 (avx512)"
    assert cpu_description(AVX2) == "Intel(R) Xeon(R) CPU E5-2686 v4 (avx2)"
    # avx512f alone is not ATen's AVX512 level (it needs bw, vl and dq too): avx2
    assert cpu_description(AVX2.replace("avx2", "avx2 avx512f")) == "Intel(R) Xeon(R) CPU E5-2686 v4 (avx2)"
    # avx2 without fma is ATen's default level
    assert cpu_description("model name : Old\nflags : sse2 avx2\n") == "Old (default)"
    assert cpu_description("flags : avx2 fma\n") == "unknown (avx2)"
    assert cpu_description("") is None


def test_cpu_description_follows_aten_cpu_capability_down_never_up():
    # ATen honours ATEN_CPU_CAPABILITY only where the CPU supports the level, and ignores names it does not know
    assert cpu_description(AVX512, "avx2") == "AMD EPYC 9R14 (avx2)"
    assert cpu_description(AVX512, "default") == "AMD EPYC 9R14 (default)"
    assert cpu_description(AVX2, "avx512") == "Intel(R) Xeon(R) CPU E5-2686 v4 (avx2)"
    assert cpu_description(AVX512, "AVX2") == "AMD EPYC 9R14 (avx512)"     # case matters to ATen too
    assert cpu_description(AVX512, "bogus") == "AMD EPYC 9R14 (avx512)"


@pytest.mark.parametrize("setting", [None, "default", "avx2", "avx512"])
def test_the_recorded_isa_is_the_one_torch_dispatches_on(setting: str | None) -> None:
    """Against torch itself, in a fresh process per setting (ATen reads the variable once, at first dispatch)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo (not Linux)")
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    if setting is not None:
        env["ATEN_CPU_CAPABILITY"] = setting
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip().lower()
    if out not in ("default", "avx2", "avx512"):
        pytest.skip(f"torch dispatches on {out!r} here, not an x86 level")
    assert cpu_description(cpuinfo.read_text(), setting).endswith(f"({out})")


def test_hardware_records_the_cpu_where_the_os_says_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    info = hardware()
    assert {"platform", "machine", "cpu_count", "python"} <= set(info)
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo (not Linux): the CPU comes from platform.processor(), if it says")
    assert info["cpu"] == cpu_description(cpuinfo.read_text())
    assert info["cpu"].endswith(("(avx512)", "(avx2)", "(default)"))
    # a run under ATEN_CPU_CAPABILITY=default dispatches on the default kernels on any x86 CPU: so it records
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    assert hardware()["cpu"] == cpu_description(cpuinfo.read_text(), "default")
    assert hardware()["cpu"].endswith("(default)")
