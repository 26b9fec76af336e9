"""The divergence formulas in plain torch (autograd gives the gradients): the definitions of
`sdbench.core.divergence`, which documents them and re-exports these names lazily.

    from sdbench.core.divergence import token_divergence, entropy, combine_teachers
"""

from __future__ import annotations

import math

import torch

from sdbench.core.divergence.names import COMBINES, DIVERGENCES


def token_divergence(student_logp: torch.Tensor, teacher_logp: torch.Tensor, divergence: str,
                     beta: float = 0.5) -> torch.Tensor:
    """Per-position divergence [...] from log-probs [..., V] (teacher treated as a constant)."""
    teacher_logp = teacher_logp.detach()
    if divergence == "reverse_kl":
        return _kl(student_logp, teacher_logp)
    if divergence == "forward_kl":
        return _kl(teacher_logp, student_logp)
    if divergence == "jsd":
        if beta <= 0.0 or beta >= 1.0:
            return (student_logp * 0.0).sum(-1)   # exactly 0, still part of the graph
        log_m = torch.logsumexp(torch.stack([teacher_logp + math.log(beta),
                                             student_logp + math.log(1 - beta)]), dim=0)
        return beta * _kl(teacher_logp, log_m) + (1 - beta) * _kl(student_logp, log_m)
    raise ValueError(f"unknown divergence {divergence!r}; expected one of {DIVERGENCES}")


def _kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(p || q) over the last axis; 0·log 0 = 0, with NaN-free gradients where log p = -inf."""
    zero = torch.isneginf(logp)
    lp = torch.where(zero, torch.zeros_like(logp), logp)
    lq = torch.where(zero, torch.zeros_like(logq), logq)
    return torch.where(zero, torch.zeros_like(lp), lp.exp() * (lp - lq)).sum(-1)


def entropy(logp: torch.Tensor) -> torch.Tensor:
    """H(p) over the last axis, in nats."""
    p = logp.exp()
    return -torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(-1)


def combine_teachers(teacher_logp: torch.Tensor, weights: torch.Tensor, combine: str) -> torch.Tensor:
    """One teacher log-distribution from M contexts: logp [M, ..., V], weights [M, ...] -> [..., V].

    Weights are normalized to sum to 1 over M. Mixture weights must be >= 0; log-mean weights may
    be negative (subtracting a context) as long as their sum is positive. A zero weight removes that
    context (padding).
    """
    weights = weights / weights.sum(0, keepdim=True).clamp_min(1e-30)
    if combine == "mixture":
        log_w = torch.where(weights > 0, weights.log(), torch.full_like(weights, float("-inf")))
        return torch.logsumexp(teacher_logp + log_w.unsqueeze(-1), dim=0)
    if combine == "logmean":
        safe = torch.where(weights.unsqueeze(-1) != 0, teacher_logp, torch.zeros_like(teacher_logp))
        return torch.log_softmax((weights.unsqueeze(-1) * safe).sum(0), dim=-1)
    raise ValueError(f"unknown combine {combine!r}; expected one of {COMBINES}")
