"""Fused linear + divergence loss for on-policy self-distillation (chunked, never [N x V] logits).

    from sdbench.core.kernels import fused_linear_divergence, FusedLinearDivergence
    loss = fused_linear_divergence(h_student, lm_head.weight, h_teacher, divergence="reverse_kl")
    loss.backward()   # grads for h_student and lm_head.weight; the teacher is a constant

Tests: `pytest tests/test_fused_linear_divergence.py`; benchmarks: `pytest tests/perf --benchmark-only`.

Definitions (per token i; p_s / p_t student / teacher next-token distributions over the full
vocabulary, logits divided by the temperature tau; all math in fp32, fp64 for fp64 inputs):
  reverse_kl = KL(p_s || p_t);  forward_kl = KL(p_t || p_s);
  jsd(beta)  = beta * KL(p_t || m) + (1 - beta) * KL(p_s || m),  m = beta * p_t + (1 - beta) * p_s
               (TRL's generalized JSD; beta = 0.5 is the symmetric JSD). At beta = 0 or 1, m equals
               one side and the value is identically 0 (it scales like beta * (1 - beta)); unlike TRL
               we do not special-case the limits as forward / reverse KL: ask for those by name.
  Teacher contexts: teacher_hidden [M, N, H] with weights w, [M] or per token [M, N] (normalized
  over M for each token, uniform if None; weight 0 = context absent for that token, so rollouts
  with different numbers of demonstrations share one call): "mixture" p_t = sum_j w_j p_j
  (w >= 0); "logmean" p_t proportional to exp(sum_j w_j log p_j) (w may be negative, subtracting
  a context, if each token's sum is positive).
  Estimators: "full" sums over the whole vocabulary. "topk": S = the student's k most likely
  tokens; both distributions are coarsened onto k + 1 buckets (each token of S, plus one tail
  bucket holding 1 - the mass on S), which are already normalized, and the divergence is taken
  between the coarsened distributions; gradients flow to every logit, including through the tail
  mass; the choice of S is not differentiated. "sampled_token" (reverse_kl only): with y =
  target_ids[i] the token the student sampled, the value is r = log p_s(y) - log p_t(y), an
  unbiased single-sample estimate of KL(p_s || p_t), and the gradient is r * grad log p_s(y) with
  r detached (the score-function / REINFORCE form used by on-policy distillation and SDPO; no
  baseline; the E[grad log p_s] = 0 term is dropped).
  Teacher-entropy gate (lo, hi), floats or [N] tensors: token i's divergence counts only where
  lo_i <= H(p_t,i) <= hi_i (combined teacher, full vocabulary, after temperature); the entropy
  bonus is not gated. Gated calls use the eager torch body.
  Entropy bonus: loss_i -= lambda_i * H(p_s) with entropy_coef a float or a per-token [N] tensor
  (exact, full vocabulary, for every estimator).
  token_weights w_i (default 1) multiply loss_i: masks, gates, per-rollout signs or advantages.
  Reduction: "sum" = sum_i w_i loss_i; "mean" = that sum / max(1, #{i : w_i != 0}) (zero weight =
  padding; no token_weights: / N); "none" = the [N] vector w_i loss_i.
  Gradients are d loss / d logits (no tau**2 rescaling); the teacher gets none (stop-gradient).

Cost: for "mean"/"sum" the gradients are computed during forward (one pass over the chunks:
student logits, teacher logits, grad wrt hidden, grad wrt weight) and scaled in backward; for
"none" forward computes the loss only and backward recomputes the chunks. Rows with weight 0 are
skipped entirely. The element-wise part of the "full" estimator runs in `...triton_divergence` on
CUDA (Triton installed) and, on CPU (1 to 16 teacher contexts), in the C row kernel of
`...cpu_kernel` (built on first use; SDBENCH_CPU_KERNEL=0 disables it); everything else uses the
eager torch chunk body (`..._torch_chunk`). torch.compile of the chunk body was measured and not
used: 2-12 s compile per shape and no faster than the in-place eager body on this CPU.
Knobs (environment): SDBENCH_FLD_BUDGET_MB work-buffer budget for the automatic chunk size
(default 1024 MB: at H = 896, V = 152k, N = 2048 fp32 that is 3 chunks; one process, fp32 M = 4:
5 / 4 / 2 chunks took 22.8 / 21.7 / 20.6 s against a 19.5 s floor), SDBENCH_FLD_CACHE=0 no buffer reuse across calls,
SDBENCH_KERNEL_BACKEND=torch|triton force the element-wise backend (tests).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from sdbench.core.kernels._common import (
    DivergenceConfig,
    as_teacher_stack,
    context_weight_matrix,
    entropy_vector,
    gate_bounds,
    loss_from_options,
    make_config,
    token_scales,
)
from sdbench.core.kernels._torch_chunk import (
    Workspace,
    buffers_per_row,
    chunk_loss_and_grad,
    use_cpu_kernel,
    workspace_for,
)
from sdbench.core.settings import LossSpec

# Workspace budget for the automatic chunk size; 1024 MiB keeps the extra memory well under 1/8
# of the naive path at N=2048, V=151936, while chunks stay large enough for efficient matmuls.
_DEFAULT_BUDGET_MB = {"cpu": 1024, "cuda": 1024}
# Reuse work buffers across calls (SDBENCH_FLD_CACHE=0 allocates per call instead).
_CACHE_WS = os.environ.get("SDBENCH_FLD_CACHE", "1") != "0"


def auto_chunk_size(n: int, vocab: int, cfg: DivergenceConfig, m: int, w_dtype: torch.dtype, device: torch.device,
                    triton: bool = False, teacher_dtype: torch.dtype | None = None) -> int:
    """Chunk size: the fewest chunks whose [C, V] work buffers fit the budget, then equal chunks.

    Fewer chunks is what matters on CPU: every chunk streams the whole [V, H] head through the
    caches once per matmul (M + 1 logits, grad wrt hidden, grad wrt weight), and splitting N into
    equal chunks (a multiple of 16 where that still fits) makes the last one no smaller than the
    rest. With M > 1 teacher contexts the buffers are also capped at what M = 1 uses for the same
    N, so extra contexts never cost work-buffer memory."""
    md_size = 8 if w_dtype == torch.float64 else 4
    esize = torch.finfo(w_dtype).bits // 8
    low = 0 if w_dtype in (torch.float32, torch.float64) else esize

    def per_row(contexts: int) -> int:
        if triton:  # student logits + M teacher logits in the weight dtype, no fp32 buffers
            return vocab * esize * (contexts + 1)
        kernel = use_cpu_kernel(cfg, contexts, device, w_dtype, teacher_dtype or w_dtype)
        return vocab * buffers_per_row(cfg, contexts, md_size, low, kernel)

    def equal_chunks(budget: int, row: int) -> int:
        if n <= 1:
            return 1
        c_max = max(1, min(n, budget // max(row, 1)))
        count = -(-n // c_max)
        c = -(-n // count)
        return min(c_max, -(-c // 16) * 16) if c >= 16 else c

    budget = int(os.environ.get("SDBENCH_FLD_BUDGET_MB", _DEFAULT_BUDGET_MB.get(device.type, 512))) << 20
    if m > 1:
        budget = min(budget, equal_chunks(budget, per_row(1)) * per_row(1))
    return equal_chunks(budget, per_row(m))


def _use_triton(device: torch.device, cfg: DivergenceConfig) -> bool:
    forced = os.environ.get("SDBENCH_KERNEL_BACKEND", "")
    if forced == "torch" or cfg.loss.estimator != "full" or cfg.gated:
        return False
    if forced == "triton":
        return True
    if device.type != "cuda":
        return False
    from sdbench.core.kernels.triton_divergence import triton_available

    return triton_available()


def _run_chunks(
    sh: torch.Tensor,
    w: torch.Tensor,
    th: torch.Tensor,
    wt: torch.Tensor,
    cfg: DivergenceConfig,
    wj: torch.Tensor,
    coef: torch.Tensor | None,
    gate: torch.Tensor | None,
    y: torch.Tensor | None,
    scale: torch.Tensor | None,
    need_gh: bool,
    need_gw: bool,
    chunk_size: int | None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Loss per row [n] (fp32/fp64) and, when scale [n] is given, grad_hidden and grad_weight of
    sum_i scale_i * loss_i (scale already holds token weight / denominator / tau / grad_output)."""
    n, _ = sh.shape
    vocab = w.shape[0]
    use_triton = _use_triton(sh.device, cfg)
    c_max = chunk_size or auto_chunk_size(n, vocab, cfg, th.shape[0], w.dtype, sh.device, use_triton, wt.dtype)
    c_max = max(1, min(c_max, n))
    md = torch.float64 if w.dtype == torch.float64 else torch.float32
    loss = torch.empty(n, dtype=md, device=sh.device)
    want_grad = scale is not None and (need_gh or need_gw)
    gh = torch.empty_like(sh) if want_grad and need_gh else None
    gw = torch.empty_like(w) if want_grad and need_gw else None
    ws = workspace_for(c_max, vocab, sh.device) if _CACHE_WS else Workspace(c_max, vocab, sh.device)
    triton_fn = None
    if use_triton:
        from sdbench.core.kernels.triton_divergence import triton_chunk_loss_and_grad as triton_fn
    for s in range(0, n, c_max):
        e = min(n, s + c_max)
        x, xt = sh[s:e], th[:, s:e]
        yc = y[s:e] if y is not None else None
        lc_ = coef[s:e] if coef is not None else None
        if triton_fn is not None:
            lc, g = triton_fn(ws, x, xt, w, wt, cfg, wj[:, s:e], lc_, yc, want_grad)
        else:
            gc = gate[:, s:e] if gate is not None else None
            lc, g = chunk_loss_and_grad(ws, x, xt, w, wt, cfg, wj[:, s:e], lc_, yc, want_grad, gc)
        loss[s:e] = lc
        if not want_grad:
            continue
        assert g is not None and scale is not None
        sc = scale[s:e].unsqueeze(1)
        if gh is not None:
            torch.mm(g, w, out=gh[s:e])
            gh[s:e].mul_(sc.to(gh.dtype))
        if gw is not None:
            # Low-precision weights accumulate in their own dtype (one rounding per chunk) so the
            # accumulator costs no more memory than the gradient the caller receives anyway.
            xs = x * sc.to(x.dtype)
            if s == 0:  # the first chunk writes instead of accumulating: no zero-fill pass over [V, H]
                torch.mm(g.T, xs, out=gw)
            else:
                gw.addmm_(g.T, xs)
    return loss, gh, gw


