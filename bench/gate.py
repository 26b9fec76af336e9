"""The testbed gate (issue 14): is a task's base model a fair instrument for self-distillation?

    from sdbench.gate import GateBudget, run_gate
    report = run_gate("graph_paths")                  # shipped model, full budget: minutes on 1 core
    report.passed, report.metrics, report.checks
    sdbench tasks check graph_paths [--model PATH] [--json] [--problems N] [--samples N] [--write]

On `budget.problems` train problems (fixed seed), with `budget.samples` student rollouts each at the task's
sampling temperature (its `temperature` attribute; T = 1 when it has none), teacher samples too:
- student: pass@1, pass@n - pass@1 (n = samples; 32 by default), mean distinct correct functional classes;
- teacher = the same model on `task.teacher_prompt(problem, [demo])`, demo a correct student rollout drawn
  uniformly (problems without one are skipped): pass@1 as a policy, copy rate (a sample *copies* when its
  functional class equals the demo's: a surface rewrite of the demo is the same solution, and
  distinct_correct counts classes too), and pass@1 of the samples that do not copy;
- Δ = log p(y | demo, x) - log p(y | x) over each rollout's completion tokens (EOS included when it
  finished), the demo drawn exactly as `single_sampled_demo` draws it (other correct rollouts of the group;
  rollouts without one are skipped): ROC-AUC of Δ for correct vs incorrect rollouts, the AUC of
  log p(y | x) on the same rollouts, mean Δ of correct rollouts of another class than their demo, of
  incorrect ones;
- positional copying: the share of first errors (first invalid tokens of incorrect rollouts with a demo)
  that are the demo's token at the same position, the prefix before it having left the demo. Only tasks
  with a per-token notion of validity have it (the `TokenValidity` hook: graph_paths's `first_invalid`); others
  report None and the reason (their `no_token_validity`).
  `details["first_errors"]` says where the student's first errors fall (the hook's `error_kind`: for graph_paths a
  non-edge to a live node, to a dead one, a dead end, ...), as shares of all rollouts.
Teacher tilt by class (information, no threshold; issue 29): mean Δ of correct rollouts in the demo's class
against correct rollouts of another class (`details["teacher_tilt"]`) — the PMI the SD fixed point tilts by.
Headroom (GRPO quick test pass@1 <= 0.90) needs a training run and is not measured here.
Rollouts come from the core's rollout path (`sdbench.core.rollouts.graded_rollouts`), log-likelihoods from its
scorer (`sdbench.core.objective.score_logits`); the committed numbers (gate.json) are read and written by
`sdbench.gate_store`. Tests: pytest tests/test_gate.py
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from sdbench.core.model import encode_prompt, load_model, prompt_format, tokenizer_info
from sdbench.core.objective import score_logits, upcast
from sdbench.core.rollouts import graded_rollouts
from sdbench.eval.passk import pass_at_k
from sdbench.strategy import Group, Rollout, class_of, draw_demos, single_demo_plans
from sdbench.task import Problem, Task, load_task, stable_rng

METRIC_KEYS = ("student_pass1", "pass_gain", "distinct_correct", "teacher_pass1", "teacher_noncopy_pass1",
               "copy_rate", "delta_auc", "student_loglik_auc", "delta_noncopy_correct_mean", "delta_incorrect_mean",
               "positional_copy_share")
EOS = "<eos>"   # the end of a completion, as a token of the word sequences the positional check compares
HEADROOM = "headroom: GRPO quick-profile test pass@1 <= 0.90 is measured by a training run, not by this command"


@dataclass(frozen=True)
class GateBudget:
    problems: int = 128          # train problems
    samples: int = 32            # student rollouts per problem (n of pass@n)
    teacher_samples: int = 8     # teacher-as-policy samples per problem with a demo
    seed: int = 0                # problems, sampling and demo draws
    batch_size: int = 256        # sequences per forward pass when scoring


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None
    threshold: str
    passed: bool | None          # None: does not apply to this task (the reason is in `threshold`)


@dataclass
class GateReport:
    task: str
    model: str
    passed: bool
    metrics: dict[str, float | None]
    checks: list[Check]
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "model": self.model, "passed": self.passed, "metrics": self.metrics,
                "checks": [asdict(c) for c in self.checks], "details": self.details}


# ---------------------------------------------------------------- statistics
def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """P(score of a positive > score of a negative), ties counted 1/2 (Mann-Whitney U / n_pos n_neg).

    None when either class is empty. Computed from average ranks, O(N log N)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts            # 0-based rank where each distinct value starts
    ranks = (first + (counts + 1) / 2.0)[inverse]  # 1-based average rank of each score
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


