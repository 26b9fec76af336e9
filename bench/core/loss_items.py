"""The loss's inputs and bookkeeping: a tokenized rollout with its plan (`LossItem`), the step's statistics
(`LossStats`), and where each teacher context's rows go in the [contexts x tokens] stack (`teacher_layout`,
`fill_stack`).

    items = [LossItem(prompt_ids, completion_ids, plan, teacher_prompt_ids)]   # built by the trainer
    layout = teacher_layout(items, lengths); stack, weights = fill_stack(layout, rows, student_rows)

Shared by the materialized route (`sdbench.core.objective`) and the fused one (`...objective_fused`),
below both, so neither imports the other for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

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
