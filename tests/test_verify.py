"""Tests of `sdbench verify`: grading generations made elsewhere, offline, on the shipped fixtures.

Reference solutions score pass@1 = 1.0 for every real-data task, wrong ones 0.0, cheating code fails
in the sandbox, `--out` writes one graded line per sample, and bad input is a one-line user error.
Run: pytest tests/test_verify.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdbench.cli import main
from sdbench.eval import pass_at_k
from sdbench.task import load_task
from sdbench.tasks._realdata import FIXTURES

REAL = ("gsm8k", "math500", "humaneval", "mbpp")
WRONG = {"gsm8k": "#### 987654321", "math500": "\\boxed{987654321}", "humaneval": "    return None\n",
         "mbpp": "def nothing():\n    return None\n"}


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def verify(capsys: pytest.CaptureFixture[str], task: str, samples: Path, *extra: str) -> dict:
    main(["verify", "--task", task, "--samples", str(samples), "--data-path", str(FIXTURES / task), "--json",
          *extra])
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", REAL)
def test_references_score_pass_at_1_and_wrong_answers_zero(name: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    task = load_task(name, data_path=str(FIXTURES / name))
    problems = [p for split in task.splits for p in task.all_problems(split)]
    good = write(tmp_path / "good.jsonl", [{"problem_id": p.id, "completion": p.reference}
                                           for p in problems for _ in range(2)])
    summary = verify(capsys, name, good, "--out", str(tmp_path / "graded.jsonl"))
    assert summary["problems"] == len(problems) and summary["samples_per_problem"] == {"min": 2, "max": 2}
    assert summary["metrics"]["pass@1"] == 1.0 and summary["metrics"]["pass@2"] == 1.0
    assert summary["metrics"]["distinct_correct"] == 1.0   # the same solution twice is one solution
    graded = [json.loads(line) for line in (tmp_path / "graded.jsonl").read_text().splitlines()]
    assert len(graded) == 2 * len(problems)
    assert all(set(g) == {"problem_id", "correct", "status", "functional_class"} and g["correct"] for g in graded)
    bad = write(tmp_path / "bad.jsonl", [{"problem_id": p.id, "completion": WRONG[name]} for p in problems])
    assert verify(capsys, name, bad)["metrics"]["pass@1"] == 0.0


def test_pass_at_k_and_diversity_over_uneven_sample_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = load_task("gsm8k", data_path=str(FIXTURES / "gsm8k"))
    a = next(p for p in task.all_problems("test") if p.data["answer"] == "72")
    b = next(p for p in task.all_problems("test") if p.data["answer"] != "72")
    other_route = "Twice 48 is 96, minus 24 = 72\n#### 72"   # correct, through other quantities
    rows = ([{"problem_id": a.id, "completion": c} for c in (a.reference, other_route, "#### 1", "#### 2")]
            + [{"problem_id": b.id, "completion": c} for c in (b.reference, "#### 1", "#### 2", "#### 3", "#### 4")])
    summary = verify(capsys, "gsm8k", write(tmp_path / "s.jsonl", rows))
    metrics = summary["metrics"]
    assert set(metrics) >= {"pass@1", "pass@2", "pass@4", "distinct_correct"} and "pass@8" not in metrics
    assert metrics["pass@1"] == pytest.approx((2 / 4 + 1 / 5) / 2)
    assert metrics["pass@4"] == pytest.approx((1.0 + pass_at_k(5, 1, 4)) / 2)
    assert metrics["distinct_correct"] == pytest.approx((2 + 1) / 2)


def test_code_cheats_fail_and_dataset_ids_resolve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cheats = ["    print('PASSED')\n    import sys\n    sys.exit(0)\n", "    import os\n    os._exit(0)\n"]
    rows = [{"problem_id": "HumanEval/0", "completion": c} for c in cheats]
    rows.append({"problem_id": "HumanEval/0",
                 "completion": "```python\nfrom typing import List\n\ndef has_close_elements(numbers: List[float], "
                               "threshold: float) -> bool:\n    s = sorted(numbers)\n    return any(b - a < threshold "
                               "for a, b in zip(s, s[1:]))\n```"})
    out = tmp_path / "graded.jsonl"
    summary = verify(capsys, "humaneval", write(tmp_path / "s.jsonl", rows), "--out", str(out))
    graded = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["correct"] for g in graded] == [False, False, True]
    assert {g["problem_id"] for g in graded} == {"humaneval/HumanEval/0"}
    assert summary["metrics"]["pass@1"] == pytest.approx(1 / 3)


def test_verify_a_generated_task_by_its_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problem = load_task("graph_paths").problems("test", 3, seed=0)[2]
    rows = [{"problem_id": problem.id, "completion": problem.reference}, {"problem_id": problem.id, "completion": "x"}]
    main(["verify", "--task", "graph_paths", "--samples", str(write(tmp_path / "s.jsonl", rows)), "--json"])
    assert json.loads(capsys.readouterr().out)["metrics"]["pass@1"] == 0.5


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"),
    ('{"problem_id": "gsm8k/test/0", "completion": "#### 1"}\n{not json\n', "line 2 is not JSON"),
    ('{"problem_id": "gsm8k/test/0"}\n', "line 1 lacks"),
    ('{"problem_id": "gsm8k/test/99", "completion": "#### 1"}\n', "'gsm8k/test/99' of task gsm8k is unknown"),
    ('{"problem_id": "0", "completion": "#### 1"}\n', "ambiguous"),
    ("", "holds no samples"),
])
def test_bad_input_is_a_user_error(content: str | None, message: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "samples.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", "--task", "gsm8k", "--samples", str(path), "--data-path", str(FIXTURES / "gsm8k")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: ") and message in err[0] and err[1].startswith("hint: ") and len(err) == 2
