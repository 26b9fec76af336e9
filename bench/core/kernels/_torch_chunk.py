"""Eager-torch chunk body of the fused self-distillation loss (CPU default; CUDA fallback).

Not run directly: `sdbench.core.kernels.fused_linear_divergence` calls `chunk_loss_and_grad` once
per chunk of tokens. For a chunk it forms student and teacher logits into reusable [C, V] work
buffers, computes the per-token loss in fp32 (fp64 for fp64 inputs) and d loss / d student-logit
in closed form, with in-place ops only: on CPU a fresh [C, V] allocation costs page faults that
are as slow as the arithmetic, so every buffer is allocated once per call and reused.
"""

from __future__ import annotations

import math

import torch

from sdbench.core.kernels._common import DivergenceConfig, divergence_from_logprobs

_LOG_SOFTMAX_OUT = torch.ops.aten._log_softmax.out


class Workspace:
    """Named [rows, V] buffers, allocated on first use and handed out as [:c] views.

    Kept between calls (see `workspace_for`): on CPU, first-touch page faults on a fresh [C, V]
    buffer cost as much as a full arithmetic pass over it."""

    def __init__(self, rows: int, vocab: int, device: torch.device) -> None:
        self.rows, self.vocab, self.device = rows, vocab, device
        self._bufs: dict[tuple[str, torch.dtype], torch.Tensor] = {}

    def get(self, name: str, dtype: torch.dtype, c: int) -> torch.Tensor:
        key = (name, dtype)
        if key not in self._bufs:
            self._bufs[key] = torch.empty(self.rows, self.vocab, dtype=dtype, device=self.device)
        return self._bufs[key][:c]

    def get_stack(self, name: str, dtype: torch.dtype, m: int, c: int) -> torch.Tensor:
        """An [m, rows, V] buffer viewed as [m, c, V] (teacher logits for the Triton path)."""
        key = (f"{name}x{m}", dtype)
        if key not in self._bufs:
            self._bufs[key] = torch.empty(m, self.rows, self.vocab, dtype=dtype, device=self.device)
        return self._bufs[key][:, :c]


_CACHE: dict[tuple[str, int], Workspace] = {}


def workspace_for(rows: int, vocab: int, device: torch.device) -> Workspace:
    """A workspace with at least `rows` rows, reused across calls on the same device and vocab."""
    key = (str(device), vocab)
    ws = _CACHE.get(key)
    if ws is None or ws.rows < rows:
        _CACHE.pop(key, None)  # drop the smaller one first so both never coexist
        ws = _CACHE[key] = Workspace(rows, vocab, device)
    return ws


def clear_workspace_cache() -> None:
    """Free the cached work buffers (e.g. before a memory-hungry generation phase)."""
    _CACHE.clear()


def use_cpu_kernel(
    cfg: DivergenceConfig, m: int, device: torch.device, dtype: torch.dtype, teacher_dtype: torch.dtype
) -> bool:
    """Whether chunks go through the fused C row kernel (`sdbench.core.kernels.cpu_kernel`)."""
    from sdbench.core.kernels.cpu_kernel import MAX_CONTEXTS, cpu_kernel

    if device.type != "cpu" or m > MAX_CONTEXTS or cfg.loss.estimator != "full":
        return False
    if dtype not in (torch.float32, torch.bfloat16):
        return False
    if cfg.gated:
        return False
    if teacher_dtype != dtype:
        return False
    if cfg.loss.divergence == "jsd" and not 0.0 < cfg.loss.jsd_beta < 1.0:
        return False  # the identically-zero limits are special-cased in the eager body
    return cpu_kernel() is not None


def buffers_per_row(cfg: DivergenceConfig, m: int, md_size: int, low_size: int, cpu_kernel: bool = False) -> int:
    """Bytes of workspace per token row divided by V (drives the automatic chunk size)."""
    if cpu_kernel:  # see chunk_loss_and_grad: logits in the weight dtype (+ combined teacher, fp32 M > 1)
        return 2 * md_size if low_size == 0 else (1 + m) * low_size
    n = 3  # A: student log-probs, B: teacher logits / scratch, P: student probs
    if m > 1:
        n += 1  # T: combined teacher log-probs (B becomes the scratch buffer)
    elif cfg.loss.divergence != "reverse_kl" or cfg.loss.estimator == "topk" or cfg.gated:
        n += 1  # Q: scratch for p_t, log m or the top-k tail
    return n * md_size + low_size


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # bmm is a single fused multiply-reduce per row (no [C, V] temporary, unlike (a * b).sum()).
    return torch.bmm(a.unsqueeze(1), b.unsqueeze(2)).view(-1)


