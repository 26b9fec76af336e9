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
  with a per-token notion of validity have it (`FIRST_INVALID`); others report None and the reason.
  `details["first_errors"]` says where the student's first errors fall (`ERROR_KIND`: for graph_paths a
  non-edge to a live node, to a dead one, a dead end, ...), as shares of all rollouts.
Teacher tilt by class (information, no threshold; issue 29): mean Δ of correct rollouts in the demo's class
against correct rollouts of another class (`details["teacher_tilt"]`) — the PMI the SD fixed point tilts by.
Headroom (GRPO quick test pass@1 <= 0.90) needs a training run and is not measured here.
Tests: pytest tests/test_gate.py
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdbench.atomic import atomic_write_bytes
from sdbench.core.model import encode_prompt, load_model, prompt_format, tokenizer_info
from sdbench.core.sampling import sample
from sdbench.core.scoring import gather_at
from sdbench.eval.passk import pass_at_k
from sdbench.strategy import Group, Rollout, class_of, draw_demos, single_demo_plans
from sdbench.task import Problem, Task, load_task, stable_rng, verify_groups

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
def graph_paths_first_invalid(problem: Problem, tokens: Sequence[str]) -> int | None:
    """Index of the first token after which no valid path can follow; None if there is none.

    `tokens` are the completion's words, then EOS if it finished. A word is invalid when the prefix it
    ends is no prefix of a valid path: not an edge from the previous node, a repeated node, or a node
    from which the target cannot be reached; EOS is invalid unless the path is complete. Flagging the
    dead end itself (not the target token after it) matters: every path ends with the target, so the
    later token would equal the demo's by construction and read as positional copying."""
    paths = [tuple(p.split()) for p in problem.data["paths"]]
    prefixes = {p[:i] for p in paths for i in range(1, len(p) + 1)}
    complete = set(paths)
    for t, token in enumerate(tokens):
        if token == EOS:
            return None if tuple(tokens[:t]) in complete else t
        if tuple(tokens[:t + 1]) not in prefixes:
            return t
    return None


def graph_paths_error_kind(problem: Problem, tokens: Sequence[str], t: int) -> str:
    """What the first invalid token `tokens[t]` is: `non_edge_live` (no edge from the previous node, to a
    node on some valid path: the error a positional copy can make, since the demo's nodes are all live),
    `non_edge_dead` (no edge, to a node on no valid path), `dead_end` (a real edge into a node from which the
    target cannot be reached), `repeat`, `wrong_source`, `eos` (ended before the target) or `past_target`."""
    token, edges = tokens[t], problem.data["edges"]
    live = {n for p in problem.data["paths"] for n in p.split()}
    if t == 0:
        return "wrong_source"
    if token == EOS:
        return "eos"
    if tokens[t - 1] == problem.data["target"]:
        return "past_target"
    if token in tokens[:t]:
        return "repeat"
    if token not in edges.get(tokens[t - 1], ()):
        return "non_edge_live" if token in live else "non_edge_dead"
    return "dead_end"


FIRST_INVALID: dict[str, Callable[[Problem, Sequence[str]], int | None]] = {
    "graph_paths": graph_paths_first_invalid,
}
# Where the first errors of the student's rollouts fall (details["first_errors"]): the breakdown that says why
# positional copying is high or low (the demo's tokens are all live, so only non-edge errors to live nodes can copy).
ERROR_KIND: dict[str, Callable[[Problem, Sequence[str], int], str]] = {
    "graph_paths": graph_paths_error_kind,
}
NO_FIRST_INVALID: dict[str, str] = {
    "arith_target": "graded by the value of the whole expression, not token by token",
    "code_synth": "graded by execution in the sandbox: no per-token notion of a first invalid token",
}


def positional_copy(problem: Problem, completion: str, finished: bool, demo: str,
                    first_invalid: Callable[[Problem, Sequence[str]], int | None]) -> bool | None:
    """Whether the rollout's first error is a positional copy: its first invalid token equals the demo's
    token at the same position while the prefix before it already differs from the demo's. None when no
    invalid token is found. The share is taken over all first errors (as the issue measures it: "in 18%
    of incorrect rollouts ..."), so an error made while still on the demo's prefix counts as no copy."""
    tokens = completion.split() + ([EOS] if finished else [])
    demo_tokens = demo.split() + [EOS]
    t = first_invalid(problem, tokens)
    if t is None:
        return None
    return tokens[:t] != demo_tokens[:t] and t < len(demo_tokens) and tokens[t] == demo_tokens[t]


