"""`sdbench leaderboard submit`: what it files, and every refusal as one clear line (UserError + CLI exit 2),
schema-1 results and run directories included.

    pytest tests/leaderboard/test_leaderboard_submit.py

Refusals that come before re-aggregation use a synthetic results document (lb_fixtures.make_results);
filing and the summary check use a synthetic run directory aggregated by sdbench.runs.aggregate.summarize.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from lb_fixtures import make_results, make_run

from sdbench.errors import UserError
from sdbench.leaderboard import Results, load_results, schema_json, submit

ROOT = Path(__file__).resolve().parents[2]
V1_MESSAGE = "is schema 1 (endpoint-only evaluation); this sdbench reads schema 2"
V1_HINT = "re-run the suite with this sdbench (`sdbench run`, same config) and submit the new run directory"


@pytest.fixture(scope="module")
def doc() -> dict:
    return make_results("good", strategies=("base", "single_sampled_demo", "grpo"))


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("one") / "run", strategies=("base", "single_sampled_demo", "grpo"))


@pytest.fixture(scope="module")
def filed(one_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = submit(one_run, tmp_path_factory.mktemp("filed"), "good")
    assert path.stat().st_mode & 0o777 == 0o644   # published: readable by a web server and by git users
    # compact JSON, gzipped without a timestamp: the same results are the same bytes
    assert path.name == "good.json.gz" and path.read_bytes()[4:8] == b"\0\0\0\0"
    return json.loads(gzip.decompress(path.read_bytes()))


def _refused(doc: dict, tmp_path: Path, match: str) -> UserError:
    path = tmp_path / "candidate.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError, match=match) as info:
        submit(path, tmp_path / "results")
    assert "\n" not in info.value.message and info.value.hint
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").iterdir())
    return info.value


def test_submit_files_a_complete_recomputable_results_document(filed: dict, one_run: Path) -> None:
    results = Results.model_validate(filed)
    assert results.schema_version == 2 and results.name == "good"
    assert len(results.cells) == 3 * 2 and {c.status for c in results.cells} == {"ok"}
    trained = [c for c in results.cells if c.strategy.name != "base"]
    assert all(c.train and c.train.steps == 4 and c.train.log == [] for c in trained)   # per-step log left behind
    assert all([p.step for p in c.trajectory] == [0, 2, 4] and c.best_val_step is not None for c in trained)
    assert all(set(c.eval) == {"best_val", "final"} and c.training["teacher"] == "ema" for c in results.cells)
    summary = json.loads((one_run / "summary.json").read_text())
    for part in ("rows", "trajectories", "frontier", "deltas"):
        assert filed["summary"][part] == summary[part], part
    assert {r["checkpoint"] for r in filed["summary"]["rows"]} == {"best_val", "final"}
    prov = results.provenance
    assert prov.config_hash == "c0ffee00" and prov.seeds == [0, 1] and prov.models["graph_paths"].weights_sha256
    assert prov.tasks["graph_paths"].data_sha256 and prov.submitted and prov.run_time == "2026-11-28T00:00:00Z"
    assert {(p.distribution, p.version) for p in prov.plugins} >= {("sdbench", "0.1.0")}


def test_refuses_a_summary_that_does_not_match_its_counts(filed: dict, tmp_path: Path) -> None:
    doc = json.loads(json.dumps(filed))
    doc["summary"]["rows"][0]["metrics"]["pass@1"]["mean"] += 0.05
    assert "pass@1.mean" in _refused(doc, tmp_path, "summary does not match the per-problem counts").message
    doc = json.loads(json.dumps(filed))                      # or the counts changed under the summary
    problem = doc["cells"][0]["eval"]["best_val"]["test"]["problems"][0]
    problem["c"] = problem["n"] - problem["c"]
    problem["distinct_correct"] = problem["semantic_classes"] = min(problem["c"], 1)
    _refused(doc, tmp_path, "summary does not match the per-problem counts")
    doc = json.loads(json.dumps(filed))                      # the trajectory and the frontier are checked too
    trained = next(c for c in doc["cells"] if c["strategy"]["name"] == "grpo")
    trained["trajectory"][-1]["problems"][0]["kl_from_base"] += 0.5
    _refused(doc, tmp_path, r"summary does not match the per-problem counts: (trajectories|frontier)\.")


def test_refuses_a_mechanism_that_does_not_match_its_class_histograms(tmp_path: Path) -> None:
    """Schema 3: the mechanism section is recomputed from the cells' class histograms too (the committed real-model
    results carry one): an edited dominant share, or a histogram edited under it, is refused."""
    committed = ROOT / "leaderboard" / "results" / "sdbench-real-quick-smollm2-nl_between.json.gz"
    filed = json.loads(gzip.decompress(committed.read_bytes()))
    doc = json.loads(json.dumps(filed))
    doc["summary"]["mechanism"]["arms"][1]["steps"][-1]["dominant_share"]["mean"] += 0.01
    assert "dominant_share.mean" in _refused(doc, tmp_path, "summary does not match the per-problem counts: "
                                                            "mechanism").message
    doc = json.loads(json.dumps(filed))
    cell = next(c for c in doc["cells"] if c["strategy"]["name"] == "grpo")
    problem = next(p for p in cell["trajectory"][-1]["problems"] if len(p.get("correct_classes") or {}) >= 2)
    first, second = sorted(problem["correct_classes"])[:2]
    problem["correct_classes"][first] += problem["correct_classes"].pop(second)    # same counts, other classes
    problem["distinct_correct"] -= 1
    problem["semantic_classes"] = max(problem["semantic_classes"] - 1, 1)
    _refused(doc, tmp_path, "summary does not match the per-problem counts")


def test_refuses_schema_1_results_with_one_line(doc: dict, tmp_path: Path) -> None:
    error = _refused({**doc, "schema_version": 1}, tmp_path, "schema 1")
    assert error.message == f"{tmp_path / 'candidate.json'} {V1_MESSAGE}" and error.hint == V1_HINT


def test_refuses_a_schema_1_run_directory(tmp_path: Path) -> None:
    run = tmp_path / "old-run"
    (run / "cells").mkdir(parents=True)
    for name, data in (("config.json", {"config": {}, "config_hash": "x"}), ("provenance.json", {}),
                       ("summary.json", {"schema_version": 1, "rows": [], "failed": [], "deltas": []})):
        (run / name).write_text(json.dumps(data))
    with pytest.raises(UserError) as info:
        submit(run, tmp_path / "results")
    assert info.value.message == f"{run / 'summary.json'} {V1_MESSAGE}" and info.value.hint == V1_HINT


def test_refuses_another_schema_version(doc: dict, tmp_path: Path) -> None:
    _refused({**doc, "schema_version": 3}, tmp_path, "schema_version 3; this sdbench reads results schema version 2")


def test_refuses_nan(doc: dict, tmp_path: Path) -> None:
    bad = json.loads(json.dumps(doc))
    bad["cells"][1]["eval"]["final"]["test"]["problems"][2]["entropy"] = float("nan")
    _refused(bad, tmp_path,
             r"non-finite number \(NaN or Infinity\) at cells\[1\]\.eval\.final\.test\.problems\[2\]\.entropy")
    bad = json.loads(json.dumps(doc))
    bad["summary"]["frontier"][0]["kl_budget"] = float("inf")
    _refused(bad, tmp_path, "non-finite number")


def test_refuses_schema_violations(doc: dict, tmp_path: Path) -> None:
    bad = json.loads(json.dumps(doc))
    bad["cells"][0]["eval"]["best_val"]["test"]["problems"][0]["c"] = 99
    _refused(bad, tmp_path, "does not match results schema v2: cells.0.eval.best_val.test.problems.0")
    bad = json.loads(json.dumps(doc))
    bad["summary"]["rows"][0]["checkpoint"] = "last"
    _refused(bad, tmp_path, "does not match results schema v2: summary.rows.0.checkpoint")
    _refused({**doc, "name": "../escape"}, tmp_path, "does not match results schema v2: name")


def test_refuses_a_duplicate(one_run: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    first = submit(one_run, results, "first")
    with pytest.raises(UserError, match="results named 'first' are already submitted"):
        submit(one_run, results, "first")
    with pytest.raises(UserError, match="this run is already submitted as 'first'"):
        submit(one_run, results, "second")
    with pytest.raises(UserError, match="already submitted as 'first'"):
        submit(first, results, "third")                          # the same numbers as a results file
    assert sorted(p.name for p in results.iterdir()) == ["first.json.gz"]


def test_refuses_failed_and_missing_cells(doc: dict, tmp_path: Path) -> None:
    bad = json.loads(json.dumps(doc))
    key = bad["cells"][3]["key"]
    bad["cells"][3] = {**bad["cells"][3], "status": "failed", "failure": {"phase": "train", "reason": "diverged"}}
    _refused(bad, tmp_path, rf"1 failed cell\(s\): {key}")
    # a cell that failed in setup has no model and a bare strategy: still this one line
    bad["cells"][3] = {k: doc["cells"][3][k] for k in ("schema_version", "kind", "key", "task", "seed", "config_hash")}
    bad["cells"][3] |= {"strategy": {"name": "grpo", "label": "grpo"}, "status": "failed",
                        "failure": {"phase": "setup", "reason": "ImportError: x"}}
    _refused(bad, tmp_path, rf"1 failed cell\(s\): {key}")
    del bad["cells"][3]
    _refused(bad, tmp_path, "incomplete: 5 of 6 cells")
    with pytest.raises(UserError, match="not an sdbench run directory"):
        submit(tmp_path, tmp_path / "results")


def test_cli_prints_the_schema_1_line_and_exits_2(doc: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from sdbench.cli import main

    path = tmp_path / "sdbench-full-v1.json"
    path.write_text(json.dumps({**doc, "schema_version": 1}))
    with pytest.raises(SystemExit) as exit_info:
        main(["leaderboard", "submit", str(path), "--results", str(tmp_path / "results")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {path} {V1_MESSAGE}", f"hint: {V1_HINT}"]


def test_schema_file_is_current_and_embeds_the_record_models() -> None:
    from sdbench.leaderboard import schema
    from sdbench.results import record

    committed = ROOT / "leaderboard" / "schema.json"
    assert committed.read_text() == schema_json(), "run `sdbench leaderboard schema` and commit leaderboard/schema.json"
    assert Results.model_fields["cells"].annotation == list[record.CellRecord]
    assert Results.model_fields["summary"].annotation is record.Summary
    assert not {"ProblemCounts", "SplitEval", "SummaryRow", "Delta"} & set(vars(schema))   # not re-declared
    defs = json.loads(committed.read_text())["$defs"]
    assert {"CellRecord", "EvalPoint", "ProblemCounts", "Summary", "FrontierEntry", "TrajectoryEntry"} <= set(defs)
    assert json.loads(committed.read_text())["properties"]["schema_version"]["const"] == 2


def test_load_results_round_trips(filed: dict, tmp_path: Path) -> None:
    path = tmp_path / "good.json"
    path.write_text(json.dumps(filed))
    assert load_results(path).model_dump(mode="json") == filed


def test_a_results_file_is_filed_as_it_is(filed: dict, tmp_path: Path) -> None:
    """Submitting a results file (say, a schema-2 one that predates a field) files its document unchanged, only
    compressed: no null is written for a field it does not have; a second submit of it is a duplicate."""
    doc = json.loads(json.dumps(filed))
    del doc["provenance"]["reused"]                 # a document from before `reused` existed
    source = tmp_path / "older.json"
    source.write_text(json.dumps(doc, indent=1))
    path = submit(source, tmp_path / "results", "older")
    assert json.loads(gzip.decompress(path.read_bytes())) == {**doc, "name": "older"}
    with pytest.raises(UserError, match="already submitted as 'older'"):
        submit(path, tmp_path / "results", "again")
