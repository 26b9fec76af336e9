"""The one self-distillation objective every strategy runs through.

For each student rollout y (tokens y_1..y_T after the prompt x) and the strategy's plan for it:
    loss_t = distill_weight · g_t · min(D(p_student(·|x, y<t) || p_teacher(·|c, x, y<t)), divergence_clip)
           − entropy_coef  · H(p_student(·|x, y<t))
           − a_t            · log p_student(y_t|x, y<t)
           + kl_coef        · k3(p_base(y_t) / p_student(y_t))  − sft_weight · log p_student^{T=1}(y_t)
where the teacher is the same network (live, frozen or EMA weights) given the demonstration
context c instead of x, p_teacher combines several contexts (mixture or log-mean), and the gate g_t
keeps only tokens whose teacher entropy lies in the plan's `teacher_entropy_gate`; a_t is the plan's
advantage (modulated per token by a `HintContrast`), and the KL to the frozen base weights and the
cross-entropy term are sdbench.core.policy_terms'. The batch loss is the mean of loss_t over every
token of every rollout that has a signal.

`loss_impl="materialized"` materializes the (small-vocabulary) logits; `"fused"` hands hidden states
and the output head to sdbench.core.kernels so [tokens x vocab] logits never exist for the batch.
On the fused path the student and teacher are scored by sdbench.core._forward: each distinct prompt
(shared by a group's G rollouts) and each distinct teacher context is run once and its keys/values
shared by its rows, with little padding — the same loss and gradients as the padded route to float
rounding. `impl="fused_padded"` is the previous fused route (one right-padded transformers call per
256 sequences, every prompt recomputed per rollout), and "materialized" is unchanged: both are kept as
oracles for tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from sdbench.core.divergence import combine_teachers, entropy, token_divergence
from sdbench.core.timing import NO_TIMER, StageTimer
from sdbench.strategy import RolloutPlan


@dataclass(frozen=True)
class LossItem:
    """One rollout, tokenized, with its plan and its teachers' tokenized contexts."""

    prompt_ids: Sequence[int]
    completion_ids: Sequence[int]           # generated tokens, EOS included when the rollout ended
    plan: RolloutPlan
    teacher_prompt_ids: tuple[Sequence[int], ...] = ()   # parallel to plan.teachers
    contrast_prompt_ids: tuple[Sequence[int], ...] = ()  # parallel to plan.contrast.contexts (if any)


@dataclass(frozen=True)
class LossStats:
    loss: float
    divergence: float          # mean divergence over distilled tokens
    entropy: float | None     # mean student entropy over all trained tokens (None on the fused path)
    tokens: int
    rollouts: int


def gather_at(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], sequences: list[list[int]],
              starts: list[int], lengths: list[int], pad_id: int, device: torch.device,
              batch_size: int = 256) -> torch.Tensor:
    """Rows [sum(lengths), D] of fn(ids, mask) -> [B, L, D] at the positions that predict tokens
    seq[start : start+length] of each sequence (right-padded batches of `batch_size`)."""
    out = []
    for b in range(0, len(sequences), batch_size):
        seqs = sequences[b:b + batch_size]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        values = fn(ids.to(device), mask.to(device))
        rows = torch.cat([torch.full((n,), i, dtype=torch.long) for i, n in enumerate(lengths[b:b + batch_size])])
        cols = torch.cat([torch.arange(st - 1, st - 1 + n) for st, n in
                          zip(starts[b:b + batch_size], lengths[b:b + batch_size], strict=True)])
        out.append(values[rows.to(device), cols.to(device)])
    return torch.cat(out)