class _FusedLinearDivergenceFn(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        student_hidden: torch.Tensor,
        weight: torch.Tensor,
        teacher_hidden: torch.Tensor,
        teacher_head: torch.Tensor | None,
        target_ids: torch.Tensor | None,
        token_w: torch.Tensor,
        denom: float,
        wj: torch.Tensor,
        coef: torch.Tensor | None,
        gate: torch.Tensor | None,
        cfg: DivergenceConfig,
        chunk_size: int | None,
    ) -> torch.Tensor:
        n, h = student_hidden.shape
        wt = (weight if teacher_head is None else teacher_head).detach()
        th = as_teacher_stack(teacher_hidden, n, h).detach().to(wt.dtype)
        sh, w = student_hidden.detach(), weight.detach()
        need_gh, need_gw = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        # Skip padding: rows with weight 0 contribute nothing to the value or the gradients.
        keep = torch.nonzero(token_w).view(-1)
        compact = keep.numel() < n
        if compact:
            sh, th = sh.index_select(0, keep), th.index_select(1, keep)
            target_ids = target_ids.index_select(0, keep) if target_ids is not None else None
            wj = wj.index_select(1, keep)
            coef = coef.index_select(0, keep) if coef is not None else None
            gate = gate.index_select(1, keep) if gate is not None else None
        tw = token_w[keep] if compact else token_w
        if target_ids is not None:
            target_ids = target_ids.to(device=sh.device, dtype=torch.long)
        ctx.cfg, ctx.chunk_size, ctx.n, ctx.compact = cfg, chunk_size, n, compact
        eager_grad = cfg.reduction != "none" and (need_gh or need_gw)
        scale = tw / (denom * cfg.loss.temperature) if eager_grad else None
        with torch.autocast(sh.device.type, enabled=False):  # the chunk matmuls write into typed buffers
            loss_k, gh, gw = _run_chunks(
                sh, w, th, wt, cfg, wj, coef, gate, target_ids, scale, need_gh, need_gw, chunk_size
            )
        weighted = loss_k * tw.to(loss_k.dtype)
        if cfg.reduction == "none":
            ctx.save_for_backward(sh, w, th, wt, target_ids, tw, keep, wj, coef, gate)
            out = torch.zeros(n, dtype=loss_k.dtype, device=sh.device)
            out[keep] = weighted
            return out.to(torch.float64 if loss_k.dtype == torch.float64 else torch.float32)
        if gh is not None and compact:
            full = torch.zeros_like(student_hidden)
            full.index_copy_(0, keep, gh)
            gh = full
        ctx.save_for_backward(gh, gw)
        total = weighted.sum()
        return total / denom if cfg.reduction == "mean" else total

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        cfg: DivergenceConfig = ctx.cfg
        if cfg.reduction != "none":
            gh, gw = ctx.saved_tensors
            if not bool(torch.all(grad_out == 1.0)):  # skip a [V, H] pass in the common case
                gh = gh * grad_out.to(gh.dtype) if gh is not None else None
                gw = gw * grad_out.to(gw.dtype) if gw is not None else None
            return gh, gw, None, None, None, None, None, None, None, None, None, None
        sh, w, th, wt, y, tw, keep, wj, coef, gate = ctx.saved_tensors
        need_gh, need_gw = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        go = grad_out.index_select(0, keep) if ctx.compact else grad_out
        scale = tw * go.to(tw.dtype) / cfg.loss.temperature
        with torch.autocast(sh.device.type, enabled=False):
            _, gh, gw = _run_chunks(sh, w, th, wt, cfg, wj, coef, gate, y, scale, need_gh, need_gw, ctx.chunk_size)
        if gh is not None and ctx.compact:
            full = torch.zeros(ctx.n, gh.shape[1], dtype=gh.dtype, device=gh.device)
            full.index_copy_(0, keep, gh)
            gh = full
        return gh, gw, None, None, None, None, None, None, None, None, None, None