def _logits(
    ws: Workspace, name: str, x: torch.Tensor, w: torch.Tensor, md: torch.dtype, inv_tau: float
) -> torch.Tensor:
    c = x.shape[0]
    out = ws.get(name, md, c)
    if w.dtype == md:
        torch.mm(x, w.T, out=out)
    else:  # low-precision matmul, then one converting copy into the fp32 math buffer
        low = ws.get("low", w.dtype, c)
        torch.mm(x, w.T, out=low)
        out.copy_(low)
    if inv_tau != 1.0:
        out.mul_(inv_tau)
    return out


def _log_softmax_(z: torch.Tensor) -> torch.Tensor:
    _LOG_SOFTMAX_OUT(z, 1, False, out=z)  # in place: the CPU kernel reads each element before writing it
    return z


def _teacher_logprobs(
    ws: Workspace, xt: torch.Tensor, wt: torch.Tensor, md: torch.dtype, inv_tau: float, wj: torch.Tensor, combine: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Combined teacher log-probs; streams over the M contexts so memory does not grow with M.

    Returns (lt, free scratch buffer or None)."""
    if xt.shape[0] == 1:
        return _log_softmax_(_logits(ws, "B", xt[0], wt, md, inv_tau)), None
    c = xt.shape[1]
    t = ws.get("T", md, c)
    wcol = wj.unsqueeze(-1)  # [M, c, 1]: per-token context weights
    logw = wcol.log() if combine == "mixture" else None
    for j in range(xt.shape[0]):
        b = _log_softmax_(_logits(ws, "B", xt[j], wt, md, inv_tau))
        if combine == "mixture":  # log sum_j w_j p_j, accumulated with logaddexp
            assert logw is not None
            if j == 0:
                torch.add(b, logw[0], out=t)
            else:
                b.add_(logw[j])
                torch.logaddexp(t, b, out=t)
        elif j == 0:  # logmean: sum_j w_j log p_j, renormalized below
            torch.mul(b, wcol[0], out=t)
        else:
            t.addcmul_(b, wcol[j])
    if combine == "logmean":
        _log_softmax_(t)
    return t, ws.get("B", md, c)


def _emit(acc: torch.Tensor, p: torch.Tensor | None, ws: Workspace, out_dtype: torch.dtype) -> torch.Tensor:
    """Final pass: grad = acc * p (or acc), written straight into the matmul dtype."""
    if out_dtype == acc.dtype:
        return acc.mul_(p) if p is not None else acc
    if p is not None:
        acc.mul_(p)  # two plain passes beat one mixed-dtype torch.mul(out=low) on CPU (~4x slower)
    return ws.get("low", out_dtype, acc.shape[0]).copy_(acc)


def _lse_destroy(z: torch.Tensor) -> torch.Tensor:
    """Row logsumexp computed in place (z is scratch and is overwritten)."""
    m = z.amax(1, keepdim=True)
    z.sub_(m).exp_()
    return z.sum(1).log_().add_(m.view(-1))


def chunk_loss_and_grad(
    ws: Workspace,
    x: torch.Tensor,
    xt: torch.Tensor,
    w: torch.Tensor,
    wt: torch.Tensor,
    cfg: DivergenceConfig,
    wj: torch.Tensor,
    coef_vec: torch.Tensor | None,
    y: torch.Tensor | None,
    want_grad: bool,
    gate: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token loss [c] (fp32/fp64) and d loss_i / d z_s (z_s = logits / tau) as [c, V] in w.dtype.

    gate: [2, c] teacher-entropy bounds; rows whose teacher entropy is outside get the student as
    their teacher, which makes every divergence (and its gradient) exactly zero there.

    wj: [M, c] context weights (columns sum to 1); coef_vec: [c] entropy coefficients or None.
    The returned gradient is a view of a workspace buffer: consume it before the next call."""
    md = torch.float64 if w.dtype == torch.float64 else torch.float32
    inv_tau = 1.0 / cfg.loss.temperature
    c = x.shape[0]
    if use_cpu_kernel(cfg, xt.shape[0], x.device, w.dtype, wt.dtype):
        from sdbench.core.kernels.cpu_kernel import cpu_kernel, rows_loss_and_grad

        m = xt.shape[0]
        zs = ws.get("ks", w.dtype, c)
        if m == 1:
            zt = ws.get("kt", w.dtype, c)
            torch.mm(xt[0], wt.T, out=zt)
        elif w.dtype == torch.float32:
            # fp32: fold the contexts one at a time into a combined fp32 buffer, using the student
            # buffer as each context's scratch before the student logits go there: two buffers per
            # token whatever M, so chunks stay as large (and fp32 matmuls as efficient) as for M = 1.
            from sdbench.core.kernels.cpu_kernel import fold_context

            zt = ws.get("kt", torch.float32, c)
            for j in range(m):
                torch.mm(xt[j], wt.T, out=zs)
                fold_context(cpu_kernel(), zs, wj[j], zt, inv_tau, cfg.combine, first=j == 0)
        else:  # bf16: all M contexts' logits, combined per row in cache by the kernel
            # the kernel wants [m, c, V] contiguous: view a prefix of the [m, rows, V] buffer as such
            zt = ws.get_stack("kt", w.dtype, m, ws.rows).reshape(-1)[: m * c * ws.vocab].view(m, c, ws.vocab)
            # one matmul for all M contexts: the head streams through the caches once per chunk, not M times
            torch.mm(xt.reshape(m * c, -1), wt.T, out=zt.view(m * c, ws.vocab))
        torch.mm(x, w.T, out=zs)
        lib = cpu_kernel()
        assert lib is not None
        loss = rows_loss_and_grad(lib, zs, zt, coef_vec, cfg.loss.divergence, cfg.loss.jsd_beta, inv_tau, want_grad,
                                  context_weights=wj if zt.dim() == 3 else None, combine=cfg.combine,
                                  teacher_is_combined=m > 1 and zt.dim() == 2)
        return loss, (zs if want_grad else None)
    coef = coef_vec.unsqueeze(1) if coef_vec is not None else None  # [c, 1]
    a = _log_softmax_(_logits(ws, "A", x, w, md, inv_tau))  # student log-probs
    lt, scratch = _teacher_logprobs(ws, xt, wt, md, inv_tau, wj, cfg.combine)
    p = torch.exp(a, out=ws.get("P", md, c))
    ent = -_rowdot(p, a) if coef is not None else None

    def q() -> torch.Tensor:
        return scratch if scratch is not None else ws.get("Q", md, c)

    if gate is not None:
        pt = torch.exp(lt, out=q())
        h_t = -_rowdot(pt, lt)
        shut = torch.nonzero((h_t < gate[0].to(h_t.dtype)) | (h_t > gate[1].to(h_t.dtype))).view(-1)
        if shut.numel():
            lt.index_copy_(0, shut, a.index_select(0, shut))

    if cfg.loss.estimator == "sampled_token":
        assert y is not None
        yy = y.view(-1, 1)
        r = a.gather(1, yy).view(-1) - lt.gather(1, yy).view(-1)
        loss = r
        if want_grad:  # r * (onehot(y) - p_s), plus the entropy term
            torch.mul(p, (-r).unsqueeze(1), out=lt)
            lt.scatter_add_(1, yy, r.unsqueeze(1))
            if ent is not None:
                lt.add_(a.add_(ent.unsqueeze(1)).mul_(p).mul_(coef))
            grad = _emit(lt, None, ws, w.dtype)
    elif cfg.loss.estimator == "topk":
        loss, acc = _topk(a, lt, p, q(), cfg, want_grad)
        if want_grad:
            if ent is not None:
                acc.add_(a.add_(ent.unsqueeze(1)).mul_(p).mul_(coef))
            grad = _emit(acc, None, ws, w.dtype)
    elif cfg.loss.divergence == "reverse_kl":
        torch.sub(a, lt, out=lt)  # d = log p_s - log p_t
        loss = _rowdot(p, lt)
        if want_grad:  # p_s * (d - KL + coef * (log p_s + H))
            off = loss
            if ent is not None:
                lt.addcmul_(a, coef)
                off = loss - coef.view(-1) * ent
            lt.sub_(off.unsqueeze(1))
            grad = _emit(lt, p, ws, w.dtype)
    elif cfg.loss.divergence == "forward_kl":
        pt = torch.exp(lt, out=q())
        torch.sub(lt, a, out=lt)
        loss = _rowdot(pt, lt)
        if want_grad:  # p_s - p_t + coef * p_s * (log p_s + H)
            if ent is not None:
                a.add_(ent.unsqueeze(1)).mul_(coef).add_(1.0).mul_(p).sub_(pt)
                grad = _emit(a, None, ws, w.dtype)
            else:
                grad = _emit(torch.sub(p, pt, out=pt), None, ws, w.dtype)
    else:
        loss, acc, pm = _jsd(a, lt, p, q(), cfg.loss.jsd_beta, coef, ent, want_grad)
        if want_grad:
            grad = _emit(acc, pm, ws, w.dtype) if acc is not None else ws.get("low", w.dtype, c).zero_()
    if ent is not None:
        assert coef is not None
        loss = loss - coef.view(-1) * ent
    return loss, (grad if want_grad else None)


def _jsd(
    a: torch.Tensor,
    lt: torch.Tensor,
    p: torch.Tensor,
    q: torch.Tensor,
    beta: float,
    coef: torch.Tensor | None,
    ent: torch.Tensor | None,
    want_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Generalized JSD; returns (loss, acc, p) with grad = acc * p (acc None: zero gradient)."""
    if beta <= 0.0 or beta >= 1.0:  # JSD is identically 0 at the limits; only the entropy term remains
        loss = torch.zeros(a.shape[0], dtype=a.dtype, device=a.device)
        if ent is None or coef is None:
            return loss, None, None
        return loss, a.add_(ent.unsqueeze(1)).mul_(coef), p
    torch.add(lt, math.log(beta), out=q)
    torch.add(a, math.log1p(-beta), out=p)  # p is reused as scratch and recomputed below
    torch.logaddexp(q, p, out=q)  # log m
    lt.sub_(q)  # log p_t - log m
    pt = torch.add(lt, q, out=p).exp_()
    kl_t = _rowdot(pt, lt)
    torch.sub(a, q, out=lt)  # log p_s - log m
    torch.exp(a, out=p)
    kl_s = _rowdot(p, lt)
    loss = beta * kl_t + (1.0 - beta) * kl_s
    if not want_grad:
        return loss, None, None
    # (1 - beta) * p_s * (log p_s - log m - KL(p_s || m)) + coef * p_s * (log p_s + H)
    lt.sub_(kl_s.unsqueeze(1)).mul_(1.0 - beta)
    if ent is not None and coef is not None:
        lt.addcmul_(a, coef).add_(coef * ent.unsqueeze(1))
    return loss, lt, p


def _topk(
    a: torch.Tensor, lt: torch.Tensor, p: torch.Tensor, q: torch.Tensor, cfg: DivergenceConfig, want_grad: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k + tail-bucket estimator; the bucket-level gradient comes from autograd on [c, k+1]."""
    assert cfg.loss.topk is not None
    idx = a.topk(cfg.loss.topk, dim=1).indices
    q.copy_(a).scatter_(1, idx, float("-inf"))
    s_tail = _lse_destroy(q)
    q.copy_(lt).scatter_(1, idx, float("-inf"))
    t_tail = _lse_destroy(q)
    qs = torch.cat([a.gather(1, idx), s_tail.unsqueeze(1)], 1)
    qt = torch.cat([lt.gather(1, idx), t_tail.unsqueeze(1)], 1)
    with torch.enable_grad():
        qs_leaf = qs.detach().requires_grad_(True)
        lb = divergence_from_logprobs(qs_leaf, qt, cfg.loss.divergence, cfg.loss.jsd_beta)
        h = torch.autograd.grad(lb.sum(), qs_leaf)[0] if want_grad else None
    loss = lb.detach()
    if h is None:
        return loss, q
    # d L / d z_v = p_v * (h_b / q_b - sum_b h_b) for v in bucket b; on the top-k entries q_b = p_v.
    sh = h.sum(1, keepdim=True)
    empty = torch.isneginf(s_tail)  # tail mass underflowed: its tokens have p_v = 0
    tail_lp = torch.where(empty, torch.zeros_like(s_tail), s_tail).unsqueeze(1)
    h_tail = torch.where(empty, torch.zeros_like(s_tail), h[:, -1]).unsqueeze(1)
    torch.sub(a, tail_lp, out=q).exp_().mul_(h_tail)
    q.addcmul_(p, -sh)
    q.scatter_(1, idx, h[:, :-1] - p.gather(1, idx) * sh)
    return loss, q
