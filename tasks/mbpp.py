"""`mbpp`: Mostly Basic Python Problems (google-research-datasets/mbpp, config `full`), sandbox-graded.

    sdbench run --tasks mbpp --model Qwen/Qwen2.5-Coder-0.5B-Instruct --config eval_test_only.yaml
    sdbench verify --task mbpp --samples gens.jsonl --data-path tasks/fixtures/mbpp

Splits: train, test, validation (no `ood`: set `evaluation: {splits: [test]}`). Schema (`full`):
`{"task_id", "text", "code", "test_list", "test_setup_code", "challenge_test_list"}`; the
`sanitized` config's `prompt` column is accepted in place of `text`.

The prompt is the standard MBPP one (Austin et al. 2021): the task text and its three asserts, so
the model knows the function's name and signature. A completion is code (fenced or not; `[BEGIN]`
/ `[DONE]` markers dropped); the reference is the dataset's `code`. Grading:
`sdbench.sandbox.run_tests(code, test_setup_code + test_list)` — only the judge process decides.
Classes: see `sdbench.tasks._code` (behaviour on mutated test inputs `io:<hash>`, else a normalized
AST hash; semantic class = AST shape).
Run the tests with `pytest tests/test_real_tasks.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from sdbench.errors import UserError
from sdbench.task import Problem, Verdict, register_task
from sdbench.tasks._code import extract_code, grade, literal_calls, make_probes
from sdbench.tasks._realdata import RealDataTask, Row

PROMPT = ("You are an expert Python programmer, and here is your task: {text} "
          "Your code should pass these tests:\n\n{tests}\n")


def entry_point(tests: Sequence[str]) -> str:
    """The function the tests call: the first name they read that they do not define."""
    from sdbench.sandbox import free_names

    names = free_names("\n".join(tests))
    for line in tests:  # prefer the first name called in the first assert
        for name in names:
            if f"{name}(" in line:
                return name
    if not names:
        raise UserError("an mbpp row's tests call no function", "check the data's test_list column")
    return names[0]


@register_task("mbpp")
class MBPP(RealDataTask):
    """MBPP: write a Python function from a one-line spec; the asserts run in the sandbox."""

    name: ClassVar[str] = "mbpp"
    splits: ClassVar[tuple[str, ...]] = ("train", "test", "validation")
    max_new_tokens: ClassVar[int] = 512
    hub_id: ClassVar[str] = "google-research-datasets/mbpp"
    hub_config: ClassVar[str | None] = "full"
    columns: ClassVar[tuple[str, ...]] = ("task_id", "code", "test_list")
    default_model: ClassVar[str] = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    solution_word: ClassVar[str] = "program"

    def make_problem(self, split: str, index: int, row: Row) -> Problem:
        text = row.get("text") or row.get("prompt")
        if not text:
            raise UserError(f"mbpp row {row['task_id']} has neither 'text' nor 'prompt'",
                            "use the schema of google-research-datasets/mbpp (full or sanitized)")
        tests_list = list(row["test_list"])
        setup = row.get("test_setup_code") or ""
        entry = entry_point(tests_list)
        native = str(row["task_id"])
        calls = [c for t in tests_list for c in literal_calls(t, entry)]
        return Problem(id=f"{self.name}/{native}", prompt=PROMPT.format(text=text.strip(), tests="\n".join(tests_list)),
                       reference=row["code"],
                       data={"entry_point": entry, "tests": setup + "\n" + "\n".join(tests_list) + "\n",
                             "setup": setup, "probes": make_probes(calls, native), "native_id": native})

    @staticmethod
    def program(problem: Problem, completion: str) -> str:
        return extract_code(completion)

    def verify(self, problem: Problem, completions: Sequence[str]) -> list[Verdict]:
        return grade(problem, completions, self.program, problem.data["tests"], problem.data["probes"],
                     problem.data["entry_point"], setup=problem.data["setup"])
