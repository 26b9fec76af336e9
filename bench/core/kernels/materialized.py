"""The materialized-logits oracle of the self-distillation loss: full logits, textbook formulas, autograd.

Same signature and semantics as `sdbench.core.kernels.fused_linear_divergence` (see its docstring
for the definitions); used as the ground truth by tests/test_fused_linear_divergence.py and
tests/test_triton_divergence.py and as the "naive" side of the benchmarks. Memory is O(M * N * V):
use it only at test shapes. Math runs in float64 when the inputs are float64, else float32.

    from sdbench.core.kernels.materialized import materialized_linear_divergence
    loss = materialized_linear_divergence(h_s, W, h_t, divergence="jsd"); loss.backward()
"""

from __future__ import annotations

import math

import torch

from sdbench.core.divergence.formulas import combine_teachers, entropy
from sdbench.core.kernels._common import (
    as_teacher_stack,
    context_weight_matrix,
    divergence_from_logprobs,
    entropy_vector,
    gate_bounds,
    gate_open,
    loss_from_options,
    make_config,
    token_scales,
    topk_buckets,
)
from sdbench.core.settings import LossSpec


def materialized_linear_divergence(
    student_hidden: torch.Tensor,
    weight: torch.Tensor,
    teacher_hidden: torch.Tensor,
    *,
    divergence: str = "reverse_kl",
    beta: float = 0.5,
    temperature: float = 1.0,
    context_weights: torch.Tensor | None = None,
    combine: str = "mixture",
    estimator: str = "full",
    topk: int | None = None,
    target_ids: torch.Tensor | None = None,
    token_weights: torch.Tensor | None = None,
    entropy_coef: float | torch.Tensor = 0.0,
    chunk_size: int | None = None,
    reduction: str = "mean",
    teacher_head: torch.Tensor | None = None,
    teacher_entropy_gate: tuple[float | torch.Tensor, float | torch.Tensor] | None = None,
    loss: LossSpec | None = None,
) -> torch.Tensor:
    """Materialized-logits version of `fused_linear_divergence` (chunk_size is accepted and ignored)."""
    del chunk_size
    n, h = student_hidden.shape
    if loss is None:
        loss = loss_from_options(divergence, beta, temperature, estimator, topk)
    cfg = make_config(
        loss,
        combine=combine,
        reduction=reduction,
        vocab_size=weight.shape[0],
        has_targets=target_ids is not None,
    )
    md = torch.float64 if student_hidden.dtype == torch.float64 else torch.float32
    t_stack = as_teacher_stack(teacher_hidden, n, h)
    w_t = weight if teacher_head is None else teacher_head

    zs = (student_hidden @ weight.T).to(md) / cfg.loss.temperature
    with torch.no_grad():  # the teacher is a constant target (stop-gradient)
        zt = (t_stack.detach() @ w_t.detach().T).to(md) / cfg.loss.temperature
    ls = torch.log_softmax(zs, dim=-1)
    lt = combine_teachers(
        torch.log_softmax(zt, dim=-1),
        context_weight_matrix(context_weights, zt.shape[0], n, zt.device, md, cfg.combine),
        cfg.combine,
    )

    if cfg.loss.estimator == "full":
        per_tok = divergence_from_logprobs(ls, lt, cfg.loss.divergence, cfg.loss.jsd_beta)
    elif cfg.loss.estimator == "topk":
        assert cfg.loss.topk is not None
        _, qs, qt = topk_buckets(ls, lt, cfg.loss.topk)
        per_tok = divergence_from_logprobs(qs, qt, cfg.loss.divergence, cfg.loss.jsd_beta)
    else:
        assert target_ids is not None
        y = target_ids.to(device=ls.device, dtype=torch.long).view(-1, 1)
        lsy = ls.gather(-1, y).squeeze(-1)
        r = (lsy - lt.gather(-1, y).squeeze(-1)).detach()
        # Value: the per-token reverse-KL estimate r; gradient: r * grad log p_s(y) (REINFORCE).
        per_tok = r + r * (lsy - lsy.detach())

    bounds = gate_bounds(teacher_entropy_gate, n, ls.device, md)
    if bounds is not None:  # the divergence counts only where the teacher's entropy is in [lo, hi]
        per_tok = torch.where(gate_open(lt, bounds), per_tok, torch.zeros_like(per_tok))
    coef = entropy_vector(entropy_coef, n, ls.device, md)
    if coef is not None:
        per_tok = per_tok - coef * entropy(ls)

    w, denom = token_scales(token_weights, n, cfg.reduction, per_tok.device)
    weighted = per_tok * w.to(md)
    if cfg.reduction == "none":
        return weighted
    total = weighted.sum()
    return total / denom if cfg.reduction == "mean" else total


def closed_form_logit_grad(ls: torch.Tensor, lt: torch.Tensor, divergence: str, beta: float = 0.5) -> torch.Tensor:
    """d divergence / d student logits (temperature 1), closed form, for the textbook tests.

    reverse KL: p_s * (log p_s - log p_t - KL); forward KL: p_s - p_t;
    JSD(beta): (1 - beta) * p_s * (log p_s - log m - KL(p_s || m)).
    """
    ps = ls.exp()
    if divergence == "reverse_kl":
        d = ls - lt
        return ps * (d - (ps * d).sum(-1, keepdim=True))
    if divergence == "forward_kl":
        return ps - lt.exp()
    lm = torch.logaddexp(lt + math.log(beta), ls + math.log1p(-beta))
    d = ls - lm
    return (1.0 - beta) * ps * (d - (ps * d).sum(-1, keepdim=True))
