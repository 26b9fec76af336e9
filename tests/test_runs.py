"""Runs on the toy task: records, summary schema, resume after a partial run, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from sdbench.config import resolve_config
from sdbench.runs import run_suite
from sdbench.runs.store import RunStore

STRATEGIES = ["base", "single_sampled_demo", "grpo"]


def config_for(out: Path, **overrides: object):
    base = {"profile": "smoke", "tasks": ["toy_pick"], "strategies": STRATEGIES, "seeds": 2, "out": str(out),
            "workers": 1, "training": {"steps": 3}}
    base.update(overrides)
    return resolve_config(overrides=base)


def quiet() -> Console:
    return Console(file=open("/dev/null", "w"), force_terminal=False)


@pytest.fixture(scope="module")
def finished_run(toy_task, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "r"
    run_suite(config_for(out), console=quiet())
    return out


def test_run_directory_holds_config_records_samples_and_summary(finished_run: Path) -> None:
    store = RunStore(finished_run)
    records = list(store.records())
    assert len(records) == 6 and all(r["status"] == "ok" for r in records)
    for rec in records:
        for split in ("test", "ood"):
            problems = rec["eval"][split]["problems"]
            assert len(problems) == 8 and all(p["n"] == 8 and 0 <= p["c"] <= 8 for p in problems)
        assert len(store.read_samples(rec["key"])) == 2 * 8 * 8
        assert ("train" in rec) == (rec["strategy"]["name"] != "base")
    assert json.loads((finished_run / "config.json").read_text())["config"]["profile"] == "smoke"
    assert (finished_run / "summary.md").read_text().startswith("# sdbench summary")


def test_summary_schema_and_recomputable_numbers(finished_run: Path) -> None:
    from sdbench.eval import pass_at_k

    summary = json.loads((finished_run / "summary.json").read_text())
    assert summary["schema_version"] == 1 and summary["failed"] == []
    rows = summary["rows"]
    assert {(r["strategy"], r["split"]) for r in rows} == {(s, sp) for s in STRATEGIES for sp in ("test", "ood")}
    expected_metrics = {"pass@1", "pass@2", "pass@4", "pass@8", "pass@auc", "pass@gain", "distinct_correct",
                        "semantic_classes", "entropy"}
    for row in rows:
        assert set(row) >= {"strategy", "task", "split", "n_seeds", "n_problems", "samples_per_problem", "metrics"}
        assert set(row["metrics"]) == expected_metrics and row["n_seeds"] == 2 and row["n_problems"] == 8
        for stat in row["metrics"].values():
            assert stat["ci_low"] <= stat["mean"] + 1e-9 and stat["mean"] <= stat["ci_high"] + 1e-9
    # pass@1 of a row is the mean of c/n over seeds and problems of its records
    store = RunStore(finished_run)
    row = next(r for r in rows if r["strategy"] == "grpo" and r["split"] == "test")
    counts = [(p["n"], p["c"]) for rec in store.records() if rec["strategy"]["name"] == "grpo"
              for p in rec["eval"]["test"]["problems"]]
    want = sum(pass_at_k(n, c, 4) for n, c in counts) / len(counts)
    assert row["metrics"]["pass@4"]["mean"] == pytest.approx(want, abs=1e-6)
    deltas = {(d["strategy"], d["split"]) for d in summary["deltas"]}
    assert deltas == {("base", "test"), ("base", "ood"), ("grpo", "test"), ("grpo", "ood")}


def test_resume_runs_only_missing_cells_and_gives_the_same_summary(finished_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    config = config_for(out)
    # a "killed" run: only some records, plus a stray temp file from an interrupted write
    store = RunStore(out)
    (out / "cells").mkdir(parents=True)
    src = RunStore(finished_run)
    kept = sorted(p.name for p in src.cells.glob("*.json"))[:4]
    for name in kept:
        (out / "cells" / name).write_bytes((src.cells / name).read_bytes())
        sample = name.replace(".json", ".jsonl.gz")
        (out / "samples").mkdir(exist_ok=True)
        (out / "samples" / sample).write_bytes((src.samples / sample).read_bytes())
    (out / "cells" / ".x.json.tmp").write_text("{half")
    mtimes = {name: (out / "cells" / name).stat().st_mtime_ns for name in kept}
    run_suite(config, console=quiet())
    assert {name: (out / "cells" / name).stat().st_mtime_ns for name in kept} == mtimes
    assert len(list(store.records())) == 6
    assert (out / "summary.json").read_bytes() == (finished_run / "summary.json").read_bytes()


def test_same_seeds_give_identical_summary(finished_run: Path, tmp_path: Path) -> None:
    run_suite(config_for(tmp_path / "again"), console=quiet())
    assert (tmp_path / "again" / "summary.json").read_bytes() == (finished_run / "summary.json").read_bytes()


def test_a_run_directory_with_another_config_is_refused(finished_run: Path) -> None:
    from sdbench.errors import UserError

    with pytest.raises(UserError, match="different config"):
        run_suite(config_for(finished_run, seeds=3), console=quiet())
