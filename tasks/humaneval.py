"""`humaneval`: OpenAI HumanEval (openai/openai_humaneval), graded by its tests in the sandbox.

    sdbench run --tasks humaneval --model Qwen/Qwen2.5-Coder-0.5B-Instruct --config eval_test_only.yaml
    sdbench verify --task humaneval --samples gens.jsonl --data-path tasks/fixtures/humaneval

Splits: test only (evaluation-only: no `train` for trainable strategies, no `ood`). Schema:
`{"task_id", "prompt", "canonical_solution", "test", "entry_point"}`.

The prompt is the function signature and docstring. A completion either continues it (a function
body, the raw-LM convention; the reference is `canonical_solution`) or, as chat models do, writes
the whole function, fenced or not: when the completion's code defines the entry point at top level
the program is `prompt + completion code` (the later definition wins, the prompt's imports and
helpers stay), else `prompt + completion` cut at the usual stop sequences (`\\ndef `, `\\nclass `,
`\\nif __name__`, `\\nprint(`, `\\n#`, ...). Grading: `sdbench.sandbox.run_tests(program,
test + "check(<entry_point>)")` — only the judge process decides. Classes: see `sdbench.tasks._code`
(behaviour on mutated test inputs `io:<hash>`, else a normalized AST hash; semantic class = AST shape).
Run the tests with `pytest tests/test_real_tasks.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from sdbench.task import Problem, Verdict, register_task
from sdbench.tasks._code import defines, extract_code, grade, literal_calls, make_probes, parses, truncate_body
from sdbench.tasks._realdata import RealDataTask, Row


@register_task("humaneval")
class HumanEval(RealDataTask):
    """HumanEval: complete a Python function; hidden tests run in the sandbox."""

    name: ClassVar[str] = "humaneval"
    splits: ClassVar[tuple[str, ...]] = ("test",)
    max_new_tokens: ClassVar[int] = 512
    hub_id: ClassVar[str] = "openai/openai_humaneval"
    columns: ClassVar[tuple[str, ...]] = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
    default_model: ClassVar[str] = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    solution_word: ClassVar[str] = "program"

    def make_problem(self, split: str, index: int, row: Row) -> Problem:
        entry = row["entry_point"]
        tests = f"{row['test']}\n\ncheck({entry})\n"
        probes = make_probes(literal_calls(row["test"], "candidate"), row["task_id"])
        return Problem(id=f"{self.name}/{row['task_id']}", prompt=row["prompt"], reference=row["canonical_solution"],
                       data={"entry_point": entry, "tests": tests, "probes": probes, "native_id": row["task_id"]})

    @staticmethod
    def program(problem: Problem, completion: str) -> str:
        """The program a completion stands for: the whole function, or the prompt's body continued."""
        code = extract_code(completion)
        if defines(parses(code), problem.data["entry_point"]):
            return f"{problem.prompt}\n\n{code}\n"
        return problem.prompt + truncate_body(completion)

    def verify(self, problem: Problem, completions: Sequence[str]) -> list[Verdict]:
        return grade(problem, completions, self.program, problem.data["tests"], problem.data["probes"],
                     problem.data["entry_point"])
