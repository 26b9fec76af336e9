"""lm-eval bridge, offline: an exported task runs through lm-eval's own CLI on the tiny toy model, and
lm-eval's pass@k / distinct-correct equal sdbench's grading of lm-eval's logged samples; `sdbench eval
--harness lm-eval` does the same from sdbench.

    pytest tests/test_lmeval_bridge.py

The toy task is registered by tests/toy_cli.py, so lm-eval runs in a process that imports it first
(an installed task, e.g. graph_paths, needs no such wrapper). About 60 s on two idle cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdbench.errors import UserError

TESTS = Path(__file__).parent
TOY_CLI = str(TESTS / "toy_cli.py")
LM_EVAL_WITH_TOY = ("import sys; sys.path.insert(0, sys.argv.pop(1)); import toy_cli; "
                    "from lm_eval.__main__ import cli_evaluate; sys.argv[0] = 'lm_eval'; cli_evaluate()")


@pytest.fixture(scope="module")
def env(toy_model_dir: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    cache = tmp_path_factory.mktemp("hf_datasets")
    return {**os.environ, "TOY_MODEL_DIR": toy_model_dir, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_CACHE": str(cache), "COLUMNS": "120", "TOKENIZERS_PARALLELISM": "false"}


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
                 "do_sample: true", "temperature: 1.0", "max_gen_toks: 3", "until: []"):
        assert line in yaml_text
    docs = [json.loads(line) for line in (tasks_dir / "sdbench_toy_pick.jsonl").read_text().splitlines()]
    assert len(docs) == 6 and all(d["text"] == "<bos> " + d["prompt"] for d in docs)   # sdbench's encoding

    run(["-c", LM_EVAL_WITH_TOY, str(TESTS), "run", "--model", "hf", "--model_args", f"pretrained={toy_model_dir}",
         "--include_path", str(tasks_dir), "--tasks", "sdbench_toy_pick", "--limit", "4", "--device", "cpu",
         "--log_samples", "--output_path", str(out), "--seed", "0"], env)
    reported = json.loads(next(out.rglob("results_*.json")).read_text())["results"]["sdbench_toy_pick"]
    logged = [json.loads(line) for line in next(out.rglob("samples_sdbench_toy_pick_*.jsonl")).read_text().splitlines()]
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
