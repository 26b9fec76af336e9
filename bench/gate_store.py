"""The gate's committed numbers: tasks/assets/gate/gate.json, one entry per task (sdbench.gate computes them).

    from sdbench.gate_store import read_gate, write_gate
    write_gate(run_gate("graph_paths"))          # `sdbench tasks check graph_paths --write`
    read_gate("graph_paths", model_dir)          # {passed, metrics, checks, budget, stale}: `tasks list --json`,
                                                 # and each run's provenance

File I/O only (json, hashlib, the atomic writer): no torch, so a run's provenance and `tasks list` read the
committed verdicts without loading the model stack. Tests: pytest tests/test_gate.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdbench.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from sdbench.gate import GateReport


# ---------------------------------------------------------------- the committed numbers
# One file for all tasks, outside the model directories: `weights_hash` (run provenance) hashes every
# .json of a model directory, so a gate file there would change the recorded hash of unchanged
# weights, and `sdbench pretrain --force` replaces the directory (and would drop it).
def gate_file() -> Path:
    """tasks/assets/gate/gate.json inside the installed sdbench.tasks package."""
    import sdbench.tasks

    return Path(sdbench.tasks.__file__).parent / "assets" / "gate" / "gate.json"


def _weights_sha(model_path: str) -> str | None:
    """The one hash of a model directory (`sdbench.results.weights`, a cell record's `weights_sha256`)."""
    from sdbench.errors import UserError
    from sdbench.models import resolve_model
    from sdbench.results.weights import weights_sha256

    try:
        return weights_sha256(resolve_model(model_path)) or None
    except UserError:       # a catalogue model not prepared here: nothing to compare, so the entry is stale
        return None


def write_gate(report: GateReport, path: Path | None = None) -> Path:
    """Record `report` as the task's committed gate numbers (other tasks' entries are kept)."""
    path = path or gate_file()
    entries = json.loads(path.read_text()) if path.is_file() else {}
    entries[report.task] = {**report.to_json(), "model": Path(report.model).name,
                            "weights_sha256": _weights_sha(report.model)}
    atomic_write_bytes(path, (json.dumps(dict(sorted(entries.items())), indent=1) + "\n").encode())
    return path


def read_gate(task: str, model_path: str | None, path: Path | None = None) -> dict[str, Any] | None:
    """The committed gate entry of `task` with `stale: True` when the model's weights changed since."""
    path = path or gate_file()
    if not path.is_file():
        return None
    entry = json.loads(path.read_text()).get(task)
    if entry is None:
        return None
    current = _weights_sha(model_path) if model_path else None
    return {"passed": entry["passed"], "metrics": entry["metrics"], "checks": entry["checks"],
            "budget": entry["details"]["budget"], "stale": current is None or current != entry["weights_sha256"]}