def upcast(x: torch.Tensor) -> torch.Tensor:
    """Softmax and divergence math in fp32 at least (fp64 stays fp64)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def logits_fn(model) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return lambda ids, mask: model(input_ids=ids, attention_mask=mask).logits


@dataclass
class TeacherLayout:
    """Every (rollout i, context j) teacher sequence, and where its rows go in the [M, N] stack."""

    sequences: list[list[int]]
    starts: list[int]
    lengths: list[int]
    slots: list[tuple[int, int, float]]      # (rollout i, context j, weight)
    width: int                               # M: the most contexts any rollout has
    offsets: list[int]                       # token offset of each rollout in the flat batch


def teacher_layout(items: Sequence[LossItem], lengths: list[int]) -> TeacherLayout:
    layout = TeacherLayout([], [], [], [], max(len(it.plan.teachers) for it in items),
                           torch.tensor([0, *lengths]).cumsum(0).tolist())
    for i, it in enumerate(items):
        for j, (ctx, ids) in enumerate(zip(it.plan.teachers, it.teacher_prompt_ids, strict=True)):
            layout.sequences.append([*ids, *it.completion_ids])
            layout.starts.append(len(ids))
            layout.lengths.append(lengths[i])
            layout.slots.append((i, j, ctx.weight))
    return layout


def fill_stack(layout: TeacherLayout, rows: torch.Tensor, default: torch.Tensor,
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """[M, N, D] teacher rows and [M, N] weights; rollouts without teachers keep `default` (weight 1)."""
    stack = default.detach().unsqueeze(0).repeat(max(layout.width, 1), 1, 1)
    weights = torch.zeros(stack.shape[:2], dtype=torch.float64)
    weights[0] = 1.0
    if layout.slots:
        # Row k of `rows` goes to stack[context j, token t] of its slot (one scatter, no per-slot loop).
        ctx = torch.tensor([j for (_, j, _), n in zip(layout.slots, layout.lengths, strict=True) for _ in range(n)])
        tok = torch.cat([torch.arange(layout.offsets[i], layout.offsets[i] + n)
                         for (i, _, _), n in zip(layout.slots, layout.lengths, strict=True)])
        w = torch.tensor([w for (_, _, w), n in zip(layout.slots, layout.lengths, strict=True) for _ in range(n)],
                         dtype=torch.float64)
        stack[ctx.to(stack.device), tok.to(stack.device)] = rows.to(stack.dtype)
        weights[:, tok] = 0.0                  # tokens with teachers: only their contexts' weights
        weights[ctx, tok] = w
    return stack, weights


def self_distillation_loss(student, teacher, items: Sequence[LossItem], *, divergence: str, beta: float,
                           pad_id: int, temperature: float = 1.0, impl: str = "materialized",
                           estimator: str = "full", topk: int | None = None, timer: StageTimer = NO_TIMER,
                           overlap: bool = False, reference=None) -> tuple[torch.Tensor, LossStats]:
    """Mean per-token loss over the rollouts whose plan is active (see the module docstring).

    impl="fused" computes the same loss without the batch's logits (sdbench.core.objective_fused)
    whenever the plans allow it; LossStats.entropy is then None (it would need the logits).
    `estimator` ("full", "topk" with `topk`, "sampled_token") is the fused kernel's; the materialized
    path computes the full divergence only. `timer` gets the "teacher" (teacher forward) and
    "student" (student forward and the loss) stages. `overlap` (impl="fused"): the teacher's forward on a
    second thread beside the student's, for a cell with an idle core; the same numbers. `reference`: the
    frozen base weights, needed by plans with `kl_coef`.
    """
    items = [it for it in items if it.plan.active and len(it.completion_ids) > 0]
    if not items:
        zero = sum(p.sum() * 0.0 for p in student.parameters())
        return zero, LossStats(0.0, 0.0, 0.0, 0, 0)

    lengths = [len(it.completion_ids) for it in items]
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {', '.join(IMPLS)}, got {impl!r}")
    forward = "shared" if impl == "fused" else "padded"
    if impl != "materialized":
        from sdbench.core.objective_fused import fused_loss_sum, fused_supported

        if fused_supported(items):
            total, distill = fused_loss_sum(student, teacher, items, lengths, divergence=divergence, beta=beta,
                                            pad_id=pad_id, temperature=temperature, estimator=estimator,
                                            topk=topk, timer=timer, forward=forward, overlap=overlap,
                                            reference=reference)
            loss = total / sum(lengths)
            return loss, LossStats(float(loss.detach()), distill, None, sum(lengths), len(items))
    if estimator != "full":
        raise ValueError(f"the {estimator!r} estimator needs the fused path; these plans (an entropy bonus "
                         "without a teacher) use the materialized path, which computes the full divergence only")
    with timer("student"):
        return _materialized_loss(student, teacher, items, lengths, divergence, beta, pad_id, temperature, timer,
                               forward, reference)


IMPLS = ("materialized", "fused", "fused_padded")


def score_logits(model, prefixes: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_id: int,
                 forward: str) -> torch.Tensor:
    """Logits [sum(len(c)), V] at the positions predicting each completion token of prefix + completion:
    "padded" from transformers' full forward (gather_at), "shared" from sdbench.core._forward's hidden
    states through the output head."""
    if forward == "shared":
        from sdbench.core._forward import PrefixScorer, score_hidden

        if PrefixScorer.supports(model):
            return model.get_output_embeddings()(score_hidden(model, prefixes, completions, pad_id))
    device = next(model.parameters()).device
    return gather_at(logits_fn(model), [[*p, *c] for p, c in zip(prefixes, completions, strict=True)],
                     [len(p) for p in prefixes], [len(c) for c in completions], pad_id, device)


def _materialized_loss(student, teacher, items: Sequence[LossItem], lengths: list[int], divergence: str, beta: float,
                    pad_id: int, temperature: float, timer: StageTimer, forward: str = "padded", reference=None,
                    ) -> tuple[torch.Tensor, LossStats]:
    from sdbench.core.policy_terms import sampled_token_terms, token_advantages

    student_logits = score_logits(student, [it.prompt_ids for it in items], [it.completion_ids for it in items],
                                  pad_id, forward)
    student_logits = upcast(student_logits)
    student_logp = torch.log_softmax(student_logits / temperature, dim=-1)
    targets = torch.tensor([t for it in items for t in it.completion_ids], device=student_logp.device)

    def per_token(values: Sequence[float]) -> torch.Tensor:
        return torch.tensor([v for v, n in zip(values, lengths, strict=True) for _ in range(n)],
                            dtype=student_logp.dtype, device=student_logp.device)

    loss_tok = torch.zeros_like(targets, dtype=student_logp.dtype)
    stats_div = 0.0
    distill_mask = per_token([1.0 if it.plan.teachers else 0.0 for it in items]) > 0
    if distill_mask.any():
        with timer.pause("student"), timer("teacher"):
            teacher_logp = _teacher_logp(teacher, items, lengths, student_logp, pad_id, temperature, forward)
        div = token_divergence(student_logp, teacher_logp, divergence, beta)
        div = torch.where(distill_mask, div, torch.zeros_like(div))
        clips = [it.plan.divergence_clip for it in items]
        if any(c is not None for c in clips):
            div = torch.minimum(div, per_token([float("inf") if c is None else c for c in clips]))
        gates = [it.plan.teacher_entropy_gate for it in items]
        if any(g is not None for g in gates):
            lo = per_token([g[0] if g else float("-inf") for g in gates])
            hi = per_token([g[1] if g else float("inf") for g in gates])
            teacher_entropy = entropy(teacher_logp)
            div = torch.where((teacher_entropy >= lo) & (teacher_entropy <= hi), div, torch.zeros_like(div))
        loss_tok = loss_tok + per_token([it.plan.distill_weight for it in items]) * div
        stats_div = float(div.detach()[distill_mask].mean())
    ent = entropy(student_logp)
    bonus = per_token([it.plan.entropy_coef for it in items])
    if bonus.any():
        loss_tok = loss_tok - bonus * ent
    advantage = per_token([it.plan.advantage or 0.0 for it in items])
    sampled = None
    if advantage.any():
        if any(it.plan.contrast is not None for it in items):   # the teacher scores the hints
            with timer.pause("student"), timer("teacher"):
                advantage = token_advantages(items, lengths, advantage, teacher, pad_id=pad_id,
                                             temperature=temperature, impl="materialized")
        sampled = student_logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        loss_tok = loss_tok - advantage * sampled

    def logprob(t: float) -> torch.Tensor:
        logp = student_logp if t == temperature else torch.log_softmax(student_logits / t, dim=-1)
        return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)

    extra = sampled_token_terms(items, lengths, sampled, logprob, reference, pad_id=pad_id, temperature=temperature,
                                impl="materialized")
    if extra is not None:
        loss_tok = loss_tok + extra
    loss = loss_tok.mean()
    stats = LossStats(float(loss.detach()), stats_div, float(ent.detach().mean()), int(targets.numel()), len(items))
    return loss, stats


@torch.no_grad()
def _teacher_logp(teacher, items: Sequence[LossItem], lengths: list[int], student_logp: torch.Tensor,
                  pad_id: int, temperature: float, forward: str = "padded") -> torch.Tensor:
    """Combined teacher log-probs [N, V]; rows of rollouts without teachers copy the student's."""
    layout = teacher_layout(items, lengths)
    rows = score_logits(teacher, [s[:st] for s, st in zip(layout.sequences, layout.starts, strict=True)],
                        [s[st:] for s, st in zip(layout.sequences, layout.starts, strict=True)], pad_id, forward)
    rows = torch.log_softmax(upcast(rows) / temperature, dim=-1)
    stacked, weights = fill_stack(layout, rows, student_logp)
    combined = torch.empty_like(student_logp)
    modes = [it.plan.combine for it in items]
    for mode in set(modes):
        idx = torch.cat([torch.arange(layout.offsets[i], layout.offsets[i + 1])
                         for i, m in enumerate(modes) if m == mode])
        combined[idx] = combine_teachers(stacked[:, idx], weights[:, idx].to(stacked.dtype), mode)
    return combined
