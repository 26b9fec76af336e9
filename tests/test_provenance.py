"""sdbench.runs.provenance: what a run records about the machine that produced its numbers.

    pytest tests/test_provenance.py

The CPU line matters because training reproduces bit for bit only on the same code and vector ISA: the
committed arith_target file's 39 cells from another machine diverge after 25-225 steps (README).
"""

from __future__ import annotations

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


def test_hardware_records_the_cpu_where_the_os_says_it():
    info = hardware()
    assert {"platform", "machine", "cpu_count", "python"} <= set(info)
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo (not Linux): the CPU comes from platform.processor(), if it says")
    assert info["cpu"] == cpu_description(cpuinfo.read_text())
    assert info["cpu"].endswith(("(avx512)", "(avx2)", "(default)"))
