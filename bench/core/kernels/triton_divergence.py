"""Triton kernel for the element-wise part of the fused self-distillation loss ("full" estimator).

Selected automatically by `sdbench.core.kernels.fused_linear_divergence` for CUDA tensors when
triton is installed (`pip install sdbench[gpu]`); the matmuls stay in torch (cuBLAS). One program
per token row loops over vocabulary blocks with an online softmax: pass 1 gets the student and each
teacher context's logsumexp, pass 2 (logmean only) the combined teacher's normalizer, pass 3 the
divergence / entropy sums, pass 4 writes d loss / d student-logit over the logits buffer, in the
logits' dtype. Math is fp32 whatever the input dtype. Definitions: see fused_linear_divergence.

CPU check: `pytest tests/test_triton_divergence.py` runs it under TRITON_INTERPRET=1 against the
materialized oracle (the variable must be set before triton is imported; the test does it in a
subprocess). CPU installs never import this module unless asked to.
"""

from __future__ import annotations

import math
import os

import torch

from sdbench.core.divergence import DIVERGENCE_CODES
from sdbench.core.kernels._common import DivergenceConfig

try:  # import-guarded: CPU installs need no triton
    import triton
    import triton.language as tl

    _HAVE_TRITON = True
except ImportError:  # pragma: no cover - exercised only where triton is absent
    _HAVE_TRITON = False

_NEG = -1.0e30  # finite "minus infinity": keeps (-inf) - (-inf) = NaN out of the online softmax


