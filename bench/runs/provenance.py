"""Provenance of a run: what produced these numbers (versions, commit, hardware, data hashes).

Written to <run>/provenance.json once, when a run starts (a resumed run rewrites it). Kept out of
summary.json on purpose: the summary of the same config and seeds is bit-identical across runs,
while provenance carries timestamps and hostnames.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from sdbench.config import RunConfig

# NVIDIA and ROCm driver nodes: without one, torch.cuda.is_available() is False
_GPU_DEVICES = ("/proc/driver/nvidia", "/dev/nvidia0", "/dev/kfd")
LIBRARIES = ("torch", "transformers", "tokenizers", "numpy", "pydantic", "datasets")


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


_ISA_LEVELS = ("default", "avx2", "avx512")      # ATen's x86 CPU capabilities, narrowest first


def cpu_description(cpuinfo: str, requested: str | None = None) -> str | None:
    """'MODEL (ISA)' from the text of /proc/cpuinfo: the first model name and the vector ISA torch's CPU kernels
    dispatch on (ATen's avx512 needs avx512f/bw/vl/dq, avx2 needs avx2 and fma; the C loss kernel is built with
    -march=native), held down to `requested` (the ATEN_CPU_CAPABILITY setting) where that names a narrower level,
    as ATen does; it ignores other values. The same answer as torch.backends.cpu.get_cpu_capability(), without
    importing torch in the run's parent (tests/test_provenance.py checks the two agree).

    Why it is recorded: kernels of another width sum in another order, so training reproduces bit for bit on
    the same code and ISA but not across machines (arith_target's full-profile cells from another machine part
    after 25-225 steps, reproduce exactly here from the same older code, and part again here under
    ATEN_CPU_CAPABILITY=avx2; README, What is committed)."""
    model, flags = None, set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    if model is None and not flags:
        return None
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        isa = "avx512"
    elif {"avx2", "fma"} <= flags:
        isa = "avx2"
    else:
        isa = "default"
    if requested in _ISA_LEVELS and _ISA_LEVELS.index(requested) < _ISA_LEVELS.index(isa):
        isa = requested
    return f"{model or 'unknown'} ({isa})"


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(),
                            "cpu_count": os.cpu_count(), "python": platform.python_version()}
    try:
        cpu = cpu_description(Path("/proc/cpuinfo").read_text(), os.environ.get("ATEN_CPU_CAPABILITY"))
    except OSError:     # not Linux
        cpu = platform.processor() or None
    if cpu:
        info["cpu"] = cpu
    if "torch" not in sys.modules and not any(Path(p).exists() for p in _GPU_DEVICES):
        return info     # no GPU driver here: the run's parent need not load torch (~1.5 CPU-s) to learn that
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpu_count"] = torch.cuda.device_count()
    except ImportError:
        pass
    return info


def task_data_hash(task_name: str, config: RunConfig) -> str:
    """sha256 over the evaluated problems of a task (ids, prompts, references) for this config."""
    from sdbench.task import load_task

    task = load_task(task_name, data_path=config.data_path)
    digest = hashlib.sha256()
    for split in config.evaluation.splits:
        for problem in task.problems(split, config.evaluation.problems, seed=0):
            digest.update(f"{split}\0{problem.id}\0{problem.prompt}\0{problem.reference}\n".encode())
    return digest.hexdigest()


def sandbox_layers() -> dict[str, Any] | None:
    """The sandbox layers in force on this machine (every execution of generated code uses them)."""
    try:
        from sdbench.sandbox import sandbox_info
    except ImportError:
        return None
    return sandbox_info().to_dict()


def gate_summary(task: str, config: RunConfig) -> dict[str, Any] | None:
    """The task's committed testbed-gate result for the model the run uses (`sdbench tasks check`):
    passed, the checks that failed, and whether the numbers are stale (the weights changed since)."""
    from sdbench.gate_store import read_gate
    from sdbench.task import load_task

    try:
        model = config.model or load_task(task).base_model()
    except Exception:  # a task that needs data files: no shipped model, no gate entry
        return None
    entry = read_gate(task, model)
    if entry is None:
        return None
    failed = [c["name"] for c in entry["checks"] if c.get("passed") is False]
    return {"passed": entry["passed"], "failed": failed, "stale": entry["stale"]}


def collect(config: RunConfig, strategies: list[dict[str, Any]]) -> dict[str, Any]:
    import sdbench
    from sdbench.task import TASKS

    return {
        "sdbench_version": sdbench.__version__,
        "git_commit": _git_commit(),
        "config_hash": config.config_hash(),
        "seeds": list(range(config.seeds)),
        "strategies": strategies,
        "tasks": {name: {**TASKS.entry(name).provenance, "data_sha256": task_data_hash(name, config),
                         "gate": gate_summary(name, config)}
                  for name in config.tasks},
        "model_override": config.model,
        "sandbox": sandbox_layers(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "hardware": hardware(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