# ---------------------------------------------------------------- per-token validity (positional copying)
@runtime_checkable
class TokenValidity(Protocol):
    """The hook of a task whose answers are valid or not word by word (graph_paths: `first_invalid`,
    `error_kind` in sdbench.tasks.graph_paths). A task without it reports positional copying as None, with
    the reason in its `no_token_validity` attribute."""

    def first_invalid(self, problem: Problem, words: Sequence[str], finished: bool) -> int | None:
        """Index of the first word after which no valid answer can follow (len(words): the end); None if none."""
        ...

    def error_kind(self, problem: Problem, words: Sequence[str], finished: bool, t: int) -> str:
        """What kind of error the first invalid word `t` is (the keys of details["first_errors"])."""
        ...


def positional_copy(task: TokenValidity, problem: Problem, completion: str, finished: bool, demo: str) -> bool | None:
    """Whether the rollout's first error is a positional copy: its first invalid token equals the demo's
    token at the same position while the prefix before it already differs from the demo's. None when no
    invalid token is found. The share is taken over all first errors (as the issue measures it: "in 18%
    of incorrect rollouts ..."), so an error made while still on the demo's prefix counts as no copy."""
    words = completion.split()
    tokens = words + ([EOS] if finished else [])
    demo_tokens = demo.split() + [EOS]
    t = task.first_invalid(problem, words, finished)
    if t is None:
        return None
    return tokens[:t] != demo_tokens[:t] and t < len(demo_tokens) and tokens[t] == demo_tokens[t]


def first_errors(task: TokenValidity, problems: Sequence[Problem], student: Sequence[_Graded]) -> dict[str, float]:
    """Share of all student rollouts whose first invalid word is of each kind, most frequent first."""
    kinds: dict[str, int] = {}
    for problem, g in zip(problems, student, strict=True):
        for r in g.rollouts:
            words, finished = r.completion.split(), g.finished[r.index]
            t = None if r.correct else task.first_invalid(problem, words, finished)
            if t is not None:
                kind = task.error_kind(problem, words, finished, t)
                kinds[kind] = kinds.get(kind, 0) + 1
    total = sum(len(g.rollouts) for g in student)
    return {k: round(v / total, 4) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])}


