"""The objective's per-token terms on the sampled tokens, shared by the materialized and fused routes.

    a_t  = token_advantages(items, lengths, advantage, teacher, scorer)      # RLCSD's hint contrast applied
    loss = loss - a_t * lp + sampled_token_terms(items, lengths, lp, logprob, reference, scorer)

`sdbench.core.objective` and `...objective_fused` compute the student's log p(y_t) their own way
(full logits, or the chunked output head) and call these for what `RolloutPlan` adds on top of the
divergence (the formulas are in `sdbench.strategy`):
  * `HintContrast` (RLCSD, arXiv 2606.11709): the advantage modulated per token by the teacher's
    log-probs of y_t under a correct and K wrong hints (teacher weights, no gradient);
  * `kl_coef`: β · k3 per token against the frozen base weights, k3 = exp(d) − d − 1 with
    d = log p_base(y_t) − log p_student(y_t) — the unbiased, always non-negative estimator of
    KL(p_student || p_base) that GRPO uses (arXiv 2402.03300, eq. 4; TRL's GRPOTrainer `beta`);
  * `sft_weight`: −w · log p_student(y_t) with the logits untempered (T = 1), plain cross-entropy on
    the model's own sample (SSD, arXiv 2604.01193).
`score_sampled` scores a batch of (prefix, completion) pairs at the completions' own tokens without
gradient; the trainer also uses it for `Rollout.logprob`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from sdbench.core._forward import score_hidden, score_logits
from sdbench.core.scoring import chunked_token_logprob, gather_at, hidden_fn, upcast

if TYPE_CHECKING:
    from sdbench.core.loss_items import LossItem


def score_sampled(model, prefixes: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_id: int,
                  temperature: float, impl: str = "fused") -> torch.Tensor:
    """log p(c_t | prefix, c_<t) [sum(len(c))] of each completion's own tokens, no gradient.

    impl="materialized" reads full logits (`score_logits`); the fused routes go through the final hidden
    states and the output head in chunks, never holding [tokens x vocab] logits."""
    device = next(model.parameters()).device
    targets = torch.tensor([t for c in completions for t in c], dtype=torch.long, device=device)
    with torch.no_grad():
        if impl == "materialized":
            logits = upcast(score_logits(model, prefixes, completions, pad_id, "padded")) / temperature
            return logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        head = model.get_output_embeddings().weight
        if impl == "fused":
            hidden = score_hidden(model, prefixes, completions, pad_id)
        else:
            hidden = gather_at(hidden_fn(model), [[*p, *c] for p, c in zip(prefixes, completions, strict=True)],
                               [len(p) for p in prefixes], [len(c) for c in completions], pad_id, device)
        return chunked_token_logprob(hidden.to(head.dtype), head, targets, temperature)


def entropy_weights(items: Sequence[LossItem], lengths: list[int], teacher_entropy: torch.Tensor,
                    ) -> torch.Tensor | None:
    """Per-token multipliers of the divergence for plans with `teacher_entropy_weight` β: exp(−β·H_t),
    normalized to mean 1 over all such tokens of the batch (SRPO's dynamic weighting, THU-BPM/RLCSD
    core_algos.py `compute_policy_loss_srpo`: max-shifted before exp, for stability); 1 elsewhere.
    None when no plan asks for it."""
    betas = [it.plan.teacher_entropy_weight for it in items]
    if all(b is None for b in betas):
        return None
    h = teacher_entropy.detach()
    beta = _per_token([0.0 if b is None else b for b in betas], lengths, h)
    routed = _per_token([0.0 if b is None else 1.0 for b in betas], lengths, h) > 0
    log_w = -beta * h
    w = torch.exp((log_w - log_w[routed].max()).clamp(max=50.0))
    w = w / w[routed].mean().clamp_min(1e-12)
    return torch.where(routed, w, torch.ones_like(w))


def _per_token(values: Sequence[float], lengths: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor([v for v, n in zip(values, lengths, strict=True) for _ in range(n)],
                        dtype=like.dtype, device=like.device)


def token_advantages(items: Sequence[LossItem], lengths: list[int], advantage: torch.Tensor, teacher, *,
                     pad_id: int, temperature: float, impl: str) -> torch.Tensor:
    """The per-token advantage a_t: `advantage` (the plans' A, per token) where no plan has a hint contrast,
    else A modulated by the contrast of its positive and negative teacher contexts (`HintContrast`)."""
    which = [i for i, it in enumerate(items) if it.plan.contrast is not None]
    if not which:
        return advantage
    offsets = [0]
    for n in lengths:
        offsets.append(offsets[-1] + n)
    prefixes, completions, spans = [], [], []
    for i in which:
        ids = items[i].contrast_prompt_ids
        if len(ids) != len(items[i].plan.contrast.contexts):
            raise ValueError("contrast_prompt_ids must hold one prompt per contrast context")
        for ctx in ids:
            prefixes.append(ctx)
            completions.append(items[i].completion_ids)
        spans.append(len(ids))
    scored = score_sampled(teacher, prefixes, completions, pad_id, temperature, impl).to(advantage.dtype)
    out = advantage.clone()
    pos = 0
    for i, k in zip(which, spans, strict=True):
        n, c = lengths[i], items[i].plan.contrast
        rows = scored[pos:pos + k * n].view(k, n).to(advantage.device)
        pos += k * n
        wrong = torch.logsumexp(rows[1:], dim=0) - math.log(k - 1)     # log of the mean wrong-hint probability
        residual = (c.scale * torch.tanh((rows[0] - wrong) / c.tau)).clamp(c.clip[0], c.clip[1])
        residual = torch.where(residual.abs() > c.threshold, residual, torch.zeros_like(residual))
        a = items[i].plan.advantage or 0.0
        moved = a + residual
        # The verifier keeps the sign: the hints can shrink or grow a token's update, never flip it.
        moved = moved.clamp(min=0.0) if a > 0 else moved.clamp(max=0.0) if a < 0 else torch.zeros_like(moved)
        out[offsets[i]:offsets[i] + n] = moved
    return out


def sampled_token_terms(items: Sequence[LossItem], lengths: list[int], lp: torch.Tensor | None,
                        logprob: Callable[[float], torch.Tensor], reference, *, pad_id: int, temperature: float,
                        impl: str) -> torch.Tensor | None:
    """Per-token β·k3 (KL to `reference`) + −w·log p^{T=1}(y_t) (cross-entropy), or None if no plan has either.

    `lp` is the student's log p(y_t) at `temperature` if the caller already has it; `logprob(T)` computes
    it at temperature T (with gradient)."""
    kl = [it.plan.kl_coef for it in items]
    sft = [it.plan.sft_weight for it in items]
    if not any(kl) and not any(sft):
        return None
    if lp is None:
        lp = logprob(temperature)
    total = torch.zeros_like(lp)
    if any(kl):
        if reference is None:
            raise ValueError("a plan sets kl_coef but the core has no reference model: the strategy must say "
                             "`needs_reference` (True) for the core to keep the base weights")
        which = [i for i, b in enumerate(kl) if b]
        ref = score_sampled(reference, [items[i].prompt_ids for i in which],
                            [items[i].completion_ids for i in which], pad_id, temperature, impl)
        mask = torch.zeros(len(items), dtype=torch.bool)
        mask[which] = True
        rows = _per_token([float(m) for m in mask.tolist()], lengths, lp) > 0
        d = torch.zeros_like(lp)
        d[rows] = ref.to(lp.dtype).to(lp.device) - lp[rows]
        k3 = torch.exp(d) - d - 1.0
        total = total + _per_token(kl, lengths, lp) * k3
    if any(sft):
        lp1 = lp if temperature == 1.0 else logprob(1.0)
        total = total - _per_token(sft, lengths, lp) * lp1
    return total
