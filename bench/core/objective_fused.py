"""The SD objective on the fused path: hidden states + output head -> sdbench.core.kernels.

Same loss as `sdbench.core.objective` (its module docstring has the formula), computed without the
[tokens x vocab] logits of the batch: the divergence and the entropy bonus go through
`fused_linear_divergence` (chunked, gradients formed in the same pass; teacher-entropy gates and
signed log-mean weights included), the policy-gradient term through a chunked log-prob whose
chunks are recomputed in backward, and the other sampled-token terms (hint contrast, KL to the base,
cross-entropy) through sdbench.core.policy_terms on that same log-prob. A per-token `divergence_clip`
takes the kernel's per-token ("none") reduction, clamped here. The plans the kernel does not
express — an entropy bonus on a rollout without a teacher, or beside a divergence clip — are answered
by the reference path instead (`fused_supported`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import torch

from sdbench.core._forward import score_hidden
from sdbench.core.loss_items import LossItem, TeacherLayout, fill_stack, teacher_layout
from sdbench.core.scoring import chunked_token_logprob, gather_at, hidden_fn
from sdbench.core.settings import LossSpec
from sdbench.core.timing import NO_TIMER, StageTimer


def fused_supported(items: Sequence[LossItem]) -> bool:
    return not any(it.plan.entropy_coef != 0.0 and (not it.plan.teachers or it.plan.distill_weight == 0.0
                                                     or it.plan.divergence_clip is not None) for it in items)


def student_hidden(student, items: Sequence[LossItem], lengths: list[int], pad_id: int, forward: str,
                   ) -> torch.Tensor:
    """The student's final hidden states at the positions predicting each completion token [N, H]."""
    if forward == "shared":
        return score_hidden(student, [it.prompt_ids for it in items], [it.completion_ids for it in items], pad_id)
    device = next(student.parameters()).device
    return gather_at(hidden_fn(student), [[*it.prompt_ids, *it.completion_ids] for it in items],
                     [len(it.prompt_ids) for it in items], lengths, pad_id, device)


def teacher_hidden(teacher, layout: TeacherLayout, pad_id: int, forward: str, device: torch.device) -> torch.Tensor:
    """The teacher's final hidden states for every (rollout, context) sequence of `layout`, stacked."""
    if forward == "shared":
        return score_hidden(teacher, [s[:st] for s, st in zip(layout.sequences, layout.starts, strict=True)],
                            [s[st:] for s, st in zip(layout.sequences, layout.starts, strict=True)], pad_id)
    return gather_at(hidden_fn(teacher), layout.sequences, layout.starts, layout.lengths, pad_id, device)


class _TeacherThread(threading.Thread):
    """`teacher_hidden` on another thread while this one runs the student's forward: both only read
    weights, and with one intra-op thread each op runs on the thread that calls it, so the rows are the
    ones the teacher would give in line (bit for bit). Its own time goes to the "teacher" stage."""

    def __init__(self, teacher, layout: TeacherLayout, pad_id: int, forward: str, device: torch.device,
                 timer: StageTimer) -> None:
        super().__init__(daemon=True, name="sdbench-teacher")
        self.args, self.layout, self.timer = (teacher, layout, pad_id, forward, device), layout, timer
        self.rows: torch.Tensor | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        start = time.perf_counter()
        try:
            with torch.no_grad():           # (grad mode is per thread)
                self.rows = teacher_hidden(*self.args)
        except BaseException as exc:        # re-raised on the student's thread by result()
            self.error = exc
        finally:
            self.timer.add("teacher", time.perf_counter() - start)

    def result(self) -> torch.Tensor:
        self.join()
        if self.error is not None:
            raise self.error
        assert self.rows is not None
        return self.rows


def fused_loss_sum(student, teacher, items: Sequence[LossItem], lengths: list[int], loss: LossSpec, *,
                   pad_id: int, timer: StageTimer = NO_TIMER, forward: str = "shared", overlap: bool = False,
                   reference=None) -> tuple[torch.Tensor, float]:
    """Sum over tokens of the per-token loss, and the mean distillation term over distilled tokens.

    forward="shared" scores with sdbench.core._forward (each distinct prompt / teacher context once, no
    padding waste); "padded" is the previous route (one right-padded transformers call per 256
    sequences), kept as the reference for tests and benchmarks. Both give the same loss and gradients
    up to float rounding. `overlap`: the teacher's forward runs on a second thread beside the student's
    (for a cell with an idle core; the same numbers), its time in the "teacher" stage overlapping "student"."""
    teacher_thread = None
    if overlap and any(it.plan.teachers and it.plan.distill_weight != 0.0 for it in items):
        teacher_thread = _TeacherThread(teacher, teacher_layout(items, lengths), pad_id, forward,
                                 next(student.parameters()).device, timer)
    with timer("student"):
        head = student.get_output_embeddings().weight
        h_student = student_hidden(student, items, lengths, pad_id, forward).to(head.dtype)
        targets = torch.tensor([t for it in items for t in it.completion_ids], device=h_student.device)
        return _loss_sum(student, teacher, items, lengths, h_student, head, targets, loss, pad_id=pad_id, timer=timer,
                         forward=forward, teacher_thread=teacher_thread, reference=reference)


