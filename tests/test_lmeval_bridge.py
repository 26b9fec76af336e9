"""lm-eval bridge, offline: an exported task runs through lm-eval's own CLI on the tiny toy model, and
lm-eval's pass@k / distinct-correct equal sdbench's grading of lm-eval's logged samples; `sdbench eval
--harness lm-eval` does the same from sdbench.

    pytest tests/test_lmeval_bridge.py

The toy task is registered by tests/toy_cli.py, so lm-eval runs in a process that imports it first
(an installed task, e.g. graph_paths, needs no such wrapper). About 60 s on two idle cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import TESTS, TOY_CLI

from sdbench.errors import UserError

LM_EVAL_WITH_TOY = ("import sys; sys.path.insert(0, sys.argv.pop(1)); import toy_cli; "
                    "from lm_eval.__main__ import cli_evaluate; sys.argv[0] = 'lm_eval'; cli_evaluate()")


@pytest.fixture(scope="module")
def env(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    cache = tmp_path_factory.mktemp("hf_datasets")
    return {**env, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(cache),
            "TOKENIZERS_PARALLELISM": "false"}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


@pytest.mark.slow
def test_lm_eval_cli_on_the_export_reports_sdbench_pass_at_k(env, toy_task, toy_model_dir, tmp_path) -> None:
    from sdbench.eval.passk import pass_at_k

    tasks_dir, out = tmp_path / "lm_tasks", tmp_path / "lm_out"
    run([TOY_CLI, "export", "lm-eval", "--tasks", "toy_pick", "--out", str(tasks_dir), "--samples", "8",
         "--problems", "6"], env)
    yaml_text = (tasks_dir / "sdbench_toy_pick.yaml").read_text()
    for line in ("repeats: 8", "function: take_first_k", "process_results: !function utils.process_results",
                 "custom_dataset: !function utils.docs", "sdbench_docs: sdbench_toy_pick.jsonl",
                 "do_sample: true", "temperature: 1.0", "max_gen_toks: 3", "until: []"):
        assert line in yaml_text
    docs = [json.loads(line) for line in (tasks_dir / "sdbench_toy_pick.jsonl").read_text().splitlines()]
    assert len(docs) == 6 and all(d["text"] == "<bos> " + d["prompt"] for d in docs)   # sdbench's encoding

    run(["-c", LM_EVAL_WITH_TOY, str(TESTS), "run", "--model", "hf", "--model_args", f"pretrained={toy_model_dir}",
         "--include_path", str(tasks_dir), "--tasks", "sdbench_toy_pick", "--limit", "4", "--device", "cpu",
         "--log_samples", "--output_path", str(out), "--seed", "0"], env)
    reported = json.loads(next(out.rglob("results_*.json")).read_text())["results"]["sdbench_toy_pick"]
    samples_file = next(out.rglob("samples_sdbench_toy_pick_*.jsonl"))
    logged = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert len(logged) == 4

    # sdbench grades lm-eval's own samples: its verifier, its estimator, averaged over problems
    problems = {p.id: p for p in toy_task.problems("test", 6)}
    counts, distinct = [], []
    for entry in logged:
        completions = entry["filtered_resps"][0]
        assert len(completions) == 8
        verdicts = toy_task.verify(problems[entry["doc"]["id"]], completions)
        counts.append(sum(v.correct for v in verdicts))
        distinct.append(len({v.functional_class for v in verdicts if v.correct}))
    for k in (1, 2, 4, 8):
        want = sum(pass_at_k(8, c, k) for c in counts) / len(counts)
        assert reported[f"pass@{k},keep-all"] == pytest.approx(want, abs=1e-12)
    assert reported["distinct_correct,keep-all"] == pytest.approx(sum(distinct) / len(distinct), abs=1e-12)
    assert 0 < sum(counts) < 32            # the tiny model solves some, not all: the numbers mean something
    verified = json.loads(run([TOY_CLI, "verify", "--task", "toy_pick", "--samples", str(samples_file), "--json"],
                              env).stdout)    # `sdbench verify` reads the file lm-eval's CLI wrote
    assert verified["samples"] == 32
    for k in (1, 2, 4, 8):
        assert verified["metrics"][f"pass@{k}"] == pytest.approx(reported[f"pass@{k},keep-all"], abs=1e-12)


@pytest.mark.slow
def test_sdbench_eval_runs_lm_eval_and_its_numbers_agree_with_sdbench(env, toy_model_dir, tmp_path) -> None:
    report = tmp_path / "eval.json"
    done = run([TOY_CLI, "eval", "--model", toy_model_dir, "--harness", "lm-eval", "--tasks", "toy_pick",
                "--samples", "8", "--problems", "4", "--out", str(report)], env)
    assert "equal sdbench's regrade" in done.stdout
    entry = json.loads(report.read_text())["tasks"]["toy_pick"]
    assert entry["agree"] is True and entry["problems"] == 4
    assert set(entry["lm_eval"]) == {"pass@1", "pass@2", "pass@4", "pass@8", "distinct_correct", "semantic_classes"}

    native = tmp_path / "native.json"
    run([TOY_CLI, "eval", "--model", toy_model_dir, "--tasks", "toy_pick", "--samples", "8", "--problems", "4",
         "--out", str(native)], env)
    own = json.loads(native.read_text())["tasks"]["toy_pick"]["sdbench"]
    assert set(own) == set(entry["sdbench"]) | {"entropy"} and 0 <= own["pass@1"] <= own["pass@8"] <= 1


def test_export_checks_its_inputs(toy_task, tmp_path) -> None:
    from sdbench.lmeval_bridge import export, grade, task_name

    with pytest.raises(UserError, match="power of two"):
        export(["toy_pick"], tmp_path, samples=6)
    with pytest.raises(UserError, match="unknown split"):
        export(["toy_pick"], tmp_path, samples=4, split="validation")
    assert export(["toy_pick"], tmp_path, samples=4, problems=2, split="ood") == [task_name("toy_pick", "ood")]
    doc = json.loads((tmp_path / "sdbench_toy_pick_ood.jsonl").read_text().splitlines()[0])
    letters = toy_task.problems("ood", 2)[0].data["letters"]
    metrics = grade(doc, [letters[0], letters[0], letters[1], "z"])
    assert metrics["pass@1"] == pytest.approx(0.75) and metrics["pass@4"] == 1.0
    assert metrics["distinct_correct"] == 2.0


def test_an_export_moved_elsewhere_loads_through_lm_eval(toy_task, tmp_path, monkeypatch) -> None:
    import shutil

    from lm_eval.tasks import TaskManager

    from sdbench.lmeval_bridge import export

    (name,) = export(["toy_pick"], tmp_path / "made", samples=4, problems=5)
    moved = Path(shutil.move(tmp_path / "made", tmp_path / "moved" / "lm_tasks"))
    for path in moved.iterdir():          # nothing in it names where it was made, nor any absolute path
        assert str(tmp_path) not in path.read_text()
    assert "data_files" not in (moved / f"{name}.yaml").read_text()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)          # a path relative to the working directory would not resolve
    task = TaskManager(include_path=str(moved), include_defaults=False).load([name])["tasks"][name]
    docs = list(task.test_docs())
    assert docs == [json.loads(line) for line in (moved / f"{name}.jsonl").read_text().splitlines()]
    assert [d["id"] for d in docs] == [p.id for p in toy_task.problems("test", 5)]


class _Scripted:
    """An lm-eval LM whose completions follow a fixed script; records them per sdbench problem id."""

    SCRIPT = (" a", "b", " c ", "zz", "d", " e", "", "f", "g", " h", "i", "j", "a b", " x")

    @classmethod
    def make(cls) -> Any:
        from lm_eval.api.model import LM

        class Scripted(LM):
            def __init__(self) -> None:
                super().__init__()
                self.written: dict[str, list[str]] = {}

            def loglikelihood(self, requests: list[Any]) -> list[Any]:
                raise NotImplementedError

            def loglikelihood_rolling(self, requests: list[Any]) -> list[Any]:
                raise NotImplementedError

            def generate_until(self, requests: list[Any]) -> list[str]:
                out = []
                for request in requests:    # lm-eval passes each document's request `repeats` times
                    done = self.written.setdefault(request.doc["id"], [])
                    out.append(cls.SCRIPT[(5 * len(self.written) + 3 * len(done)) % len(cls.SCRIPT)])
                    done.append(out[-1])
                return out

        return Scripted()


@pytest.fixture(scope="module")
def lm_eval_log(toy_task, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]], dict]:
    """(samples_*.jsonl written by lm-eval's own evaluator and EvaluationTracker, as `lm_eval run
    --log_samples` writes it; the completions per problem id; lm-eval's results) for 6 problems, n = 8."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    from sdbench.lmeval_bridge import export

    root = tmp_path_factory.mktemp("lm_eval_log")
    (name,) = export(["toy_pick"], root / "lm_tasks", samples=8, problems=6)
    model, tracker = _Scripted.make(), EvaluationTracker(output_path=str(root / "out"))
    out = simple_evaluate(model=model, tasks=[name], log_samples=True, evaluation_tracker=tracker,
                          task_manager=TaskManager(include_path=str(root / "lm_tasks"), include_defaults=False))
    tracker.save_results_aggregated(results=out, samples=out["samples"])    # what lm_eval's CLI does
    for task in out["configs"]:
        tracker.save_results_samples(task_name=task, samples=out["samples"][task])
    return next((root / "out").rglob(f"samples_{name}_*.jsonl")), model.written, out["results"][name]


def verify_json(capsys: pytest.CaptureFixture[str], samples: Path, out: Path) -> dict:
    from sdbench.cli import main

    main(["verify", "--task", "toy_pick", "--samples", str(samples), "--out", str(out), "--json"])
    return json.loads(capsys.readouterr().out)


def test_verify_grades_lm_eval_sample_logs_as_its_own_format(lm_eval_log, tmp_path, capsys) -> None:
    from sdbench.lmeval_bridge import metric_names

    path, written, reported = lm_eval_log
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 6 and {"doc_id", "doc", "arguments", "resps", "filtered_resps", "filter"} <= set(records[0])
    assert [r["filtered_resps"][0] for r in records] == [written[r["doc"]["id"]] for r in records]

    logged = verify_json(capsys, path, tmp_path / "from_log.jsonl")
    own = tmp_path / "own.jsonl"           # the same completions, one sdbench line each, in the log's order
    own.write_text("".join(json.dumps({"problem_id": r["doc"]["id"], "completion": c}) + "\n"
                           for r in records for c in written[r["doc"]["id"]]))
    assert logged == verify_json(capsys, own, tmp_path / "from_own.jsonl")
    assert (tmp_path / "from_log.jsonl").read_text() == (tmp_path / "from_own.jsonl").read_text()
    assert logged["problems"] == 6 and logged["samples_per_problem"] == {"min": 8, "max": 8}   # repeats
    for metric in metric_names(8):        # and lm-eval's own numbers (utils.py's process_results)
        assert reported[f"{metric},keep-all"] == pytest.approx(logged["metrics"][metric], abs=1e-12)
    assert 0 < logged["metrics"]["pass@1"] < 1          # some right, some wrong: the grades mean something


def _drop_id(record: dict) -> dict:
    return {**record, "doc": {k: v for k, v in record["doc"].items() if k != "id"}}


@pytest.mark.parametrize(("corrupt", "message"), [
    (lambda r: json.dumps(r)[:-9], "line 2 is not JSON"),
    (lambda r: json.dumps(_drop_id(r)), "line 2 is not an lm-eval sample record: its doc has no sdbench 'id'"),
    (lambda r: json.dumps({**r, "filtered_resps": [[1, 2]]}), "line 2 is not an lm-eval sample record: a response"),
    (lambda r: json.dumps({"problem_id": r["doc"]["id"], "completion": "a"}),
     "line 2 is not an lm-eval sample record: it has no 'doc'"),
    (lambda r: json.dumps({**r, "doc": {**r["doc"], "sdbench_task": "graph_paths"}}),
     "line 2 is a sample of sdbench task 'graph_paths', not 'toy_pick'"),
])
def test_a_malformed_lm_eval_record_is_one_user_error(corrupt, message, lm_eval_log, tmp_path, capsys) -> None:
    from sdbench.cli import main

    lines = lm_eval_log[0].read_text().splitlines()
    bad = tmp_path / "samples.jsonl"
    bad.write_text("\n".join([lines[0], corrupt(json.loads(lines[1])), *lines[2:]]) + "\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", "--task", "toy_pick", "--samples", str(bad)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith("error: samples.jsonl ") and message in err[0], err
    assert err[1].startswith("hint: ")
