"""`gsm8k`: grade-school math word problems (openai/gsm8k, config `main`), graded by the final number.

    sdbench run --tasks gsm8k --model Qwen/Qwen2.5-0.5B-Instruct --config eval_test_only.yaml
    sdbench verify --task gsm8k --samples gens.jsonl --data-path tasks/fixtures/gsm8k

Splits: train, test (no `ood`: set `evaluation: {splits: [test]}` in the run config). Schema:
`{"question": str, "answer": str}` where the answer is a worked solution ending in `#### <number>`.

Grading: the completion's final answer is the first number after its last `####`, else in its
last `\\boxed{}`, else its last number; numbers are normalized (commas, `$`, trailing zeros) and
compared exactly with the reference's `####` number.
Functional class: `<answer>|<computed quantities>` — the normalized answer plus the sorted set of
numbers the solution computes (the values after '='), so two solutions that reach the answer
through the same intermediate values are the same solution. Semantic class: the operator shape
(number of computed steps and which arithmetic operators the steps use).
Run the tests with `pytest tests/test_real_tasks.py`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from sdbench.task import Problem, Verdict, register_task
from sdbench.tasks._realdata import RealDataTask, Row, computed_quantities, normalize_number, numbers_in

INSTRUCTION = "Solve the problem step by step. Write the final answer, a number, after '####' on the last line."


def final_answer(text: str) -> str | None:
    """The normalized final number of a solution: after `####`, else in `\\boxed{}`, else the last one."""
    if "####" in text:
        tail = text.rsplit("####", 1)[1]
        found = numbers_in(tail.split("\n", 1)[0]) or numbers_in(tail)
        return found[0] if found else None
    boxed = re.findall(r"\\boxed\{([^{}]*)\}", text)
    if boxed:
        return normalize_number(boxed[-1])
    found = numbers_in(text)
    return found[-1] if found else None


def operator_shape(solution: str) -> str:
    """'2 steps: *+' — how many values the solution computes and which operators its steps use."""
    steps = len({n for m in re.finditer(r"=\s*\$?\s*(-?[\d.,]*\d)", solution)
                 if (n := normalize_number(m.group(1))) is not None})
    lhs = re.findall(r"([^=\n<>]*)=", solution)
    ops = {"*" if op in "x×" else "/" if op == "÷" else op
           for side in lhs for op in re.findall(r"(?<=[\d)\s])[-+*/×÷x](?=[\s\d(.$])", side)}
    return f"{steps} steps: {''.join(sorted(ops)) or 'none'}"


@register_task("gsm8k")
class GSM8K(RealDataTask):
    """GSM8K word problems: the final number decides, the computed quantities classify."""

    name: ClassVar[str] = "gsm8k"
    splits: ClassVar[tuple[str, ...]] = ("train", "test")
    max_new_tokens: ClassVar[int] = 512
    hub_id: ClassVar[str] = "openai/gsm8k"
    hub_config: ClassVar[str | None] = "main"
    columns: ClassVar[tuple[str, ...]] = ("question", "answer")

    def make_problem(self, split: str, index: int, row: Row) -> Problem:
        answer = final_answer(row["answer"])
        return Problem(id=f"{self.name}/{split}/{index}", prompt=f"{row['question'].strip()}\n\n{INSTRUCTION}",
                       reference=row["answer"],
                       data={"answer": answer, "question": row["question"], "native_id": str(index)})

    def verify(self, problem: Problem, completions: Sequence[str]) -> list[Verdict]:
        gold = problem.data["answer"]
        out = []
        for text in completions:
            answer = final_answer(text)
            if answer is None or answer != gold:
                out.append(Verdict(correct=False, status="ok" if answer is not None else "no_answer"))
                continue
            method = ",".join(computed_quantities(text, problem.data["question"]))
            out.append(Verdict(correct=True, functional_class=f"{answer}|{method}",
                               semantic_class=operator_shape(text)))
        return out