@torch.no_grad()
def _teacher_entropy(items: Sequence[LossItem], layout: TeacherLayout, stack: torch.Tensor, weights: torch.Tensor,
                     head: torch.Tensor, temperature: float, dtype: torch.dtype, chunk: int = 256) -> torch.Tensor:
    """H(p_teacher) [N] of the combined teacher at the tokens of plans with `teacher_entropy_weight` (0
    elsewhere), in chunks of `chunk` tokens so [tokens x vocab] teacher logits never exist for the batch."""
    from sdbench.core.divergence import combine_teachers, entropy

    out = torch.zeros(stack.shape[1], dtype=dtype, device=stack.device)
    for mode in sorted({it.plan.combine for it in items}):
        picked = [torch.arange(layout.offsets[i], layout.offsets[i + 1]) for i, it in enumerate(items)
                  if it.plan.combine == mode and it.plan.teacher_entropy_weight is not None]
        if not picked:
            continue
        for part in torch.cat(picked).split(chunk):
            logits = (stack[:, part.to(stack.device)] @ head.T).to(dtype) / temperature
            out[part.to(out.device)] = entropy(combine_teachers(logits.log_softmax(-1),
                                                                weights[:, part].to(dtype).to(logits.device), mode))
    return out


def _loss_sum(student, teacher, items: Sequence[LossItem], lengths: list[int], h_student: torch.Tensor,
              head: torch.Tensor, targets: torch.Tensor, loss: LossSpec, *, pad_id: int, timer: StageTimer,
              forward: str, teacher_thread: _TeacherThread | None = None, reference=None,
              ) -> tuple[torch.Tensor, float]:
    from sdbench.core.kernels import fused_linear_divergence
    from sdbench.core.policy_terms import entropy_weights, sampled_token_terms, token_advantages

    device = h_student.device
    temperature = loss.temperature

    math_dtype = torch.float64 if head.dtype == torch.float64 else torch.float32

    def per_token(values: Sequence[float]) -> torch.Tensor:
        return torch.tensor([v for v, n in zip(values, lengths, strict=True) for _ in range(n)],
                            dtype=math_dtype, device=device)

    total = h_student.new_zeros((), dtype=math_dtype)
    distill_stat = 0.0
    token_w = per_token([it.plan.distill_weight if it.plan.teachers else 0.0 for it in items])
    if bool((token_w != 0).any()):
        if teacher_thread is not None:
            layout, rows = teacher_thread.layout, teacher_thread.result()
        else:
            layout = teacher_layout(items, lengths)
            with torch.no_grad(), timer.pause("student"), timer("teacher"):
                rows = teacher_hidden(teacher, layout, pad_id, forward, device)
        stack, weights = fill_stack(layout, rows.to(head.dtype), h_student)
        coef = per_token([it.plan.entropy_coef / it.plan.distill_weight if it.plan.teachers and
                         it.plan.distill_weight else 0.0 for it in items])
        teacher_head = None if teacher is student else teacher.get_output_embeddings().weight
        gates = [it.plan.teacher_entropy_gate for it in items]
        gate = None
        if any(g is not None for g in gates):
            gate = (per_token([g[0] if g else float("-inf") for g in gates]),
                    per_token([g[1] if g else float("inf") for g in gates]))
        modes = [it.plan.combine for it in items]
        if any(it.plan.teacher_entropy_weight is not None for it in items):
            entropy = _teacher_entropy(items, layout, stack, weights, teacher_head if teacher_head is not None
                                       else head, temperature, math_dtype)
            dynamic = entropy_weights(items, lengths, entropy)
            token_w, coef = token_w * dynamic, coef / dynamic   # the entropy bonus keeps its own scale
        clips = [it.plan.divergence_clip for it in items]
        # A clip needs each token's divergence before the weight: the kernel's per-token reduction with unit
        # weights (0 keeps padding rows skipped), clamped, then weighted (no entropy bonus here: fused_supported).
        clip = per_token([float("inf") if c is None else c for c in clips]) if any(c is not None for c in clips) \
            else None
        for mode in sorted(set(modes)):
            idx = torch.cat([torch.arange(layout.offsets[i], layout.offsets[i + 1])
                             for i, m in enumerate(modes) if m == mode]).to(device)
            part = fused_linear_divergence(
                h_student[idx], head, stack[:, idx], loss=loss, context_weights=weights[:, idx.cpu()].to(device),
                combine=mode, token_weights=token_w[idx] if clip is None else (token_w[idx] != 0).to(math_dtype),
                target_ids=targets[idx] if loss.estimator == "sampled_token" else None,
                entropy_coef=coef[idx], reduction="sum" if clip is None else "none", teacher_head=teacher_head,
                teacher_entropy_gate=None if gate is None else (gate[0][idx], gate[1][idx]))
            if clip is not None:
                part = (torch.minimum(part, clip[idx]) * token_w[idx]).sum()
            total = total + part
        distill_stat = float(total.detach()) / max(int((token_w != 0).sum()), 1)
    advantage = per_token([it.plan.advantage or 0.0 for it in items])
    sampled = None
    impl = "fused" if forward == "shared" else "fused_padded"
    if bool((advantage != 0).any()):
        if any(it.plan.contrast is not None for it in items):   # the teacher scores the hints
            with timer.pause("student"), timer("teacher"):
                advantage = token_advantages(items, lengths, advantage, teacher, pad_id=pad_id,
                                             temperature=temperature, impl=impl)
        sampled = chunked_token_logprob(h_student, head, targets, temperature)
        total = total - (advantage * sampled).sum()
    extra = sampled_token_terms(items, lengths, sampled,
                                lambda t: chunked_token_logprob(h_student, head, targets, t), reference,
                                pad_id=pad_id, temperature=temperature, impl=impl)
    if extra is not None:
        total = total + extra.sum()
    return total, distill_stat
