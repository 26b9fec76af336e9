"""Runs on the toy task: records, summary schema, resume after a partial run, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import quiet_console as quiet
from helpers import smoke_config

from sdbench.runs import run_suite
from sdbench.runs.store import RunStore

STRATEGIES = ["base", "single_sampled_demo", "grpo"]


def config_for(out: Path, **overrides: object):
    return smoke_config(**{"strategies": STRATEGIES, "seeds": 2, "out": str(out), "training": {"steps": 3},
                           **overrides})


@pytest.fixture(scope="module")
def finished_run(toy_task, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "r"
    run_suite(config_for(out), console=quiet())
    return out


def test_run_directory_holds_config_records_samples_and_summary(finished_run: Path) -> None:
    store = RunStore(finished_run)
    records = list(store.records())
    assert len(records) == 6 and all(r.status == "ok" for r in records)
    for rec in records:
        trained = rec.strategy.name != "base"
        # smoke: val every 2 steps from step 0, and after the last (3rd) step
        assert [p.step for p in rec.trajectory] == ([0, 2, 3] if trained else [0])
        assert all(len(p.problems) == 8 and p.n == 8 for p in rec.trajectory)
        assert rec.trajectory[0].problems[0].kl_from_base == 0.0          # step 0 is the base model
        assert set(rec.eval) == {"final", "best_val"}
        for checkpoint in rec.eval.values():
            for split in ("test", "ood"):
                problems = checkpoint[split].problems
                assert len(problems) == 8 and all(p.n == 8 and 0 <= p.c <= 8 for p in problems)
        # the best-val step is the first step with the highest val pass@1
        best = max(p.pass1 for p in rec.trajectory)
        assert rec.best_val_step == next(p.step for p in rec.trajectory if p.pass1 == best)
        same = rec.best_val_step == rec.trajectory[-1].step
        assert len(store.read_samples(rec.key)) == (1 if same else 2) * 2 * 8 * 8
        assert (rec.train is not None) == trained
        assert rec.training["teacher"] == "ema" and rec.training["warmup_steps"] == 2
        assert set(rec.timing) >= {"setup_s", "sample_s", "verify_s", "teacher_s", "student_s", "backward_s",
                                   "optimizer_s", "val_s", "eval_s"}
    assert json.loads((finished_run / "config.json").read_text())["config"]["profile"] == "smoke"
    assert (finished_run / "summary.md").read_text().startswith("# sdbench summary")
    assert (finished_run / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_summary_schema_and_recomputable_numbers(finished_run: Path) -> None:
    from sdbench.eval import pass_at_k

    summary = json.loads((finished_run / "summary.json").read_text())
    assert summary["schema_version"] == 3 and summary["failed"] == []
    rows = summary["rows"]
    assert {(r["strategy"], r["split"], r["checkpoint"]) for r in rows} == {
        (s, sp, c) for s in STRATEGIES for sp in ("test", "ood") for c in ("final", "best_val")}
    expected_metrics = {"pass@1", "pass@2", "pass@4", "pass@8", "pass@auc", "pass@gain", "distinct_correct",
                        "semantic_classes", "entropy"}
    for row in rows:
        assert set(row["metrics"]) == expected_metrics and row["n_seeds"] == 2 and row["n_problems"] == 8
        assert ("selected_step" in row) == (row["checkpoint"] == "best_val")
        for stat in row["metrics"].values():
            assert stat["ci_low"] <= stat["mean"] + 1e-9 and stat["mean"] <= stat["ci_high"] + 1e-9
    # pass@k of a row is the mean over seeds and problems of its records' per-problem estimates
    store = RunStore(finished_run)
    for checkpoint in ("final", "best_val"):
        row = next(r for r in rows if r["strategy"] == "grpo" and r["split"] == "test"
                   and r["checkpoint"] == checkpoint)
        counts = [(p.n, p.c) for rec in store.records() if rec.strategy.name == "grpo"
                  for p in rec.eval[checkpoint]["test"].problems]
        want = sum(pass_at_k(n, c, 4) for n, c in counts) / len(counts)
        assert row["metrics"]["pass@4"]["mean"] == pytest.approx(want, abs=1e-6)
    grpo = [r for r in store.records() if r.strategy.name == "grpo"]
    selected = next(r for r in rows if r["strategy"] == "grpo" and r["checkpoint"] == "best_val")["selected_step"]
    assert selected["mean"] == pytest.approx(sum(r.best_val_step for r in grpo) / 2)
    # trajectories: every evaluation point of every strategy, step 0 identical for all of them
    steps = {(t["strategy"], t["step"]) for t in summary["trajectories"]}
    assert steps == {("base", 0)} | {(s, k) for s in ("single_sampled_demo", "grpo") for k in (0, 2, 3)}
    step0 = [t["metrics"] for t in summary["trajectories"] if t["step"] == 0]
    assert all(m == step0[0] for m in step0) and step0[0]["kl_from_base"]["mean"] == 0.0
    assert set(step0[0]) == {"pass@1", "pass@2", "pass@8", "distinct_correct", "entropy", "kl_from_base"}
    assert {(f["strategy"], f["kl_budget"]) for f in summary["frontier"]} == {
        (s, b) for s in STRATEGIES for b in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)}
    assert all(f["n_seeds_reached"] == 0 and f["metrics"] == {} for f in summary["frontier"] if f["strategy"] == "base")
    # paired deltas against the paper's baseline, base and RL, each present one
    deltas = {(d["strategy"], d["baseline"], d["split"], d["checkpoint"]) for d in summary["deltas"]}
    assert deltas == {(s, b, sp, c) for b in STRATEGIES for s in STRATEGIES if s != b
                      for sp in ("test", "ood") for c in ("final", "best_val")}
    # two seeds: every row CI is seed-aware and says how much of its variance is between seeds
    assert all(0.0 <= r["metrics"]["pass@1"]["seed_share"] <= 1.0 for r in rows)
    # issue 29: every arm's mechanism from the val histograms; step 0 is the base model for all of them
    arms = {a["strategy"]: a for a in summary["mechanism"]["arms"]}
    assert set(arms) == set(STRATEGIES) and all(a["seeds"] == [0, 1] and a["problems"] == 8 for a in arms.values())
    assert len({json.dumps(a["steps"][0]) for a in arms.values()}) == 1
    share = arms["base"]["steps"][0]["dominant_share"]
    assert share is None or 0.0 <= share["ci_low"] <= share["mean"] <= share["ci_high"] <= 1.0


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


def test_report_to_tensorboard_writes_training_steps_and_evaluation_points(toy_task, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    run_suite(config_for(out, strategies=["grpo"], seeds=1, report_to="tensorboard"), console=quiet())
    logs = list((out / "tensorboard").iterdir())
    assert [p.name for p in logs] == ["toy_pick__grpo__seed0"]
    events = EventAccumulator(str(logs[0]))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]
    points = events.Scalars("val/pass@1")
    record = RunStore(out).read_record("toy_pick__grpo__seed0")
    assert [e.step for e in points] == [0, 2, 3]
    assert [e.value for e in points] == pytest.approx([p.pass1 for p in record.trajectory])
    # not part of the results: the same suite without it has the same config hash
    assert config_for(out, report_to="tensorboard").config_hash() == config_for(out).config_hash()
