"""End to end through the installed `sdbench` command: the smoke profile on the shipped graph_paths
base model with the paper's three rows (base, single_sampled_demo, grpo), and a second run of the
same command into another directory giving a byte-identical summary.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import smoke_args

SDBENCH = str(Path(sys.executable).parent / "sdbench")   # the console script of this environment
ENV = {**os.environ, "COLUMNS": "120"}
ARGS = ["run", *smoke_args("base,single_sampled_demo,grpo", tasks="graph_paths", workers=None)]


@pytest.mark.slow
def test_smoke_run_on_the_shipped_graph_model_is_complete_and_reproducible(tmp_path: Path) -> None:
    assert Path(SDBENCH).is_file(), "the sdbench console script is not installed"
    first = subprocess.run([SDBENCH, *ARGS, "--out", str(tmp_path / "a")], capture_output=True, text=True,
                           timeout=600, env=ENV)
    assert first.returncode == 0, first.stderr
    assert "graph_paths: test, final step" in first.stdout and "time per stage" in first.stdout
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    rows = {(r["strategy"], r["split"], r["checkpoint"]): r for r in summary["rows"]}
    assert set(rows) == {(s, sp, c) for s in ("base", "single_sampled_demo", "grpo") for sp in ("test", "ood")
                         for c in ("final", "best_val")}
    base = rows[("base", "test", "final")]["metrics"]
    assert base == rows[("base", "test", "best_val")]["metrics"]        # untrained: one model, both checkpoints
    # the shipped model solves some but not all problems, with several distinct correct paths
    assert 0.1 < base["pass@1"]["mean"] < 0.9 and base["distinct_correct"]["mean"] > 1.0
    second = subprocess.run([SDBENCH, *ARGS, "--out", str(tmp_path / "b"), "--workers", "1"], capture_output=True,
                            text=True, timeout=600, env=ENV)
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "a" / "summary.json").read_bytes() == (tmp_path / "b" / "summary.json").read_bytes()