# ---------------------------------------------------------------- model calls
@torch.no_grad()
def sequence_logprobs(model, contexts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]],
                      pad_id: int, batch_size: int = 256, shared_prefix: bool = False) -> np.ndarray:
    """sum_t log p(completion_t | context, completion_<t) for each pair, in batches (nats).

    shared_prefix: each distinct context runs once (`sdbench.core._forward.score_hidden`, the training step's
    scorer; equal to the padded route up to float rounding). A real model's gate takes it: its 32 rollouts per
    problem share one ~110-token chat context, which the padded route would run 32 times (hours on 2 cores)."""
    if not contexts:
        return np.zeros(0)
    device = next(model.parameters()).device
    if shared_prefix:
        from sdbench.core._forward import score_hidden

        head = model.get_output_embeddings().weight
        sums = []
        for start in range(0, len(contexts), batch_size):
            ctx, ys = contexts[start:start + batch_size], completions[start:start + batch_size]
            rows = score_hidden(model, ctx, ys, pad_id)
            targets = torch.tensor([t for y in ys for t in y], dtype=torch.long, device=device)
            picked = torch.log_softmax((rows @ head.T).float(), dim=-1).gather(1, targets[:, None]).squeeze(1)
            per_token = picked.double().cpu().numpy()
            bounds = np.cumsum([0, *[len(y) for y in ys]])
            sums.extend(per_token[x:z].sum() for x, z in zip(bounds[:-1], bounds[1:], strict=True))
        return np.array(sums)

    def logp(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)

    rows = gather_at(logp, [[*c, *y] for c, y in zip(contexts, completions, strict=True)],
                     [len(c) for c in contexts], [len(y) for y in completions], pad_id, device, batch_size)
    targets = torch.tensor([t for y in completions for t in y], dtype=torch.long, device=device)
    per_token = rows.gather(1, targets[:, None]).squeeze(1).double().cpu().numpy()
    bounds = np.cumsum([0, *[len(y) for y in completions]])
    return np.array([per_token[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:], strict=True)])


@dataclass
class _Graded:
    rollouts: tuple[Rollout, ...]
    token_ids: list[list[int]]       # completion ids, EOS appended when finished
    finished: list[bool]


def _sample_graded(model, tok, task: Task, problems: Sequence[Problem], contexts: Sequence[list[int]],
                   n: int, seed: int) -> list[_Graded]:
    """n samples per context at the task's temperature, decoded and graded (code runs only in the sandbox)."""
    info = tokenizer_info(tok)
    samples = sample(model, contexts, num_samples=n, max_new_tokens=task.max_new_tokens, eos_id=info.eos_id,
                     pad_id=info.pad_id, generator=torch.Generator().manual_seed(seed),
                     temperature=float(getattr(task, "temperature", 1.0)))
    groups = [samples[i * n:(i + 1) * n] for i in range(len(contexts))]
    texts = [[tok.decode(list(s.token_ids), skip_special_tokens=True) for s in g] for g in groups]
    out = []
    for group, group_texts, verdicts in zip(groups, texts, verify_groups(task, problems, texts), strict=True):
        rollouts = tuple(Rollout(index=j, completion=t, correct=v.correct, reward=float(v.correct),
                                 functional_class=v.functional_class, semantic_class=v.semantic_class)
                         for j, (t, v) in enumerate(zip(group_texts, verdicts, strict=True)))
        out.append(_Graded(rollouts, [[*s.token_ids, info.eos_id] if s.finished else list(s.token_ids)
                                      for s in group], [s.finished for s in group]))
    return out


