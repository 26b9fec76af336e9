"""Sample → decode → verify: the one path from a policy to graded rollouts, shared by the trainer
(each step's groups) and the evaluator (each split's problems).

    groups = graded_rollouts(model, tokenizer, task, problems, prompts, n=8, generator=g)
    groups[0].texts, groups[0].verdicts, groups[0].samples   # problem 0's n rollouts, in order

Prompts come encoded (callers cache their encodings); the sampler is sdbench's own (`backend="hf"`)
or vLLM's, with one random stream per call (`generator`), so the same seed gives the same rollouts.
A task's stop strings (`stop`, optional) end its rollouts (`sdbench.core.sampling.stop_token_ids`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sdbench.core.model import tokenizer_info
from sdbench.core.sampling import Sample, sample, stop_token_ids
from sdbench.core.timing import NO_TIMER, StageTimer
from sdbench.core.vllm_sampler import select_sampler
from sdbench.task import Problem, Task, Verdict, verify_groups

_STOP_IDS: dict[tuple[int, tuple[str, ...]], frozenset[int]] = {}


def _stop_ids(tokenizer, stops: tuple[str, ...]) -> frozenset[int]:
    """stop_token_ids, once per tokenizer and stop strings (it decodes the whole vocabulary)."""
    key = (id(tokenizer), stops)
    if key not in _STOP_IDS:
        _STOP_IDS[key] = stop_token_ids(tokenizer, stops)
    return _STOP_IDS[key]


@dataclass(frozen=True)
class GradedGroup:
    """One problem's n rollouts: the sampled tokens, their decoded texts and the task's verdicts."""

    problem: Problem
    samples: list[Sample]
    texts: list[str]
    verdicts: list[Verdict]


def graded_rollouts(model, tokenizer, task: Task, problems: Sequence[Problem], prompts: Sequence[Sequence[int]], *,
                    n: int, generator: torch.Generator, temperature: float | None = None, backend: str = "hf",
                    batch_size: int | None = None, timer: StageTimer = NO_TIMER) -> list[GradedGroup]:
    """n rollouts of each problem (prompts[i] encodes problems[i].prompt), decoded and graded; at `temperature`,
    by default the task's sampling temperature (its `temperature` attribute; 1 when it has none)."""
    if temperature is None:
        temperature = float(getattr(task, "temperature", 1.0))
    info = tokenizer_info(tokenizer)
    sampler = sample if backend == "hf" else select_sampler(backend)
    extra: dict = {} if batch_size is None else {"batch_size": batch_size}
    if getattr(task, "stop", ()):            # the task's stop strings end a rollout (sdbench.core.sampling)
        extra["stop_ids"] = _stop_ids(tokenizer, tuple(task.stop))
    with timer("sample"):
        samples = sampler(model, list(prompts), num_samples=n, max_new_tokens=task.max_new_tokens, eos_id=info.eos_id,
                          pad_id=info.pad_id, generator=generator, temperature=temperature, **extra)
    per_problem = [samples[i * n:(i + 1) * n] for i in range(len(problems))]
    texts_of = [[tokenizer.decode(list(s.token_ids), skip_special_tokens=True) for s in mine] for mine in per_problem]
    with timer("verify"):
        graded = verify_groups(task, problems, texts_of)
    return [GradedGroup(p, mine, texts, list(verdicts))
            for p, mine, texts, verdicts in zip(problems, per_problem, texts_of, graded, strict=True)]
