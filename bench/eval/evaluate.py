"""Evaluate a policy on one split: n samples per problem -> per-problem counts and diversity.

    result = evaluate_split(model, tokenizer, task, problems, n=32, seed=0)
    result.problems[0].c, result.problems[0].distinct_correct

Per-problem records (n, c, distinct functional and semantic classes among correct samples, mean
token entropy) are what every stored result keeps, so any metric can be recomputed from them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from sdbench.core.model import encode_prompt, tokenizer_info
from sdbench.core.sampling import sample
from sdbench.core.vllm_sampler import select_sampler
from sdbench.eval.passk import area_under_curve, k_values, pass_curve
from sdbench.task import Problem, Task, verify_groups


@dataclass(frozen=True)
class ProblemResult:
    id: str
    n: int
    c: int
    distinct_correct: int
    semantic_classes: int
    entropy: float                  # mean per-token entropy of the policy on its own samples (nats)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SampleRecord:
    problem_id: str
    completion: str
    correct: bool
    functional_class: str | None


@dataclass
class SplitResult:
    problems: list[ProblemResult]
    samples: list[SampleRecord]


def evaluate_split(model, tokenizer, task: Task, problems: Sequence[Problem], *, n: int, seed: int,
                   batch_size: int = 512, on_problem: Callable[[int], None] | None = None,
                   backend: str = "hf") -> SplitResult:
    """Sample n completions per problem (seeded), grade them, and count per problem.

    backend: "hf" (transformers, any device) or "vllm" (sdbench.core.vllm_sampler, GPU).
    """
    info = tokenizer_info(tokenizer)
    generator = torch.Generator().manual_seed(seed)
    per_batch = max(1, batch_size // n)
    results: list[ProblemResult] = []
    records: list[SampleRecord] = []
    for start in range(0, len(problems), per_batch):
        chunk = problems[start:start + per_batch]
        prompts = [encode_prompt(tokenizer, p.prompt) for p in chunk]
        sampler = sample if backend == "hf" else select_sampler(backend)
        samples = sampler(model, prompts, num_samples=n, max_new_tokens=task.max_new_tokens,
                          eos_id=info.eos_id, pad_id=info.pad_id, generator=generator, batch_size=batch_size)
        texts_of = [[tokenizer.decode(list(s.token_ids), skip_special_tokens=True) for s in samples[j * n:(j + 1) * n]]
                    for j in range(len(chunk))]
        for j, (problem, texts, verdicts) in enumerate(zip(chunk, texts_of, verify_groups(task, chunk, texts_of),
                                                           strict=True)):
            mine = samples[j * n:(j + 1) * n]
            correct = [v for v in verdicts if v.correct]
            positions = sum(s.num_positions for s in mine)
            results.append(ProblemResult(
                id=problem.id, n=n, c=len(correct),
                distinct_correct=len({v.functional_class for v in correct}),
                semantic_classes=len({v.semantic_class for v in correct}),
                entropy=sum(s.entropy_sum for s in mine) / max(positions, 1)))
            records.extend(SampleRecord(problem.id, t, v.correct, v.functional_class)
                           for t, v in zip(texts, verdicts, strict=True))
            if on_problem is not None:
                on_problem(1)
    return SplitResult(results, records)


def problem_metrics(problems: Sequence[ProblemResult]) -> dict[str, np.ndarray]:
    """Per-problem values of every summary metric (averaging them gives the metric)."""
    n = np.array([p.n for p in problems])
    c = np.array([p.c for p in problems])
    ks = k_values(int(n.min()))
    curve = pass_curve(n, c, ks)
    metrics = {f"pass@{k}": curve[i] for i, k in enumerate(ks)}
    metrics["pass@auc"] = area_under_curve(curve, ks)
    metrics["pass@gain"] = curve[-1] - curve[0]
    metrics["distinct_correct"] = np.array([p.distinct_correct for p in problems], dtype=np.float64)
    metrics["semantic_classes"] = np.array([p.semantic_classes for p in problems], dtype=np.float64)
    metrics["entropy"] = np.array([p.entropy for p in problems], dtype=np.float64)
    return metrics
