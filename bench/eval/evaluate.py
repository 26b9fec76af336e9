"""Evaluate a policy on one split: n samples per problem -> per-problem counts and diversity.

    result = evaluate_split(model, tokenizer, task, problems, n=32, seed=0)
    result.problems[0].c, result.problems[0].distinct_correct
    evaluate_split(model, tokenizer, task, val, n=16, seed=0, base_model=base)   # + kl_from_base

Per-problem records (`sdbench.results.record.ProblemCounts`, counted by
`sdbench.results.counts.counts_from_verdicts`: n, c, distinct functional and semantic classes among
correct samples, mean token entropy, and with `base_model` the policy's KL from the base) are what
every stored result keeps, so any metric can be recomputed from them. Schema 3 adds each
problem's functional-class histograms (all samples, correct samples; `class_histograms`), from which
`sdbench.eval.mechanism` measures mode amplification.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from sdbench.core.model import encode_prompt, prompt_format, tokenizer_info
from sdbench.core.rollouts import graded_rollouts
from sdbench.core.sampling import Sample
from sdbench.results.counts import counts_from_verdicts
from sdbench.results.record import ProblemCounts
from sdbench.strategy import class_id
from sdbench.task import Problem, Task, Verdict


@dataclass(frozen=True)
class SampleRecord:
    problem_id: str
    completion: str
    correct: bool
    functional_class: str | None


def class_histograms(texts: Sequence[str], verdicts: Sequence[Verdict]) -> tuple[dict[str, int], dict[str, int]]:
    """(class id -> count over all samples, over the correct ones); a sample's class is its functional class,
    its text when the task gives none (as `sdbench.strategy.class_of`). Ids sorted, so equal counts are equal JSON."""
    ids = [class_id(v.functional_class if v.functional_class is not None else t)
           for t, v in zip(texts, verdicts, strict=True)]
    every = Counter(ids)
    correct = Counter(i for i, v in zip(ids, verdicts, strict=True) if v.correct)
    return dict(sorted(every.items())), dict(sorted(correct.items()))


@dataclass
class SplitResult:
    problems: list[ProblemCounts]
    samples: list[SampleRecord]


def evaluate_split(model, tokenizer, task: Task, problems: Sequence[Problem], *, n: int, seed: int,
                   batch_size: int = 512, on_problem: Callable[[int], None] | None = None,
                   backend: str = "hf", base_model=None) -> SplitResult:
    """Sample n completions per problem (seeded), grade them, and count per problem.

    backend: "hf" (transformers, any device) or "vllm" (sdbench.core.vllm_sampler, GPU).
    base_model: when given, each problem also gets `kl_from_base` (see `kl_from_base`).
    """
    info = tokenizer_info(tokenizer)
    generator = torch.Generator().manual_seed(seed)
    per_batch = max(1, batch_size // n)
    results: list[ProblemCounts] = []
    records: list[SampleRecord] = []
    for start in range(0, len(problems), per_batch):
        chunk = problems[start:start + per_batch]
        prompts = [encode_prompt(tokenizer, p.prompt, prompt_format(task)) for p in chunk]
        groups = graded_rollouts(model, tokenizer, task, chunk, prompts, n=n, generator=generator, backend=backend,
                                 batch_size=batch_size)
        samples = [s for g in groups for s in g.samples]
        kl = (kl_from_base(model, base_model, prompts, samples, eos_id=info.eos_id, pad_id=info.pad_id)
              if base_model is not None else None)
        for j, graded in enumerate(groups):
            every, correct_classes = class_histograms(graded.texts, graded.verdicts)
            positions = max(sum(s.num_positions for s in graded.samples), 1)
            results.append(counts_from_verdicts(
                graded.problem.id, graded.verdicts,
                entropy=sum(s.entropy_sum for s in graded.samples) / positions,
                kl_from_base=None if kl is None else float(sum(kl[j * n:(j + 1) * n]) / positions),
                classes=every, correct_classes=correct_classes))
            records.extend(SampleRecord(graded.problem.id, t, v.correct, v.functional_class)
                           for t, v in zip(graded.texts, graded.verdicts, strict=True))
            if on_problem is not None:
                on_problem(1)
    return SplitResult(results, records)


@torch.no_grad()
def kl_from_base(policy, base, prompts: Sequence[Sequence[int]], samples: Sequence[Sample], *, eos_id: int,
                 pad_id: int) -> list[float]:
    """Per sample: the sum over its generated positions (EOS included, as for the entropy) of the exact
    full-vocabulary KL(pi(.|prefix) || pi_base(.|prefix)), nats.

    Both models score the sample teacher-forced (`sdbench.core._forward.score_hidden`, each prompt
    computed once for its samples); the fused kernel (reverse KL with the base as the
    teacher and its own output head) computes it without [tokens x vocab] logits, so large
    vocabularies cost no more memory than a training step. 0 for the base itself.
    """
    from sdbench.core._forward import score_hidden
    from sdbench.core.kernels import fused_linear_divergence

    completions = [[*s.token_ids, eos_id] if s.finished else list(s.token_ids) for s in samples]
    keep = [i for i, c in enumerate(completions) if c]
    out = [0.0] * len(samples)
    if not keep or policy is base:   # the base model itself (step 0): exactly 0, nothing to compute
        return out
    prefixes = [prompts[samples[i].prompt_index] for i in keep]
    rows = [completions[i] for i in keep]
    lengths = [len(c) for c in rows]
    head = policy.get_output_embeddings().weight
    # each prompt's n samples share it: the scorer runs every distinct prompt once per model
    h_policy = score_hidden(policy, prefixes, rows, pad_id).to(head.dtype)
    h_base = score_hidden(base, prefixes, rows, pad_id).to(head.dtype)
    per_token = fused_linear_divergence(h_policy, head, h_base, divergence="reverse_kl", reduction="none",
                                        teacher_head=base.get_output_embeddings().weight)
    # KL >= 0; the kernel's log-sum-exp rounding can leave -1e-9 where the two distributions agree
    sums = torch.split(per_token.double().clamp(min=0.0).cpu(), lengths)
    for i, s in zip(keep, sums, strict=True):
        out[i] = float(s.sum())
    return out
