"""The Ray executor: a smoke run on a local Ray instance gives the local executor's summary bytes.

    pytest tests/test_ray_executor.py

The run goes through tests/toy_cli.py, whose module-level registrations (the toy task) reach the
Ray workers because each worker re-runs the driver's main file, as spawn workers do. Skipped when
Ray is not installed (it is in the `dev` extra); about 40 s on two idle cores.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import pytest
from helpers import quiet_console, run_cli, smoke_args

from sdbench.errors import UserError

SMOKE = smoke_args("base,single_sampled_demo", workers=None)
cli = functools.partial(run_cli, timeout=180)


@pytest.fixture(scope="module")
def env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.mark.slow
def test_ray_smoke_run_gives_the_local_summary_bytes_and_resumes(env, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'sdbench[ray]')")
    config = tmp_path / "suite.yaml"
    config.write_text("training: {steps: 2}\nevaluation: {problems: 4, samples: 8}\n")
    local, remote = tmp_path / "local", tmp_path / "ray"
    done = cli(["run", *SMOKE, "--config", str(config), "--out", str(local), "--workers", "1"], env)
    assert done.returncode == 0, done.stderr
    # two cells at a time on the local Ray instance, one after the other locally: the same bytes
    done = cli(["run", *SMOKE, "--config", str(config), "--out", str(remote), "--executor", "ray", "--workers", "2"],
               env)
    assert done.returncode == 0, done.stderr + done.stdout
    assert (remote / "summary.json").read_bytes() == (local / "summary.json").read_bytes()
    records = sorted((remote / "cells").glob("*.json"))
    assert len(records) == 2 and all(json.loads(p.read_text())["status"] == "ok" for p in records)
    assert json.loads((remote / "config.json").read_text())["config"]["executor"] == "ray"
    # A finished run resumes without starting Ray at all: every cell already has its record.
    again = cli(["run", *SMOKE, "--config", str(config), "--out", str(remote), "--executor", "ray"], env)
    assert again.returncode == 0 and "resuming: 2 of 2" in again.stdout, again.stderr
    assert (remote / "summary.json").read_bytes() == (local / "summary.json").read_bytes()


def test_missing_ray_is_one_line_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from sdbench.runs.ray_executor import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)     # `import ray` now raises ImportError
    with pytest.raises(UserError) as info:
        import_ray()
    assert "\n" not in str(info.value) and "sdbench[ray]" in (info.value.hint or "")


def test_a_worker_runs_the_driver_main_file_without_its_main_block(tmp_path: Path, monkeypatch) -> None:
    from sdbench.runs import ray_executor

    script = tmp_path / "driver.py"
    marker = tmp_path / "ran-main-block"
    script.write_text("import os\nREGISTERED = os.getcwd()\n"
                      f"if __name__ == '__main__':\n    open({str(marker)!r}, 'w').close()\n")
    monkeypatch.setattr(ray_executor, "_prepared", set())
    monkeypatch.delitem(sys.modules, "__mp_main__", raising=False)
    monkeypatch.chdir(Path.cwd())
    ray_executor._prepare_worker(str(script), str(tmp_path))
    assert os.getcwd() == str(tmp_path) and sys.modules["__mp_main__"].REGISTERED == str(tmp_path)
    assert not marker.exists()


def test_progress_ignores_late_events_of_finished_cells() -> None:
    from sdbench.runs.execute import CellProgress

    console = quiet_console()
    with CellProgress(console, total=2, already_done=0) as display:
        display.on_event("a", "train", 1, 4)
        assert "a" in display.bars
        display.finish({"key": "a", "status": "ok"})
        display.on_event("a", "evaluate", 2, 4)       # arrived after the cell's result
        assert "a" not in display.bars and [o["key"] for o in display.outcomes] == ["a"]