def triton_available() -> bool:
    """True when triton imports and can run here (a CUDA device, or the CPU interpreter)."""
    return _HAVE_TRITON and (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1")


if _HAVE_TRITON:
    NEG: tl.constexpr = tl.constexpr(_NEG)  # jit code may only read constexpr globals

    @triton.jit
    def _lse_row(ptr, V, scale, BLOCK: tl.constexpr):
        offs = tl.arange(0, BLOCK)
        m = tl.full([BLOCK], NEG, tl.float32)
        s = tl.zeros([BLOCK], tl.float32)
        for start in range(0, V, BLOCK):
            z = tl.load(ptr + start + offs, mask=start + offs < V, other=float("-inf")).to(tl.float32) * scale
            m_new = tl.maximum(m, z)
            s = s * tl.exp(m - m_new) + tl.exp(z - m_new)
            m = m_new
        mx = tl.max(m, 0)
        return mx + tl.log(tl.sum(s * tl.exp(m - mx), 0))

    @triton.jit
    def _pick(vec, midx, j):
        # Per-context scalars live in a small register vector (no store/load round trip, which
        # would need a barrier between the threads of a program on a GPU).
        return tl.sum(tl.where(midx == j, vec, 0.0), 0)

    @triton.jit
    def _teacher_block(
        zt_row, lse_vec, midx, w_ptr, logw_ptr, M, stride_tm, stride_w, cols, mask, scale, lse_a, COMBINE: tl.constexpr
    ):
        """Combined teacher log-probs on one block (before logmean's renormalization if lse_a=0)."""
        z0 = tl.load(zt_row + cols, mask=mask, other=0.0).to(tl.float32) * scale - _pick(lse_vec, midx, 0)
        if COMBINE == 0:  # mixture: logsumexp_j(log w_j + log p_j), online over j
            mx = z0 + tl.load(logw_ptr)
            acc = tl.full(mx.shape, 1.0, tl.float32)
            for j in range(1, M):
                lz = tl.load(zt_row + j * stride_tm + cols, mask=mask, other=0.0).to(tl.float32) * scale
                lz = lz - _pick(lse_vec, midx, j) + tl.load(logw_ptr + j * stride_w)
                m_new = tl.maximum(mx, lz)
                acc = acc * tl.exp(mx - m_new) + tl.exp(lz - m_new)
                mx = m_new
            return mx + tl.log(acc)
        a = z0 * tl.load(w_ptr)  # logmean: sum_j w_j log p_j - lse
        for j in range(1, M):
            lz = tl.load(zt_row + j * stride_tm + cols, mask=mask, other=0.0).to(tl.float32) * scale
            a += (lz - _pick(lse_vec, midx, j)) * tl.load(w_ptr + j * stride_w)
        return a - lse_a

    @triton.jit
    def _sd_rows_kernel(
        zs_ptr,
        zt_ptr,
        loss_ptr,
        w_ptr,
        logw_ptr,
        coef_ptr,
        V,
        M,
        stride_s,
        stride_tm,
        stride_tr,
        stride_w,
        scale,
        beta,
        log_beta,
        log_1mbeta,
        DIV: tl.constexpr,
        COMBINE: tl.constexpr,
        WANT_GRAD: tl.constexpr,
        BLOCK: tl.constexpr,
        MAXM: tl.constexpr,
    ):
        row = tl.program_id(0).to(tl.int64)
        zs_row = zs_ptr + row * stride_s
        zt_row = zt_ptr + row * stride_tr
        w_ptr += row  # per-token context weights [M, c]: column `row`
        logw_ptr += row
        coef = tl.load(coef_ptr + row)
        offs = tl.arange(0, BLOCK)
        midx = tl.arange(0, MAXM)
        lse_s = _lse_row(zs_row, V, scale, BLOCK)
        lse_vec = tl.zeros([MAXM], tl.float32)
        for j in range(0, M):
            lse_vec = tl.where(midx == j, _lse_row(zt_row + j * stride_tm, V, scale, BLOCK), lse_vec)
        lse_a = 0.0
        if COMBINE == 1:  # normalizer of the log-mean teacher: one more online pass
            m = tl.full([BLOCK], NEG, tl.float32)
            s = tl.zeros([BLOCK], tl.float32)
            for start in range(0, V, BLOCK):
                cols = start + offs
                mask = cols < V
                a = _teacher_block(
                    zt_row, lse_vec, midx, w_ptr, logw_ptr, M, stride_tm, stride_w, cols, mask, scale, 0.0, COMBINE
                )
                a = tl.where(mask, a, float("-inf"))
                m_new = tl.maximum(m, a)
                s = s * tl.exp(m - m_new) + tl.exp(a - m_new)
                m = m_new
            mx = tl.max(m, 0)
            lse_a = mx + tl.log(tl.sum(s * tl.exp(m - mx), 0))
        acc1 = tl.zeros([BLOCK], tl.float32)
        acc2 = tl.zeros([BLOCK], tl.float32)
        acc_h = tl.zeros([BLOCK], tl.float32)
        for start in range(0, V, BLOCK):
            cols = start + offs
            mask = cols < V
            ls = tl.load(zs_row + cols, mask=mask, other=0.0).to(tl.float32) * scale - lse_s
            lt = _teacher_block(
                zt_row, lse_vec, midx, w_ptr, logw_ptr, M, stride_tm, stride_w, cols, mask, scale, lse_a, COMBINE
            )
            p = tl.where(mask, tl.exp(ls), 0.0)
            acc_h += p * ls
            if DIV == 0:
                acc1 += p * (ls - lt)
            elif DIV == 1:
                acc1 += tl.where(mask, tl.exp(lt), 0.0) * (lt - ls)
            else:
                x1 = log_beta + lt
                x2 = log_1mbeta + ls
                lm = tl.maximum(x1, x2) + tl.log(1.0 + tl.exp(-tl.abs(x1 - x2)))
                acc1 += tl.where(mask, tl.exp(lt), 0.0) * (lt - lm)
                acc2 += p * (ls - lm)
        ent = -tl.sum(acc_h, 0)
        kl1 = tl.sum(acc1, 0)
        kl2 = tl.sum(acc2, 0)
        if DIV == 2:
            loss = beta * kl1 + (1.0 - beta) * kl2
        else:
            loss = kl1
        tl.store(loss_ptr + row, loss - coef * ent)
        if WANT_GRAD:
            for start in range(0, V, BLOCK):
                cols = start + offs
                mask = cols < V
                ls = tl.load(zs_row + cols, mask=mask, other=0.0).to(tl.float32) * scale - lse_s
                lt = _teacher_block(
                    zt_row, lse_vec, midx, w_ptr, logw_ptr, M, stride_tm, stride_w, cols, mask, scale, lse_a, COMBINE
                )
                p = tl.exp(ls)
                g = coef * p * (ls + ent)
                if DIV == 0:
                    g += p * (ls - lt - kl1)
                elif DIV == 1:
                    g += p - tl.exp(lt)
                else:
                    x1 = log_beta + lt
                    x2 = log_1mbeta + ls
                    lm = tl.maximum(x1, x2) + tl.log(1.0 + tl.exp(-tl.abs(x1 - x2)))
                    g += (1.0 - beta) * p * (ls - lm - kl2)
                tl.store(zs_row + cols, g.to(zs_ptr.dtype.element_ty), mask=mask)


def triton_chunk_loss_and_grad(
    ws,
    x: torch.Tensor,
    xt: torch.Tensor,
    w: torch.Tensor,
    wt: torch.Tensor,
    cfg: DivergenceConfig,
    wj: torch.Tensor,
    coef_vec: torch.Tensor | None,
    y: torch.Tensor | None,
    want_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Same contract as `_torch_chunk.chunk_loss_and_grad` (estimator "full" only).

    Logits stay in the weight dtype (no fp32 [C, V] buffers); the gradient overwrites the
    student-logit buffer in place."""
    if not _HAVE_TRITON:
        raise RuntimeError("triton is not installed (pip install 'sdbench[gpu]')")
    assert cfg.loss.estimator == "full"
    del y
    c, m = x.shape[0], xt.shape[0]
    vocab = w.shape[0]
    zs = ws.get("zs", w.dtype, c)
    torch.mm(x, w.T, out=zs)
    zt = ws.get_stack("zt", wt.dtype, m, c)
    for j in range(m):
        torch.mm(xt[j], wt.T, out=zt[j])
    beta = cfg.loss.jsd_beta
    if cfg.loss.divergence == "jsd" and not 0.0 < beta < 1.0:
        # JSD is identically 0 at the limits; fall back to the torch body for that corner.
        from sdbench.core.kernels._torch_chunk import chunk_loss_and_grad

        return chunk_loss_and_grad(ws, x, xt, w, wt, cfg, wj, coef_vec, None, want_grad)
    loss = torch.empty(c, dtype=torch.float32, device=x.device)
    wv = wj.to(torch.float32).contiguous()
    logw = wv.log().clamp_min(_NEG)  # zero weight -> finite "minus infinity"
    coef = torch.zeros(c, dtype=torch.float32, device=x.device) if coef_vec is None else coef_vec.float().contiguous()
    block = min(4096, triton.next_power_of_2(vocab))
    _sd_rows_kernel[(c,)](
        zs,
        zt,
        loss,
        wv,
        logw,
        coef,
        vocab,
        m,
        zs.stride(0),
        zt.stride(0),
        zt.stride(1),
        wv.stride(0),
        1.0 / cfg.loss.temperature,
        beta,
        math.log(beta) if beta > 0 else _NEG,
        math.log1p(-beta) if beta < 1 else _NEG,
        DIV=DIVERGENCE_CODES[cfg.loss.divergence],
        COMBINE=0 if cfg.combine == "mixture" or m == 1 else 1,
        WANT_GRAD=want_grad,
        BLOCK=block,
        MAXM=max(2, triton.next_power_of_2(m)),
        num_warps=8 if block >= 2048 else 4,
        # FMA contraction on, as the kernel was checked (Triton <= 3.9's default, which 3.10 turns off):
        # pinned so that a Triton upgrade does not change its numerics silently.
        enable_fp_fusion=True,
    )
    return loss, (zs if want_grad else None)
