"""`math500`: the 500 MATH competition problems of HuggingFaceH4/MATH-500, graded with `math-verify`.

    sdbench run --tasks math500 --model Qwen/Qwen2.5-1.5B-Instruct --config eval_test_only.yaml
    sdbench verify --task math500 --samples gens.jsonl --data-path tasks/fixtures/math500

Splits: test only (evaluation-only: no `train` for trainable strategies, no `ood`). Schema:
`{"problem", "solution", "answer", "subject", "level", "unique_id"}`.

Grading: `math_verify.parse` extracts the completion's answer (its last `\\boxed{}` first, then
other LaTeX / plain expressions) and `math_verify.verify` checks it against the parsed `answer`
(symbolic and numeric equivalence: `\\frac12`, `0.5` and `\\dfrac{1}{2}` all match `\\frac{1}{2}`).
Functional class: `<normalized answer>|<computed quantities>` — math-verify's canonical (sympy)
form of the answer plus the sorted set of numbers the solution computes (values after '='), a
canonical form of the method. Semantic class: the answer's written form (integer, decimal,
fraction, radical, pi, tuple/interval, matrix, expression, text), which distinguishes e.g.
`\\frac{1}{2}` from `0.5` even though both are correct.
Run the tests with `pytest tests/test_real_tasks.py`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from sdbench.task import Problem, Verdict, register_task
from sdbench.tasks._realdata import RealDataTask, Row, computed_quantities

INSTRUCTION = "Solve the problem step by step. Put the final answer in \\boxed{}."
TIMEOUT_S = 5


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`), braces matched."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for i in range(brace, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[brace + 1:i].strip()
    return None


def answer_form(answer: str) -> str:
    """The written form of an answer: integer, decimal, fraction, radical, ... (its semantic class)."""
    a = re.sub(r"\\[dt]frac", r"\\frac", answer.replace(" ", "").replace("\\!", "").strip("$"))
    a = re.sub(r"\\(left|right)", "", a)
    if re.fullmatch(r"-?\d+", a.replace(",", "")):
        return "integer"
    if re.fullmatch(r"-?\d*\.\d+", a):
        return "decimal"
    if "matrix" in a:
        return "matrix"
    if re.fullmatch(r"[(\[].*,.*[)\]]", a):
        return "tuple/interval"
    if "\\text" in a and not re.search(r"\d", a):
        return "text"
    if "\\sqrt" in a:
        return "radical"
    if "\\pi" in a:
        return "pi"
    if re.fullmatch(r"-?(\\frac\{-?\d+\}\{\d+\}|\d+/\d+)", a):
        return "fraction"
    return "expression"


def _timeout() -> int | None:
    # math-verify times out with SIGALRM, which only the main thread may set.
    return TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


@register_task("math500")
class MATH500(RealDataTask):
    """MATH-500: answers checked for mathematical equivalence by math-verify."""

    name: ClassVar[str] = "math500"
    splits: ClassVar[tuple[str, ...]] = ("test",)
    max_new_tokens: ClassVar[int] = 1024
    hub_id: ClassVar[str] = "HuggingFaceH4/MATH-500"
    columns: ClassVar[tuple[str, ...]] = ("problem", "solution", "answer")
    default_model: ClassVar[str] = "Qwen/Qwen2.5-1.5B-Instruct"

    def make_problem(self, split: str, index: int, row: Row) -> Problem:
        native = str(row.get("unique_id") or index)
        return Problem(id=f"{self.name}/{native}", prompt=f"{row['problem'].strip()}\n\n{INSTRUCTION}",
                       reference=row["solution"],
                       data={"answer": row["answer"], "question": row["problem"], "native_id": native,
                             "subject": row.get("subject"), "level": row.get("level")})

    def verify(self, problem: Problem, completions: Sequence[str]) -> list[Verdict]:
        from math_verify import parse, verify

        gold = self._gold(problem)
        out = []
        for text in completions:
            try:
                predicted = parse(text, parsing_timeout=_timeout())
                correct = bool(predicted) and bool(gold) and verify(gold, predicted, timeout_seconds=_timeout())
            except Exception:  # math-verify's own timeouts and sympy failures: ungradable, not a crash
                out.append(Verdict(correct=False, status="error"))
                continue
            if not predicted:
                out.append(Verdict(correct=False, status="no_answer"))
                continue
            if not correct:
                out.append(Verdict(correct=False))
                continue
            written = last_boxed(text) or str(predicted[-1])
            method = ",".join(computed_quantities(text, problem.data["question"]))
            out.append(Verdict(correct=True, functional_class=f"{predicted[0]}|{method}",
                               semantic_class=answer_form(written)))
        return out

    def _gold(self, problem: Problem) -> list[Any]:
        from math_verify import parse

        cache: dict[str, list[Any]] = self.__dict__.setdefault("_gold_cache", {})
        if problem.id not in cache:
            cache[problem.id] = parse(f"${problem.data['answer']}$", parsing_timeout=_timeout())
        return cache[problem.id]
