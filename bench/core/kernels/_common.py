"""Shared definitions for the self-distillation divergence kernels (materialized oracle, fused torch, Triton).

Not run directly; imported by `sdbench.core.kernels.materialized` and `...fused_linear_divergence`.
Holds the argument validation, the teacher-combination weights, the token reduction and the
small "bucket-level" divergence formulas that the materialized oracle and the top-k path both use, so that
every backend agrees on one set of definitions (documented in `fused_linear_divergence`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sdbench.core.divergence import COMBINES
from sdbench.core.divergence.formulas import entropy, token_divergence
from sdbench.core.settings import LossSpec

REDUCTIONS = ("mean", "sum", "none")


@dataclass(frozen=True)
class DivergenceConfig:
    """The non-tensor options of one call, validated once (hashable: usable as a cache key): the run's
    `LossSpec` as it came (divergence, jsd_beta, temperature, estimator, topk) and this call's own options."""

    loss: LossSpec = LossSpec()
    combine: str = "mixture"
    reduction: str = "mean"
    gated: bool = False  # a teacher-entropy gate is given (eager torch body only)


def make_config(
    loss: LossSpec,
    *,
    combine: str,
    reduction: str,
    vocab_size: int,
    has_targets: bool,
    gated: bool = False,
) -> DivergenceConfig:
    """Check this call's options against `loss` (itself validated when it was built); raise ValueError with
    the reason for any unsupported combination."""
    if combine not in COMBINES:
        raise ValueError(f"combine must be one of {COMBINES}, got {combine!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if loss.estimator == "topk" and loss.topk is not None and loss.topk >= vocab_size:
        # The tail bucket would be empty: that is exactly the full estimator.
        loss = LossSpec(**{**loss.model_dump(), "estimator": "full", "topk": None})
    if loss.estimator == "sampled_token" and not has_targets:
        raise ValueError("estimator='sampled_token' needs target_ids (the sampled tokens)")
    return DivergenceConfig(loss=loss, combine=combine, reduction=reduction, gated=gated)


def loss_from_options(divergence: str, beta: float, temperature: float, estimator: str, topk: int | None,
                      ) -> LossSpec:
    """The `LossSpec` of a standalone kernel call's keyword options (`beta`: the JSD's, TRL's name for it);
    invalid ones raise ValueError (pydantic's ValidationError is one) naming the option. `topk` is read by the
    topk estimator only (the kernels have always ignored it otherwise)."""
    return LossSpec(divergence=divergence, jsd_beta=beta, temperature=temperature, estimator=estimator,
                    topk=topk if estimator == "topk" else None)


def as_teacher_stack(teacher_hidden: torch.Tensor, n_tokens: int, hidden: int) -> torch.Tensor:
    """Return teacher hidden states as [M, N, H] (a view; [N, H] means M = 1)."""
    t = teacher_hidden.unsqueeze(0) if teacher_hidden.dim() == 2 else teacher_hidden
    if t.dim() != 3 or t.shape[1] != n_tokens or t.shape[2] != hidden:
        raise ValueError(
            f"teacher_hidden must be [N, H] or [M, N, H] with N={n_tokens}, H={hidden};"
            f" got {tuple(teacher_hidden.shape)}"
        )
    return t


def context_weight_matrix(
    context_weights: torch.Tensor | None,
    m: int,
    n: int,
    device: torch.device,
    dtype: torch.dtype,
    combine: str = "mixture",
) -> torch.Tensor:
    """Per-token context weights [M, N], each column normalized to sum 1 (uniform when None).

    context_weights may be [M] (shared by all tokens) or [M, N] (per token: rollouts with fewer
    demonstrations give their missing contexts weight 0). Mixture weights must be >= 0; log-mean
    weights may be negative (subtracting a context) as long as each token's sum is positive."""
    if context_weights is None:
        return torch.full((m, n), 1.0 / m, dtype=dtype, device=device)
    w = torch.as_tensor(context_weights).detach().to(device=device, dtype=torch.float64)
    if w.dim() == 1:
        if w.numel() != m:
            raise ValueError(f"context_weights has {w.numel()} entries for {m} teacher contexts")
        w = w.view(m, 1).expand(m, n)
    elif tuple(w.shape) != (m, n):
        raise ValueError(f"context_weights must be [M] or [M, N] = [{m}, {n}]; got {tuple(w.shape)}")
    total = w.sum(0)
    if (combine == "mixture" and bool((w < 0).any())) or not bool((total > 0).all()):
        raise ValueError("context_weights need a positive sum for every token (and no negatives for 'mixture')")
    return (w / total).to(dtype).contiguous()


def entropy_vector(
    entropy_coef: float | torch.Tensor, n: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor | None:
    """Per-token entropy coefficients [N], or None when the bonus is off everywhere."""
    if isinstance(entropy_coef, torch.Tensor):
        coef = entropy_coef.detach().to(device=device, dtype=dtype).flatten()
        if coef.numel() == 1:
            coef = coef.expand(n)
        if coef.numel() != n:
            raise ValueError(f"entropy_coef has {coef.numel()} entries for {n} tokens")
        return coef.contiguous() if bool((coef != 0).any()) else None
    return None if entropy_coef == 0.0 else torch.full((n,), float(entropy_coef), dtype=dtype, device=device)


def token_scales(
    token_weights: torch.Tensor | None,
    n_tokens: int,
    reduction: str,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, float]:
    """Per-token weights w_i ([N], dtype) and the mean denominator.

    mean = sum_i w_i * loss_i / max(1, #{i : w_i != 0}): zero-weight tokens are padding and do not
    count; signed or fractional weights count as one token each. Without token_weights the
    denominator is N.
    """
    if token_weights is None:
        w = torch.ones(n_tokens, dtype=dtype, device=device)
        denom = float(n_tokens)
    else:
        w = token_weights.detach().to(device=device, dtype=dtype).flatten()
        if w.numel() != n_tokens:
            raise ValueError(f"token_weights has {w.numel()} entries for {n_tokens} tokens")
        denom = float((w != 0).sum().item())
    if reduction != "mean":
        denom = 1.0
    return w, max(denom, 1.0)


def gate_bounds(
    gate: tuple[float | torch.Tensor, float | torch.Tensor] | None, n: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor | None:
    """Teacher-entropy gate as a [2, N] tensor of per-token (lo, hi) bounds, or None."""
    if gate is None:
        return None
    rows = [torch.as_tensor(b).detach().to(device=device, dtype=dtype).flatten() for b in gate]
    rows = [r.expand(n) if r.numel() == 1 else r for r in rows]
    if len(rows) != 2 or any(r.numel() != n for r in rows):
        raise ValueError(f"teacher_entropy_gate must be (lo, hi), each a float or an [N={n}] tensor")
    return torch.stack(rows)


def gate_open(teacher_logp: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """[N] bool: the teacher's entropy (full vocabulary, nats) lies in [lo, hi]."""
    h = entropy(teacher_logp)
    return (h >= bounds[0].to(h.dtype)) & (h <= bounds[1].to(h.dtype))


def divergence_from_logprobs(ls: torch.Tensor, lt: torch.Tensor, divergence: str, beta: float) -> torch.Tensor:
    """Per-row divergence between two normalized log-distributions on the last dim: the textbook
    definition in `sdbench.core.divergence.token_divergence` (the teacher is a constant)."""
    return token_divergence(ls, lt, divergence, beta)


def topk_buckets(ls: torch.Tensor, lt: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Log-probs of the student's top-k tokens plus one tail bucket, for student and teacher.

    Returns (idx [.., k], student buckets [.., k+1], teacher buckets [.., k+1]); the tail holds
    log(1 - sum of the top-k mass), computed as a masked logsumexp (no cancellation).
    """
    idx = ls.detach().topk(k, dim=-1).indices
    mask = torch.zeros_like(ls, dtype=torch.bool).scatter_(-1, idx, True)
    neg_inf = torch.tensor(float("-inf"), dtype=ls.dtype, device=ls.device)
    s_tail = torch.where(mask, neg_inf, ls).logsumexp(-1, keepdim=True)
    t_tail = torch.where(mask, neg_inf, lt).logsumexp(-1, keepdim=True)
    qs = torch.cat([ls.gather(-1, idx), s_tail], -1)
    qt = torch.cat([lt.gather(-1, idx), t_tail], -1)
    return idx, qs, qt
