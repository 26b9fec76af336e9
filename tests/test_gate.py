"""Tests of the testbed gate (sdbench.gate, `sdbench tasks check`): ROC-AUC, positional copying,
the JSON shape and thresholds on a reduced budget, broken models, bad input.

    pytest tests/test_gate.py            # ~40 s on 1 core;  -m "not slow" skips the model runs
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from helpers import hand_graph

from sdbench.cli import main
from sdbench.gate import METRIC_KEYS, GateBudget, GateReport, TokenValidity, positional_copy, roc_auc
from sdbench.gate_store import read_gate, write_gate
from sdbench.task import load_task

# n stays 32 so that pass_gain (pass@n - pass@1) and distinct_correct estimate the full gate's quantities.
REDUCED = ["--problems", "24", "--samples", "32", "--teacher-samples", "4"]
CHECKS = ["student_pass1", "pass_gain", "distinct_correct", "teacher_noncopy_pass1", "delta_auc",
          "delta_noncopy_correct_mean", "copy_rate", "positional_copy_share"]


# ---------------------------------------------------------------- ROC-AUC
@pytest.mark.parametrize(("scores", "labels", "expected"), [
    ([0.9, 0.4, 0.5, 0.1], [1, 1, 0, 0], 0.75),        # pairs: 0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1 -> 3/4
    ([1, 2, 1, 0], [1, 1, 0, 0], 0.875),               # the tie 1 vs 1 counts 1/2: (0.5 + 1 + 1 + 1) / 4
    ([3, 3, 3, 3], [1, 0, 1, 0], 0.5),                 # all tied
    ([5, 4, 1, 0], [1, 1, 0, 0], 1.0),
    ([0, 1, 4, 5], [1, 1, 0, 0], 0.0),
    ([2, 0, 1, 2, 2], [1, 0, 0, 0, 1], 5 / 6),         # pos {2,2} vs neg {0,1,2}: (1 + 1 + .5) * 2 / 6
])
def test_roc_auc_exact(scores: list[float], labels: list[int], expected: float) -> None:
    assert roc_auc(scores, [bool(v) for v in labels]) == pytest.approx(expected, abs=1e-12)


def test_roc_auc_matches_pairwise_count_and_needs_both_classes() -> None:
    rng = random.Random(0)
    scores = [rng.randint(0, 5) for _ in range(40)]
    labels = [rng.random() < 0.4 for _ in range(40)]
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    brute = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg)) / (len(pos) * len(neg))
    assert roc_auc(scores, labels) == pytest.approx(brute, abs=1e-12)
    assert roc_auc([1.0, 2.0], [True, True]) is None and roc_auc([], []) is None


# ---------------------------------------------------------------- positional copying
# On the hand-built graph (tests/helpers.py) through graph_paths's per-token validity hook, which
# tests/test_graph_paths.py checks on its own.
GRAPH = hand_graph()


def test_token_validity_is_the_graph_paths_hook() -> None:
    assert isinstance(load_task("graph_paths"), TokenValidity)
    assert not isinstance(load_task("arith_target"), TokenValidity)
    assert not isinstance(load_task("code_synth"), TokenValidity)


@pytest.mark.parametrize(("rollout", "demo", "expected"), [
    ("s b g x t", "s a g x t", True),    # left the demo at 1; the invalid g is the demo's token at 2
    ("s b g x t", "s a h x t", False),   # left the demo, but the invalid g is not the demo's h
    ("s a q x t", "s a h x t", False),   # the error comes while still on the demo's prefix
    ("s a h z t", "s b h y t", False),   # dead end z vs the demo's y (the target t after it is not the error)
    ("s a h x t", "s b h x t", None),    # no invalid token
])
def test_positional_copy(rollout: str, demo: str, expected: bool | None) -> None:
    assert positional_copy(load_task("graph_paths"), GRAPH, rollout, True, demo) is expected


# ---------------------------------------------------------------- the command on a reduced budget
@functools.cache
def reduced(task: str) -> dict:
    """`sdbench tasks check TASK --json` on the reduced budget (once per task per session), plus its exit code."""
    import torch

    torch.set_num_threads(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        main(["tasks", "check", task, "--json", *REDUCED])
        raise SystemExit(0)   # main returns normally when the gate passes
    return {**json.loads(out.getvalue()), "exit_code": exit_info.value.code}


@pytest.mark.slow
def test_json_shape() -> None:
    report = reduced("graph_paths")
    assert set(report) - {"exit_code"} == {"task", "model", "passed", "metrics", "checks", "details"}
    assert report["task"] == "graph_paths" and report["model"].endswith("graph_paths")
    assert list(report["metrics"]) == list(METRIC_KEYS)
    assert set(METRIC_KEYS) == {"student_pass1", "pass_gain", "distinct_correct", "teacher_pass1",
                                "teacher_noncopy_pass1", "copy_rate", "delta_auc", "student_loglik_auc",
                                "delta_noncopy_correct_mean", "delta_incorrect_mean", "positional_copy_share"}
    assert [c["name"] for c in report["checks"]] == CHECKS
    assert all(set(c) == {"name", "value", "threshold", "passed"} for c in report["checks"])
    assert isinstance(report["passed"], bool)
    assert report["exit_code"] == (0 if report["passed"] else 1)
    # every incorrect rollout has at most one first error (an unfinished prefix has none): the shares sum to at
    # most 1 - pass@1 (each rounded to 1e-4, 7 kinds at most)
    errors = report["details"]["first_errors"]
    assert errors and set(errors) <= {"non_edge_live", "non_edge_dead", "dead_end", "repeat", "eos", "past_target",
                                      "wrong_source"}
    assert sum(errors.values()) <= 1 - report["metrics"]["student_pass1"] + 7e-4
    tilt = report["details"]["teacher_tilt"]       # information (issue 29): both kinds of correct rollout occur
    assert tilt["same_class_rollouts"] > 0 and tilt["other_class_rollouts"] > 0
    assert tilt["difference"] == pytest.approx(tilt["same_class_mean"] - tilt["other_class_mean"], abs=2e-4)


def test_teacher_tilt_by_hand() -> None:
    from sdbench.gate import teacher_tilt

    # rows: (correct, class differs from the demo's, positional); incorrect rollouts are left out
    rows = [(True, False, None), (True, False, None), (True, True, None), (False, True, None)]
    tilt = teacher_tilt(np.array([2.0, 4.0, 1.0, -5.0]), rows)
    assert tilt == {"same_class_mean": 3.0, "other_class_mean": 1.0, "difference": 2.0, "same_class_rollouts": 2,
                    "other_class_rollouts": 1}


@pytest.mark.slow
def test_reduced_gate_values_and_thresholds() -> None:
    report = reduced("graph_paths")
    m = report["metrics"]
    assert all(v is not None and math.isfinite(v) for v in m.values()), m
    for key in ("student_pass1", "pass_gain", "teacher_pass1", "teacher_noncopy_pass1", "copy_rate", "delta_auc",
                "student_loglik_auc", "positional_copy_share"):
        assert 0.0 <= m[key] <= 1.0, key
    assert 0.0 <= m["distinct_correct"] <= 32 and m["student_pass1"] + m["pass_gain"] <= 1.0 + 1e-9
    ref = report["details"]["student_pass1_on_demo_problems"] - 0.02
    expected = {   # the thresholds, restated independently of the gate's code
        "student_pass1": 0.25 <= m["student_pass1"] <= 0.60, "pass_gain": m["pass_gain"] >= 0.30,
        "distinct_correct": m["distinct_correct"] >= 3, "teacher_noncopy_pass1": m["teacher_noncopy_pass1"] >= ref,
        "delta_auc": m["delta_auc"] >= 0.70,
        "delta_noncopy_correct_mean": m["delta_noncopy_correct_mean"] > m["delta_incorrect_mean"],
        "copy_rate": 0.3 <= m["copy_rate"] <= 0.7, "positional_copy_share": m["positional_copy_share"] <= 0.05}
    checks = {c["name"]: c for c in report["checks"]}
    assert {name: c["passed"] for name, c in checks.items()} == expected
    assert all(checks[k]["value"] == pytest.approx(m[k], abs=1e-4) for k in CHECKS)
    assert report["passed"] == all(expected.values())


# ---------------------------------------------------------------- the shipped models against the thresholds
# Margins of the reduced-budget check, per task: 2.5 x the seed-to-seed standard deviation of each checked
# quantity at this very budget (24 problems x 32 samples, 4 teacher samples; seeds 0-4 of run_gate), rounded up
# to 0.01. A model that passes the full gate (128 x 32 x 8) then fails this test by noise with ~1% chance per
# check; it is a guard against regressions, the certification is the full gate (committed in
# tasks/assets/gate/gate.json, checked below). sd at this budget:
#   graph_paths  pass1 .028  gain .028  distinct .33  noncopy-ref .014  auc .026  dΔ .150  copy .042  pos .009
#     (task version 3, the shipped model of this commit; means pass1 .300 noncopy-ref +.135 auc .782 pos .033)
#   arith_target pass1 .035  gain .022  distinct .42  noncopy-ref .046  auc .011  dΔ .068  copy .049  pos  -
#     (task version 3, 4 x 128; means pass1 .298 gain .693 distinct 4.10 noncopy-ref +.036 auc .787 dΔ 1.77
#     copy .397; seeds 2 and 4 fail the bare thresholds at this budget: noncopy-ref -.027, pass1 .246)
#   code_synth   pass1 .028  gain .028  distinct .24  noncopy-ref .037  auc .010  dΔ .071  copy .043  pos  -
#     (task version 3, 3 x 64; means pass1 .516 distinct 3.20 noncopy-ref +.386 auc .976 dΔ 4.28 copy .533)
# (noncopy-ref: teacher_noncopy_pass1 - student pass@1 on the same problems; dΔ: delta_noncopy_correct_mean -
# delta_incorrect_mean). Re-derive them when a base model changes (issue 14, item 3).
MARGINS = {
    "graph_paths": {"student_pass1": 0.07, "pass_gain": 0.07, "distinct_correct": 0.83, "teacher_noncopy_pass1": 0.04,
                    "delta_auc": 0.07, "delta_noncopy_correct_mean": 0.38, "copy_rate": 0.11,
                    "positional_copy_share": 0.03},
    "arith_target": {"student_pass1": 0.09, "pass_gain": 0.06, "distinct_correct": 1.05, "teacher_noncopy_pass1": 0.12,
                     "delta_auc": 0.03, "delta_noncopy_correct_mean": 0.17, "copy_rate": 0.13},
    "code_synth": {"student_pass1": 0.07, "pass_gain": 0.07, "distinct_correct": 0.59, "teacher_noncopy_pass1": 0.10,
                   "delta_auc": 0.03, "delta_noncopy_correct_mean": 0.18, "copy_rate": 0.11},
}
# A shipped model that fails the full gate goes here (strict xfail, so that a fixed model turns these into
# failures that ask for the marker to go). All three (task version 3 of each) pass it.
FAILS_TODAY: dict[str, str] = {}
FULL_GATE_FAILS: set[str] = set()


@pytest.mark.slow
@pytest.mark.parametrize("task", [pytest.param(t, marks=pytest.mark.xfail(t in FAILS_TODAY, strict=True,
                                                                          reason=FAILS_TODAY.get(t, "")))
                                  for t in MARGINS])
def test_shipped_model_meets_thresholds_on_reduced_budget(task: str) -> None:
    report = reduced(task)
    m, e = report["metrics"], MARGINS[task]
    ref = report["details"]["student_pass1_on_demo_problems"]
    failing = {k for k, ok in {
        "student_pass1": 0.25 - e["student_pass1"] <= m["student_pass1"] <= 0.60 + e["student_pass1"],
        "pass_gain": m["pass_gain"] >= 0.30 - e["pass_gain"],
        "distinct_correct": m["distinct_correct"] >= 3 - e["distinct_correct"],
        "teacher_noncopy_pass1": m["teacher_noncopy_pass1"] >= ref - 0.02 - e["teacher_noncopy_pass1"],
        "delta_auc": m["delta_auc"] >= 0.70 - e["delta_auc"],
        "delta_noncopy_correct_mean":
            m["delta_noncopy_correct_mean"] - m["delta_incorrect_mean"] > -e["delta_noncopy_correct_mean"],
        "copy_rate": 0.3 - e["copy_rate"] <= m["copy_rate"] <= 0.7 + e["copy_rate"],
        "positional_copy_share": "positional_copy_share" not in e
                                 or m["positional_copy_share"] <= 0.05 + e["positional_copy_share"],
    }.items() if not ok}
    assert not failing, {k: m[k] for k in failing}


@pytest.mark.parametrize("task", [pytest.param(t, marks=pytest.mark.xfail(t in FULL_GATE_FAILS, strict=True,
                                                                          reason="issue 14, item 3"))
                                  for t in MARGINS])
def test_committed_full_gate_passes(task: str) -> None:
    from sdbench.task import load_task

    entry = read_gate(task, load_task(task).base_model())
    assert entry is not None and not entry["stale"], "rerun: sdbench tasks check NAME --write"
    assert entry["passed"], [c["name"] for c in entry["checks"] if c["passed"] is False]


# ---------------------------------------------------------------- broken models fail, with a table
def _random_model(tmp_path: Path) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from sdbench.core.model import load_tokenizer
    from sdbench.task import load_task

    base = load_task("graph_paths").base_model()
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(base)).save_pretrained(tmp_path / "random")
    load_tokenizer(base).save_pretrained(tmp_path / "random")
    return tmp_path / "random"


@pytest.mark.slow
@pytest.mark.parametrize("case", ["random_init", "other_task"])
def test_broken_model_fails_with_a_table(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sdbench.task import load_task

    task, model = (("graph_paths", _random_model(tmp_path)) if case == "random_init" else
                   ("arith_target", load_task("graph_paths").base_model()))   # another tokenizer and task
    with pytest.raises(SystemExit) as exit_info:
        main(["tasks", "check", task, "--model", str(model), "--problems", "8", "--samples", "4",
              "--teacher-samples", "2"])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert "FAIL" in captured.out and "gate: FAILED" in captured.out and "student_pass1" in captured.out


def test_unmeasurable_metrics_fail() -> None:
    from sdbench.gate import _checks

    metrics = dict.fromkeys(METRIC_KEYS)
    metrics.update(student_pass1=0.0, pass_gain=0.0, distinct_correct=0.0)
    checks = _checks(metrics, None, {})
    assert [c.passed for c in checks] == [False] * len(CHECKS)
    na = _checks(metrics, None, {"positional_copy_share": "graded by execution"})[-1]
    assert na.passed is None and "not applicable: graded by execution" in na.threshold


# ---------------------------------------------------------------- bad input: error + hint, exit 2
@pytest.mark.parametrize("kind", ["unknown_task", "missing", "file", "no_config", "write_with_model"])
def test_bad_input_is_a_user_error(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "weights.bin").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    args = {"unknown_task": ["graph_path"], "missing": ["graph_paths", "--model", str(tmp_path / "nope")],
            "file": ["graph_paths", "--model", str(tmp_path / "weights.bin")],
            "no_config": ["graph_paths", "--model", str(tmp_path / "empty")],
            "write_with_model": ["graph_paths", "--write", "--model", str(tmp_path / "empty")]}[kind]
    with pytest.raises(SystemExit) as exit_info:
        main(["tasks", "check", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith("error: ") and err[1].startswith("hint: "), err


# ---------------------------------------------------------------- the committed numbers
def test_write_and_read_gate(tmp_path: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    report = GateReport("graph_paths", str(model), False, dict.fromkeys(METRIC_KEYS, 0.5), [],
                        {"budget": {"problems": 1}})
    path = write_gate(report, tmp_path / "gate.json")
    write_gate(GateReport("code_synth", str(model), True, {}, [], {"budget": {}}), path)
    assert sorted(json.loads(path.read_text())) == ["code_synth", "graph_paths"]
    entry = read_gate("graph_paths", str(model), path)
    assert entry is not None and entry["stale"] is False and entry["metrics"]["copy_rate"] == 0.5
    (model / "model.safetensors").write_bytes(b"retrained")
    assert read_gate("graph_paths", str(model), path)["stale"] is True
    assert read_gate("arith_target", str(model), path) is None


def test_tasks_list_json_carries_the_committed_gate(capsys: pytest.CaptureFixture[str]) -> None:
    main(["tasks", "list", "--json"])
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    for name in ("graph_paths", "arith_target", "code_synth"):
        gate = rows[name]["gate"]
        assert gate is not None and set(gate["metrics"]) == set(METRIC_KEYS), name
        assert gate["budget"] == {**GateBudget().__dict__}, name   # committed numbers are full-budget ones