# ---------------------------------------------------------------- the gate
def run_gate(task_name: str, model_path: str | None = None, budget: GateBudget | None = None) -> GateReport:
    """Measure the gate's metrics for `task_name` on `model_path` (default: the task's base model)."""
    budget = budget or GateBudget()
    start = time.perf_counter()
    task = load_task(task_name)
    model_path = model_path or task.base_model()
    model, tok = load_model(model_path)
    info = tokenizer_info(tok)
    fmt = prompt_format(task)          # the task's prompt format (chat template or plain), student and teacher alike
    problems = task.problems("train", budget.problems, seed=budget.seed)
    student = _sample_graded(model, tok, task, problems, [encode_prompt(tok, p.prompt, fmt) for p in problems],
                             budget.samples, budget.seed)

    n = budget.samples
    counts = np.array([sum(r.correct for r in g.rollouts) for g in student])
    distinct = [len({class_of(r) for r in g.rollouts if r.correct}) for g in student]

    # Δ: one demo per rollout, drawn as single_sampled_demo draws it (same helper, a fixed rng per problem).
    contexts, students, completions, rows = [], [], [], []  # rows: (correct, class != demo's, positional case)
    first_invalid = FIRST_INVALID.get(task.name)
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
            positional = (None if r.correct or first_invalid is None else
                          positional_copy(problem, r.completion, g.finished[r.index], demo.completion, first_invalid))
            rows.append((r.correct, class_of(r) != class_of(demo), positional))
    real_model = getattr(task, "gate", None) == "real_model"
    teacher_lp = sequence_logprobs(model, contexts, completions, info.pad_id, budget.batch_size, real_model)
    student_lp = sequence_logprobs(model, students, completions, info.pad_id, budget.batch_size, real_model)
    delta = teacher_lp - student_lp
    correct = [c for c, _, _ in rows]
    positional = [p for _, _, p in rows if p is not None]

    # Teacher as a policy: one uniformly drawn correct rollout as demo per problem that has one.
    with_demo = [i for i, g in enumerate(student) if any(r.correct for r in g.rollouts)]
    demos = [draw_demos([r for r in student[i].rollouts if r.correct], 1,
                        stable_rng("gate", budget.seed, problems[i].id, "policy"))[0] for i in with_demo]
    teacher = _sample_graded(model, tok, task, [problems[i] for i in with_demo],
                             [encode_prompt(tok, task.teacher_prompt(problems[i], [d.completion]), fmt)
                              for i, d in zip(with_demo, demos, strict=True)],
                             budget.teacher_samples, budget.seed + 1) if with_demo else []
    t_samples = [(r, class_of(r) == class_of(d) if r.correct else False)
                 for g, d in zip(teacher, demos, strict=True) for r in g.rollouts]
    noncopy = [r.correct for r, copied in t_samples if not copied]

    error_kind, kinds = ERROR_KIND.get(task.name), {}
    if first_invalid is not None and error_kind is not None:
        for problem, g in zip(problems, student, strict=True):
            for r in g.rollouts:
                tokens = r.completion.split() + ([EOS] if g.finished[r.index] else [])
                t = None if r.correct else first_invalid(problem, tokens)
                if t is not None:
                    kind = error_kind(problem, tokens, t)
                    kinds[kind] = kinds.get(kind, 0) + 1
    first_errors = {k: round(v / (len(problems) * n), 4) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])}

    metrics: dict[str, float | None] = {
        "student_pass1": float(np.mean(counts / n)),
        "pass_gain": float(np.mean(pass_at_k(n, counts, n)) - np.mean(counts / n)),
        "distinct_correct": float(np.mean(distinct)),
        "teacher_pass1": _mean([r.correct for r, _ in t_samples]),
        "teacher_noncopy_pass1": _mean(noncopy),
        "copy_rate": _mean([copied for _, copied in t_samples]),
        "delta_auc": roc_auc(delta, correct),
        "student_loglik_auc": roc_auc(student_lp, correct),
        "delta_noncopy_correct_mean": _mean([d for d, (c, other, _) in zip(delta, rows, strict=True) if c and other]),
        "delta_incorrect_mean": _mean([d for d, (c, _, _) in zip(delta, rows, strict=True) if not c]),
        "positional_copy_share": _mean(positional) if first_invalid is not None else None,
    }
    # The teacher is measured on the problems that have a demo, so it is held against the student there.
    student_ref = _mean([counts[i] / n for i in with_demo])
    notes = {"positional_copy_share": NO_FIRST_INVALID.get(task.name, "no per-token notion of a first invalid "
                                                                     "token is implemented for this task")
             } if first_invalid is None else {}
    checks = _checks(metrics, student_ref, notes, real_model=real_model)
    details = {
        "budget": asdict(budget), "wall_s": round(time.perf_counter() - start, 1), "notes": notes,
        "student_pass1_on_demo_problems": student_ref, "pass_gain_k": n,
        "counts": {"problems": len(problems), "rollouts": len(problems) * n, "problems_with_demo": len(with_demo),
                   "scored_rollouts": len(rows), "scored_correct": int(sum(correct)),
                   "teacher_samples": len(t_samples), "teacher_noncopy_samples": len(noncopy),
                   "positional_cases": len(positional)},
        "headroom": HEADROOM,
        "teacher_tilt": teacher_tilt(delta, rows),
        # share of all student rollouts whose first invalid token is of each kind (tasks with ERROR_KIND only)
        **({"first_errors": first_errors} if first_errors else {}),
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


# ---------------------------------------------------------------- the committed numbers
# One file for all tasks, outside the model directories: `weights_hash` (run provenance) hashes every
# .json of a model directory, so a gate file there would change the recorded hash of unchanged
# weights, and `sdbench pretrain --force` replaces the directory (and would drop it).
def gate_file() -> Path:
    """tasks/assets/gate/gate.json inside the installed sdbench.tasks package."""
    import sdbench.tasks

    return Path(sdbench.tasks.__file__).parent / "assets" / "gate" / "gate.json"


def _weights_sha(model_path: str) -> str | None:
    weights = Path(model_path) / "model.safetensors"
    return hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else None


def write_gate(report: GateReport, path: Path | None = None) -> Path:
    """Record `report` as the task's committed gate numbers (other tasks' entries are kept)."""
    path = path or gate_file()
    entries = json.loads(path.read_text()) if path.is_file() else {}
    entries[report.task] = {**report.to_json(), "model": Path(report.model).name,
                            "weights_sha256": _weights_sha(report.model)}
    atomic_write_bytes(path, (json.dumps(dict(sorted(entries.items())), indent=1) + "\n").encode())
    return path


def read_gate(task: str, model_path: str | None, path: Path | None = None) -> dict[str, Any] | None:
    """The committed gate entry of `task` with `stale: True` when the model's weights changed since."""
    path = path or gate_file()
    if not path.is_file():
        return None
    entry = json.loads(path.read_text()).get(task)
    if entry is None:
        return None
    current = _weights_sha(model_path) if model_path else None
    return {"passed": entry["passed"], "metrics": entry["metrics"], "checks": entry["checks"],
            "budget": entry["details"]["budget"], "stale": current is None or current != entry["weights_sha256"]}