def fused_linear_divergence(
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
    """Self-distillation loss from hidden states and the output head (definitions: module docstring).

    student_hidden [N, H] and weight [V, H] (same dtype: fp32, bf16 or fp64); teacher_hidden [N, H]
    or [M, N, H]; teacher_head [V, H] optionally gives the teacher its own head (frozen base,
    EMA), default: weight. Returns a 0-dim tensor ("mean"/"sum", fp32) or [N] ("none").
    `loss`: a run's `LossSpec` (sdbench.core.settings), passed as it is by the objective; when given it
    replaces divergence, beta (its jsd_beta), temperature, estimator and topk.
    """
    if student_hidden.dim() != 2 or weight.dim() != 2 or student_hidden.shape[1] != weight.shape[1]:
        raise ValueError(
            f"need student_hidden [N, H] and weight [V, H]; got {tuple(student_hidden.shape)}, {tuple(weight.shape)}"
        )
    if student_hidden.dtype != weight.dtype:
        raise ValueError(f"student_hidden ({student_hidden.dtype}) and weight ({weight.dtype}) must share a dtype")
    n, h = student_hidden.shape
    if loss is None:
        loss = loss_from_options(divergence, beta, temperature, estimator, topk)
    cfg = make_config(
        loss,
        combine=combine,
        reduction=reduction,
        vocab_size=weight.shape[0],
        has_targets=target_ids is not None,
        gated=teacher_entropy_gate is not None,
    )
    m = as_teacher_stack(teacher_hidden, n, h).shape[0]
    md = torch.float64 if weight.dtype == torch.float64 else torch.float32
    wj = context_weight_matrix(context_weights, m, n, student_hidden.device, md, cfg.combine)
    coef = entropy_vector(entropy_coef, n, student_hidden.device, md)
    gate = gate_bounds(teacher_entropy_gate, n, student_hidden.device, md)
    token_w, denom = token_scales(token_weights, n, cfg.reduction, student_hidden.device, md)
    if target_ids is not None and target_ids.numel() != n:
        raise ValueError(f"target_ids has {target_ids.numel()} entries for {n} tokens")
    return _FusedLinearDivergenceFn.apply(
        student_hidden,
        weight,
        teacher_hidden,
        teacher_head,
        target_ids,
        token_w,
        denom,
        wj,
        coef,
        gate,
        cfg,
        chunk_size,
    )


class FusedLinearDivergence(nn.Module):
    """nn.Module wrapper: fixes the options, takes (student_hidden, weight, teacher_hidden, ...)."""

    def __init__(
        self,
        divergence: str = "reverse_kl",
        *,
        beta: float = 0.5,
        temperature: float = 1.0,
        combine: str = "mixture",
        estimator: str = "full",
        topk: int | None = None,
        entropy_coef: float = 0.0,
        chunk_size: int | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.options = dict(
            divergence=divergence,
            beta=beta,
            temperature=temperature,
            combine=combine,
            estimator=estimator,
            topk=topk,
            entropy_coef=entropy_coef,
            chunk_size=chunk_size,
            reduction=reduction,
        )

    def forward(
        self,
        student_hidden: torch.Tensor,
        weight: torch.Tensor,
        teacher_hidden: torch.Tensor,
        *,
        context_weights: torch.Tensor | None = None,
        target_ids: torch.Tensor | None = None,
        token_weights: torch.Tensor | None = None,
        teacher_head: torch.Tensor | None = None,
        entropy_coef: float | torch.Tensor | None = None,
        teacher_entropy_gate: tuple[float | torch.Tensor, float | torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """entropy_coef, when given, overrides the constructor's (e.g. a per-token [N] tensor)."""
        options = dict(self.options)
        if entropy_coef is not None:
            options["entropy_coef"] = entropy_coef
        return fused_linear_divergence(
            student_hidden,
            weight,
            teacher_hidden,
            context_weights=context_weights,
            target_ids=target_ids,
            token_weights=token_weights,
            teacher_head=teacher_head,
            teacher_entropy_gate=teacher_entropy_gate,
            **options,
        )

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items() if v is not None)
