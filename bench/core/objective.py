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

`LossSpec.loss_impl="materialized"` materializes the (small-vocabulary) logits; `"fused"` hands hidden states
and the output head to sdbench.core.kernels so [tokens x vocab] logits never exist for the batch.
On the fused path the student and teacher are scored by sdbench.core._forward: each distinct prompt
(shared by a group's G rollouts) and each distinct teacher context is run once and its keys/values
shared by its rows, with little padding — the same loss and gradients as the padded route to float
rounding. `loss_impl="fused_padded"` is the previous fused route (one right-padded transformers call per
256 sequences, every prompt recomputed per rollout), and "materialized" is unchanged: both are kept as
oracles for tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sdbench.core._forward import score_logits
from sdbench.core.divergence import combine_teachers, entropy, token_divergence
from sdbench.core.loss_items import LossItem, LossStats, fill_stack, teacher_layout
from sdbench.core.scoring import upcast
from sdbench.core.settings import LossSpec
from sdbench.core.timing import NO_TIMER, StageTimer

# what a caller of the loss needs
__all__ = ["LossItem", "LossSpec", "LossStats", "micro_batched_backward", "self_distillation_loss"]


def self_distillation_loss(student, teacher, items: Sequence[LossItem], loss: LossSpec, *, pad_id: int,
                           timer: StageTimer = NO_TIMER, overlap: bool = False, reference=None,
                           ) -> tuple[torch.Tensor, LossStats]:
    """Mean per-token loss over the rollouts whose plan is active (see the module docstring).

    `loss` (the cell's `LossSpec`) says which divergence, temperature and estimator, and the route:
    loss_impl="fused" computes the same loss without the batch's logits (sdbench.core.objective_fused)
    whenever the plans allow it; LossStats.entropy is then None (it would need the logits). The
    estimator ("full", "topk", "sampled_token") is the fused kernel's; the materialized path computes the
    full divergence only. `timer` gets the "teacher" (teacher forward) and "student" (student forward and
    the loss) stages. `overlap` (fused): the teacher's forward on a second thread beside the student's, for a
    cell with an idle core; the same numbers. `reference`: the frozen base weights, needed by plans with `kl_coef`.
    """
    items = [it for it in items if it.plan.active and len(it.completion_ids) > 0]
    if not items:
        zero = sum(p.sum() * 0.0 for p in student.parameters())
        return zero, LossStats(0.0, 0.0, 0.0, 0, 0)

    lengths = [len(it.completion_ids) for it in items]
    forward = "shared" if loss.loss_impl == "fused" else "padded"
    if loss.loss_impl != "materialized":
        from sdbench.core.objective_fused import fused_loss_sum, fused_supported

        if fused_supported(items):
            total, distill = fused_loss_sum(student, teacher, items, lengths, loss, pad_id=pad_id, timer=timer,
                                            forward=forward, overlap=overlap, reference=reference)
            mean = total / sum(lengths)
            return mean, LossStats(float(mean.detach()), distill, None, sum(lengths), len(items))
    if loss.estimator != "full":
        raise ValueError(f"the {loss.estimator!r} estimator needs the fused path; these plans (an entropy bonus "
                         "without a teacher) use the materialized path, which computes the full divergence only")
    with timer("student"):
        return _materialized_loss(student, teacher, items, lengths, loss, pad_id, timer, forward, reference)


def _materialized_loss(student, teacher, items: Sequence[LossItem], lengths: list[int], loss: LossSpec, pad_id: int,
                       timer: StageTimer, forward: str = "padded", reference=None) -> tuple[torch.Tensor, LossStats]:
    from sdbench.core.policy_terms import entropy_weights, sampled_token_terms, token_advantages

    temperature = loss.temperature

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
        div = token_divergence(student_logp, teacher_logp, loss.divergence, loss.jsd_beta)
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
        dynamic = entropy_weights(items, lengths, entropy(teacher_logp))
        if dynamic is not None:
            div = div * dynamic
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
    mean = loss_tok.mean()
    stats = LossStats(float(mean.detach()), stats_div, float(ent.detach().mean()), int(targets.numel()), len(items))
    return mean, stats


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


def micro_batched_backward(student, teacher, items: Sequence[LossItem], loss: LossSpec, *, size: int, pad_id: int,
                           timer: StageTimer = NO_TIMER, overlap: bool = False, reference=None,
                           check=None) -> LossStats:
    """`self_distillation_loss(...).backward()` in micro-batches of `size` rollouts (gradient accumulation
    within one optimizer step): each batch's mean loss is weighted by its share of the step's loss tokens, so
    the accumulated gradient is the whole step's mean-loss gradient to float rounding, while only one batch's
    activations are alive at a time (a real model's step of 32 rollouts held ~9.5 GB at once; batches of one
    prompt's group keep its shared prefix in one batch). Returns the whole step's LossStats, combined exactly:
    loss and entropy weighted by tokens, the divergence by distilled tokens. `check(loss)` runs on each
    batch's loss before its backward (the trainer's finiteness check). Call `zero_grad` before."""
    active = [it for it in items if it.plan.active and len(it.completion_ids) > 0]
    total = sum(len(it.completion_ids) for it in active)
    loss_sum = div_sum = ent_sum = 0.0
    distilled = rollouts = 0
    entropy_known = True
    for start in range(0, len(active), size):
        batch = active[start:start + size]
        mean, stats = self_distillation_loss(student, teacher, batch, loss, pad_id=pad_id, timer=timer,
                                             overlap=overlap, reference=reference)
        if check is not None:
            check(mean)
        with timer("backward"):
            (mean * (stats.tokens / total)).backward()
        n_distilled = sum(len(it.completion_ids) for it in batch if it.plan.teachers)
        loss_sum += stats.loss * stats.tokens
        div_sum += stats.divergence * n_distilled
        distilled += n_distilled
        rollouts += stats.rollouts
        if stats.entropy is None:
            entropy_known = False
        else:
            ent_sum += stats.entropy * stats.tokens
    if not rollouts:
        return LossStats(0.0, 0.0, 0.0, 0, 0)
    return LossStats(loss_sum / total, div_sum / distilled if distilled else 0.0,
                     ent_sum / total if entropy_known else None, total, rollouts)