# ---------------------------------------------------------------- model calls
@torch.no_grad()
def sequence_logprobs(model, contexts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]],
                      pad_id: int, batch_size: int = 256, shared_prefix: bool = False) -> np.ndarray:
    """sum_t log p(completion_t | context, completion_<t) for each pair, in batches of `batch_size` (nats).

    The logits come from the core's scorer (`sdbench.core.objective.score_logits`, the training step's):
    shared_prefix runs each distinct context once (`sdbench.core._forward.score_hidden`; equal to the padded
    transformers route up to float rounding). A real model's gate takes it: its 32 rollouts per problem share
    one ~110-token chat context, which the padded route would run 32 times (hours on 2 cores)."""
    if not contexts:
        return np.zeros(0)
    sums: list[float] = []
    for start in range(0, len(contexts), batch_size):
        ctx, ys = contexts[start:start + batch_size], completions[start:start + batch_size]
        logits = score_logits(model, ctx, ys, pad_id, "shared" if shared_prefix else "padded")
        targets = torch.tensor([t for y in ys for t in y], dtype=torch.long, device=logits.device)
        picked = torch.log_softmax(upcast(logits), dim=-1).gather(1, targets[:, None]).squeeze(1)
        per_token = picked.double().cpu().numpy()
        bounds = np.cumsum([0, *[len(y) for y in ys]])
        sums.extend(per_token[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    return np.array(sums)


@dataclass
class _Graded:
    rollouts: tuple[Rollout, ...]
    token_ids: list[list[int]]       # completion ids, EOS appended when finished
    finished: list[bool]


def _sample_graded(model, tok, task: Task, problems: Sequence[Problem], contexts: Sequence[list[int]],
                   n: int, seed: int) -> list[_Graded]:
    """n samples per context at the task's temperature, decoded and graded (code runs only in the sandbox):
    the core's rollout path (`sdbench.core.rollouts.graded_rollouts`), as Rollouts for the strategy helpers."""
    eos = tokenizer_info(tok).eos_id
    groups = graded_rollouts(model, tok, task, problems, contexts, n=n, generator=torch.Generator().manual_seed(seed))
    return [_Graded(tuple(Rollout(index=j, completion=t, correct=v.correct, reward=float(v.correct),
                                  functional_class=v.functional_class, semantic_class=v.semantic_class)
                          for j, (t, v) in enumerate(zip(g.texts, g.verdicts, strict=True))),
                    [[*s.token_ids, eos] if s.finished else list(s.token_ids) for s in g.samples],
                    [s.finished for s in g.samples]) for g in groups]


# ---------------------------------------------------------------- the gate
@dataclass
class _Scored:
    """The Δ rows: one per student rollout that has a demo (drawn as single_sampled_demo draws it)."""

    delta: np.ndarray                # log p(y | demo, x) - log p(y | x)
    student_lp: np.ndarray           # log p(y | x)
    rows: list[tuple[bool, bool, bool | None]]   # (correct, class != demo's, positional copy or None)


def _score_delta(model, tok, task: Task, fmt, problems: Sequence[Problem], student: Sequence[_Graded],
                 budget: GateBudget, real_model: bool) -> _Scored:
    """Δ of each rollout with a demo: one demo per rollout, drawn by the strategy helper `single_demo_plans`
    (other correct rollouts of the group) with a fixed rng per problem."""
    contexts, students, completions, rows = [], [], [], []
    validity = task if isinstance(task, TokenValidity) else None
    for problem, g in zip(problems, student, strict=True):
        group = Group(problem, g.rollouts, stable_rng("gate", budget.seed, problem.id, "delta"))
        by_text = {r.completion: r for r in g.rollouts}
        for r, plan in zip(g.rollouts, single_demo_plans(group), strict=True):
            if not plan.teachers:
                continue
            demo = by_text[plan.teachers[0].demos[0]]
            contexts.append(encode_prompt(tok, task.teacher_prompt(problem, [demo.completion]), fmt))
            students.append(encode_prompt(tok, problem.prompt, fmt))
            completions.append(g.token_ids[r.index])
            positional = (None if r.correct or validity is None else
                          positional_copy(validity, problem, r.completion, g.finished[r.index], demo.completion))
            rows.append((r.correct, class_of(r) != class_of(demo), positional))
    pad_id = tokenizer_info(tok).pad_id
    teacher_lp = sequence_logprobs(model, contexts, completions, pad_id, budget.batch_size, real_model)
    student_lp = sequence_logprobs(model, students, completions, pad_id, budget.batch_size, real_model)
    return _Scored(teacher_lp - student_lp, student_lp, rows)


def _teacher_policy(model, tok, task: Task, fmt, problems: Sequence[Problem], student: Sequence[_Graded],
                    budget: GateBudget) -> tuple[list[int], list[tuple[Rollout, bool]]]:
    """The teacher as a policy: one uniformly drawn correct rollout as demo per problem that has one. Returns
    those problems' indices and each teacher sample with whether it copies its demo (same functional class)."""
    with_demo = [i for i, g in enumerate(student) if any(r.correct for r in g.rollouts)]
    if not with_demo:
        return [], []
    demos = [draw_demos([r for r in student[i].rollouts if r.correct], 1,
                        stable_rng("gate", budget.seed, problems[i].id, "policy"))[0] for i in with_demo]
    teacher = _sample_graded(model, tok, task, [problems[i] for i in with_demo],
                             [encode_prompt(tok, task.teacher_prompt(problems[i], [d.completion]), fmt)
                              for i, d in zip(with_demo, demos, strict=True)],
                             budget.teacher_samples, budget.seed + 1)
    return with_demo, [(r, class_of(r) == class_of(d) if r.correct else False)
                       for g, d in zip(teacher, demos, strict=True) for r in g.rollouts]


def run_gate(task_name: str, model_path: str | None = None, budget: GateBudget | None = None) -> GateReport:
    """Measure the gate's metrics for `task_name` on `model_path` (default: the task's base model)."""
    budget = budget or GateBudget()
    start = time.perf_counter()
    task = load_task(task_name)
    model_path = model_path or task.base_model()
    model, tok = load_model(model_path)
    fmt = prompt_format(task)          # the task's prompt format (chat template or plain), student and teacher alike
    problems = task.problems("train", budget.problems, seed=budget.seed)
    student = _sample_graded(model, tok, task, problems, [encode_prompt(tok, p.prompt, fmt) for p in problems],
                             budget.samples, budget.seed)
    real_model = getattr(task, "gate", None) == "real_model"
    scored = _score_delta(model, tok, task, fmt, problems, student, budget, real_model)
    with_demo, t_samples = _teacher_policy(model, tok, task, fmt, problems, student, budget)
    validity = task if isinstance(task, TokenValidity) else None

    n = budget.samples
    counts = np.array([sum(r.correct for r in g.rollouts) for g in student])
    delta, rows = scored.delta, scored.rows
    correct = [c for c, _, _ in rows]
    positional = [p for _, _, p in rows if p is not None]
    noncopy = [r.correct for r, copied in t_samples if not copied]
    metrics: dict[str, float | None] = {
        "student_pass1": float(np.mean(counts / n)),
        "pass_gain": float(np.mean(pass_at_k(n, counts, n)) - np.mean(counts / n)),
        "distinct_correct": float(np.mean([len({class_of(r) for r in g.rollouts if r.correct}) for g in student])),
        "teacher_pass1": _mean([r.correct for r, _ in t_samples]),
        "teacher_noncopy_pass1": _mean(noncopy),
        "copy_rate": _mean([copied for _, copied in t_samples]),
        "delta_auc": roc_auc(delta, correct),
        "student_loglik_auc": roc_auc(scored.student_lp, correct),
        "delta_noncopy_correct_mean": _mean([d for d, (c, other, _) in zip(delta, rows, strict=True) if c and other]),
        "delta_incorrect_mean": _mean([d for d, (c, _, _) in zip(delta, rows, strict=True) if not c]),
        "positional_copy_share": _mean(positional) if validity is not None else None,
    }
    # The teacher is measured on the problems that have a demo, so it is held against the student there.
    student_ref = _mean([counts[i] / n for i in with_demo])
    notes = {} if validity is not None else {"positional_copy_share": getattr(
        task, "no_token_validity", "no per-token notion of a first invalid token is implemented for this task")}
    checks = _checks(metrics, student_ref, notes, real_model=real_model)
    errors = first_errors(validity, problems, student) if validity is not None else {}
    details = {
        "budget": asdict(budget), "wall_s": round(time.perf_counter() - start, 1), "notes": notes,
        "student_pass1_on_demo_problems": student_ref, "pass_gain_k": n,
        "counts": {"problems": len(problems), "rollouts": len(problems) * n, "problems_with_demo": len(with_demo),
                   "scored_rollouts": len(rows), "scored_correct": int(sum(correct)),
                   "teacher_samples": len(t_samples), "teacher_noncopy_samples": len(noncopy),
                   "positional_cases": len(positional)},
        "headroom": HEADROOM,
        "teacher_tilt": teacher_tilt(delta, rows),
        # share of all student rollouts whose first invalid token is of each kind (tasks with TokenValidity only)
        **({"first_errors": errors} if errors else {}),
    }
    return GateReport(task.name, str(model_path), all(c.passed is not False for c in checks), _rounded(metrics),
                      checks, details)


def teacher_tilt(delta: np.ndarray, rows: Sequence[tuple]) -> dict[str, float | int | None]:
    """Mean Δ = log p(y|c,x) - log p(y|x) of correct rollouts y in the demo c's functional class against
    correct rollouts of another class: how much more the demo-conditioned teacher lifts its demo's own mode
    (issue 29: the pointwise mutual information of arXiv 2606.26091's fixed point, measured)."""
    same = [float(d) for d, (c, other, _) in zip(delta, rows, strict=True) if c and not other]
    other = [float(d) for d, (c, o, _) in zip(delta, rows, strict=True) if c and o]
    s, o = _mean(same), _mean(other)
    return {"same_class_mean": _round(s), "other_class_mean": _round(o),
            "difference": None if s is None or o is None else _round(s - o),
            "same_class_rollouts": len(same), "other_class_rollouts": len(other)}


def _round(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 4)


def _rounded(metrics: dict[str, float | None]) -> dict[str, float | None]:
    return {k: _round(v) for k, v in metrics.items()}


# A task on a real pretrained model (`gate = "real_model"` on its class) is held to issue 30's gate: pass@1 in
# [0.15, 0.60] (a 135M chat model solves little of any natural-language task), Δ-AUC >= 0.60; copy rate, the
# Δ of non-copies and positional copying are reported beside it, not checked (the embedded testbeds shape them
# in their pretraining corpus; a real model's are what they are).
REAL_MODEL_INFO = ("delta_noncopy_correct_mean", "copy_rate", "positional_copy_share")


def _checks(m: dict[str, float | None], student_ref: float | None, notes: dict[str, str],
            real_model: bool = False) -> list[Check]:
    """The issue's thresholds; a metric that could not be measured (None) fails, except a threshold
    that does not apply to the task (positional copying without a per-token notion)."""

    def check(name: str, value: float | None, threshold: str, ok: Callable[[float], bool]) -> Check:
        return Check(name, _round(value), threshold, None if value is None else bool(ok(value)))

    ref = None if student_ref is None else student_ref - 0.02
    incorrect = m["delta_incorrect_mean"]
    out = [
        check("student_pass1", m["student_pass1"], "in [0.15, 0.60]" if real_model else "in [0.25, 0.60]",
              lambda v: (0.15 if real_model else 0.25) <= v <= 0.60),
        check("pass_gain", m["pass_gain"], ">= 0.30", lambda v: v >= 0.30),
        check("distinct_correct", m["distinct_correct"], ">= 3", lambda v: v >= 3),
        check("teacher_noncopy_pass1", m["teacher_noncopy_pass1"],
              ">= student pass@1 on the same problems - 0.02" + ("" if ref is None else f" = {ref:.3f}"),
              lambda v: ref is not None and v >= ref),
        check("delta_auc", m["delta_auc"], ">= 0.60" if real_model else ">= 0.70",
              lambda v: v >= (0.60 if real_model else 0.70)),
        check("delta_noncopy_correct_mean", m["delta_noncopy_correct_mean"],
              "> delta_incorrect_mean" + ("" if incorrect is None else f" = {incorrect:.3f}"),
              lambda v: incorrect is not None and v > incorrect),
        check("copy_rate", m["copy_rate"], "in [0.3, 0.7]", lambda v: 0.3 <= v <= 0.7),
    ]
    if "positional_copy_share" in notes:
        out.append(Check("positional_copy_share", None, f"<= 0.05 (not applicable: {notes['positional_copy_share']})",
                         None))
    else:
        out.append(check("positional_copy_share", m["positional_copy_share"], "<= 0.05", lambda v: v <= 0.05))
    if real_model:
        out = [Check(c.name, c.value, f"{c.threshold} (reported, not checked on a real model)", None)
               if c.name in REAL_MODEL_INFO else c for c in out]
        notes = {**notes, **{name: "real model" for name in REAL_MODEL_INFO}}
    # An unmeasurable value (no correct rollouts, no demo, ...) fails: nothing to judge is no pass.
    return [c if c.passed is not None or c.name in notes else
            Check(c.name, c.value, c.threshold + " (not measurable)", False) for c in out]
