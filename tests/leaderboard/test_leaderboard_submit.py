"""`sdbench leaderboard submit`: what it files, and every refusal as one clear line (UserError + CLI exit 2).

    pytest tests/leaderboard/test_leaderboard_submit.py
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from lb_fixtures import make_run

from sdbench.errors import UserError
from sdbench.leaderboard import Results, load_results, schema_json, submit
from sdbench.leaderboard.schema import ProblemCounts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("one") / "run", strategies=("base", "single_sampled_demo", "grpo"))


@pytest.fixture(scope="module")
def filed(one_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = submit(one_run, tmp_path_factory.mktemp("filed"), "good")
    assert path.stat().st_mode & 0o777 == 0o644   # published: readable by a web server and by git users
    return json.loads(path.read_text())


def _refused(doc: dict, tmp_path: Path, match: str) -> str:
    path = tmp_path / "candidate.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError, match=match) as info:
        submit(path, tmp_path / "results")
    assert "\n" not in info.value.message and info.value.hint
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").glob("*.json"))
    return info.value.message


def test_submit_files_a_complete_recomputable_results_document(filed: dict, one_run: Path) -> None:
    results = Results.model_validate(filed)
    assert results.schema_version == 1 and results.name == "good"
    assert len(results.cells) == 3 * 2 and {c.status for c in results.cells} == {"ok"}
    assert all(c.train and c.train.steps == 3 for c in results.cells)           # per-step log left behind
    summary = json.loads((one_run / "summary.json").read_text())
    assert [r["metrics"] for r in filed["summary"]["rows"]] == [r["metrics"] for r in summary["rows"]]
    prov = results.provenance
    assert prov.config_hash == "c0ffee00" and prov.seeds == [0, 1] and prov.models["graph_paths"].weights_sha256
    assert prov.tasks["graph_paths"].data_sha256 and prov.submitted and prov.run_time == "2026-11-28T00:00:00Z"
    assert {(p.distribution, p.version) for p in prov.plugins} >= {("sdbench", "0.1.0")}


def test_refuses_a_summary_that_does_not_match_its_counts(filed: dict, tmp_path: Path) -> None:
    doc = json.loads(json.dumps(filed))
    doc["summary"]["rows"][0]["metrics"]["pass@1"]["mean"] += 0.05
    message = _refused(doc, tmp_path, "summary does not match the per-problem counts")
    assert "pass@1.mean" in message
    doc = json.loads(json.dumps(filed))                      # or the counts changed under the summary
    problem = doc["cells"][0]["eval"]["test"]["problems"][0]
    problem["c"] = problem["n"] - problem["c"]
    problem["distinct_correct"] = problem["semantic_classes"] = min(problem["c"], 1)
    _refused(doc, tmp_path, "summary does not match the per-problem counts")


def test_refuses_a_wrong_schema_version(filed: dict, tmp_path: Path) -> None:
    _refused({**filed, "schema_version": 2}, tmp_path, "schema_version 2; this sdbench reads results schema version 1")


def test_refuses_nan(filed: dict, tmp_path: Path) -> None:
    doc = json.loads(json.dumps(filed))
    doc["cells"][1]["eval"]["test"]["problems"][2]["entropy"] = float("nan")
    _refused(doc, tmp_path, r"non-finite number \(NaN or Infinity\) at cells\[1\]\.eval\.test\.problems\[2\]\.entropy")
    doc = json.loads(json.dumps(filed))
    doc["summary"]["rows"][0]["metrics"]["pass@1"]["ci_high"] = float("inf")
    _refused(doc, tmp_path, "non-finite number")


def test_refuses_schema_violations(filed: dict, tmp_path: Path) -> None:
    doc = json.loads(json.dumps(filed))
    doc["cells"][0]["eval"]["test"]["problems"][0]["c"] = 99
    _refused(doc, tmp_path, "does not match results schema v1: cells.0.eval.test.problems.0")
    _refused({**filed, "name": "../escape"}, tmp_path, "does not match results schema v1: name")


def test_refuses_a_duplicate(one_run: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    first = submit(one_run, results, "first")
    with pytest.raises(UserError, match="results named 'first' are already submitted"):
        submit(one_run, results, "first")
    with pytest.raises(UserError, match="this run is already submitted as 'first'"):
        submit(one_run, results, "second")
    with pytest.raises(UserError, match="already submitted as 'first'"):
        submit(first, results, "third")                          # the same numbers as a results file
    assert sorted(p.name for p in results.iterdir()) == ["first.json"]


def test_refuses_failed_and_missing_cells(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", strategies=("base", "grpo"))
    record = run / "cells" / "graph_paths__grpo__seed1.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "status": "failed", "failure": {"phase": "train", "reason": "diverged"}}))
    with pytest.raises(UserError, match=r"1 failed cell\(s\): graph_paths__grpo__seed1"):
        submit(run, tmp_path / "results")
    # a cell that failed in setup has no model and a bare strategy: still this one line
    setup_failed = {k: data[k] for k in ("schema_version", "kind", "key", "task", "seed", "config_hash")}
    record.write_text(json.dumps({**setup_failed, "strategy": {"name": "grpo", "label": "grpo"}, "status": "failed",
                                  "failure": {"phase": "setup", "reason": "ImportError: x"}}))
    with pytest.raises(UserError, match=r"1 failed cell\(s\): graph_paths__grpo__seed1"):
        submit(run, tmp_path / "results")
    record.unlink()
    with pytest.raises(UserError, match="incomplete: 3 of 4 cells"):
        submit(run, tmp_path / "results")
    with pytest.raises(UserError, match="not an sdbench run directory"):
        submit(tmp_path, tmp_path / "results")


def test_cli_prints_one_line_and_exits_2(filed: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from sdbench.cli import main

    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**filed, "schema_version": 0}))
    with pytest.raises(SystemExit) as exit_info:
        main(["leaderboard", "submit", str(path), "--results", str(tmp_path / "results")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("error: ") and "schema_version 0" in err[0]
    assert err[1].startswith("hint: ")


def test_schema_file_is_current_and_mirrors_problem_results() -> None:
    from sdbench.eval.evaluate import ProblemResult

    committed = ROOT / "leaderboard" / "schema.json"
    assert committed.read_text() == schema_json(), "run `sdbench leaderboard schema` and commit leaderboard/schema.json"
    assert set(ProblemCounts.model_fields) == {f.name for f in dataclasses.fields(ProblemResult)}


def test_load_results_round_trips(filed: dict, tmp_path: Path) -> None:
    path = tmp_path / "good.json"
    path.write_text(json.dumps(filed))
    assert load_results(path).model_dump(mode="json") == filed
