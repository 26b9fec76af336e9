"""Correctness of the fused self-distillation loss against the materialized reference.

Run: pytest tests/test_fused_linear_divergence.py   (~20 s on 2 cores)

Tolerances (relative, as ||a - b|| / ||b||): fp32 fused vs the fp64 reference 1e-5 for the loss and
both gradients; fp64 fused vs fp64 reference 1e-10; bf16 fused loss within 0.1% of the fp64 value
on the same bf16-rounded inputs (gradients within 1%; measured 0.2-0.4%). The textbook tests check the reference's
autograd gradients against the closed forms, and identities every backend must satisfy.
"""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
import torch

from sdbench.core.divergence import combine_teachers
from sdbench.core.kernels import FusedLinearDivergence, fused_linear_divergence, materialized_linear_divergence
from sdbench.core.kernels.materialized import closed_form_logit_grad

N, H, V = 41, 64, 1271


def _inputs(n: int, h: int, v: int, m: int, dtype: torch.dtype, seed: int = 0, scale: float = 0.4):
    g = torch.Generator().manual_seed(seed)
    sh = (torch.randn(n, h, generator=g, dtype=torch.float64) * scale).to(dtype)
    w = (torch.randn(v, h, generator=g, dtype=torch.float64) * scale).to(dtype)
    th = (torch.randn(m, n, h, generator=g, dtype=torch.float64) * scale).to(dtype)
    return sh, w, th[0] if m == 1 else th


def _run(fn, sh, w, th, grad_out=None, **kw):
    a, b = sh.clone().requires_grad_(True), w.clone().requires_grad_(True)
    loss = fn(a, b, th, **kw)
    go = torch.ones_like(loss) if grad_out is None else grad_out.to(loss.dtype)
    (loss * go).sum().backward()
    return loss.detach().double(), a.grad.double(), b.grad.double()


def _rel(x: torch.Tensor, y: torch.Tensor) -> float:
    return float((x.double() - y.double()).norm() / y.double().norm().clamp_min(1e-30))


def _case_kwargs(div, est, comb, m, weighted, coef, n=N, v=V, seed=1, signed=False):
    # fp32 cases use non-negative weights (masks, gates): a signed weighted sum can cancel to
    # near 0, where a relative tolerance measures the cancellation, not the kernel.
    g = torch.Generator().manual_seed(seed)
    tw = torch.randn(n, generator=g) * (torch.rand(n, generator=g) > 0.25) if weighted else None
    tw = tw if tw is None or signed else tw.abs()
    return dict(
        divergence=div,
        estimator=est,
        combine=comb,
        # weighted cases also use per-token entropy coefficients and per-token context weights
        entropy_coef=coef * torch.rand(n, generator=g) if weighted else coef,
        temperature=1.3,
        topk=17 if est == "topk" else None,
        target_ids=torch.randint(0, v, (n,), generator=g) if est == "sampled_token" else None,
        token_weights=tw,
        context_weights=_context_weights(m, n, weighted, g) if m > 1 else None,
    )


def _context_weights(m: int, n: int, per_token: bool, g: torch.Generator) -> torch.Tensor:
    """[M] weights, or [M, N] per-token weights where some contexts are absent (weight 0)."""
    if not per_token:
        return torch.rand(m, generator=g) + 0.1
    present = torch.rand(m, n, generator=g) > 0.4
    present[torch.arange(n) % m, torch.arange(n)] = True  # every token keeps at least one context
    return (torch.rand(m, n, generator=g) + 0.1) * present


CASES = [
    c
    for c in itertools.product(
        ["reverse_kl", "forward_kl", "jsd"],
        ["full", "topk", "sampled_token"],
        ["mixture", "logmean"],
        [1, 3],
        [False, True],
        [0.0, 0.05],
    )
    if not (c[1] == "sampled_token" and c[0] != "reverse_kl")
]


@pytest.mark.parametrize("div,est,comb,m,weighted,coef", CASES)
def test_fp32_matches_fp64_reference(div, est, comb, m, weighted, coef):
    sh, w, th = _inputs(N, H, V, m, torch.float32)
    kw = _case_kwargs(div, est, comb, m, weighted, coef)
    got = _run(fused_linear_divergence, sh, w, th, chunk_size=16, **kw)
    ref = _run(materialized_linear_divergence, sh.double(), w.double(), th.double(), **kw)
    for name, x, y in zip(("grad_hidden", "grad_weight"), got[1:], ref[1:], strict=True):
        assert _rel(x, y) < 1e-5, (name, _rel(x, y))
    # The loss is compared per token: divergence minus entropy bonus can cancel to ~0 in the mean,
    # where a relative tolerance on the scalar would measure the cancellation, not the kernel.
    per_tok = fused_linear_divergence(sh, w, th, chunk_size=16, reduction="none", **kw)
    per_ref = materialized_linear_divergence(sh.double(), w.double(), th.double(), reduction="none", **kw)
    assert _rel(per_tok, per_ref) < 1e-5
    assert abs(float(got[0]) - float(ref[0])) < 1e-5 * float(per_ref.abs().mean())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("div,est", [("reverse_kl", "full"), ("jsd", "topk"), ("reverse_kl", "sampled_token")])
def test_fp64_reductions_and_chunking(reduction, div, est):
    sh, w, th = _inputs(37, 24, 301, 3, torch.float64, seed=2)
    kw = _case_kwargs(div, est, "logmean", 3, True, 0.1, n=37, v=301, signed=True)
    go = torch.randn(37, dtype=torch.float64) if reduction == "none" else torch.tensor(0.7, dtype=torch.float64)
    ref = _run(materialized_linear_divergence, sh, w, th, grad_out=go, reduction=reduction, **kw)
    for chunk in (1, 5, None):
        got = _run(fused_linear_divergence, sh, w, th, grad_out=go, reduction=reduction, chunk_size=chunk, **kw)
        for x, y in zip(got, ref, strict=True):
            assert _rel(x, y) < 1e-10


@pytest.mark.parametrize("div", ["reverse_kl", "forward_kl", "jsd"])
@pytest.mark.parametrize("m,comb", [(1, "mixture"), (4, "mixture"), (4, "logmean")])
def test_bf16_within_tenth_percent(div, m, comb):
    n, h, v = 64, 256, 16384
    sh, w, th = _inputs(n, h, v, m, torch.bfloat16, seed=3, scale=0.15)
    kw = dict(divergence=div, combine=comb, entropy_coef=0.01)
    got = _run(fused_linear_divergence, sh, w, th, **kw)
    ref = _run(materialized_linear_divergence, sh.double(), w.double(), th.double(), **kw)
    assert _rel(got[0], ref[0]) < 1e-3
    assert _rel(got[1], ref[1]) < 1e-2 and _rel(got[2], ref[2]) < 1e-2


def test_fp32_realistic_shape():
    sh, w, th = _inputs(128, 256, 32000, 1, torch.float32, seed=4, scale=0.15)  # moderately realistic
    ref = _run(materialized_linear_divergence, sh.double(), w.double(), th.double(), divergence="jsd")
    got = _run(fused_linear_divergence, sh, w, th, divergence="jsd")  # automatic chunk size
    for x, y in zip(got, ref, strict=True):
        assert _rel(x, y) < 1e-5


@pytest.mark.parametrize("div", ["reverse_kl", "forward_kl", "jsd"])
def test_reference_autograd_matches_closed_form(div):
    # With W = I the hidden states are the logits, so grad wrt hidden = grad wrt student logits.
    v = 50
    zs = torch.randn(6, v, dtype=torch.float64) * 2
    zt = torch.randn(6, v, dtype=torch.float64) * 2
    _, gh, _ = _run(
        materialized_linear_divergence,
        zs,
        torch.eye(v, dtype=torch.float64),
        zt,
        divergence=div,
        beta=0.3,
        reduction="sum",
    )
    closed = closed_form_logit_grad(torch.log_softmax(zs, -1), torch.log_softmax(zt, -1), div, beta=0.3)
    torch.testing.assert_close(gh, closed, rtol=1e-10, atol=1e-12)


def test_sampled_token_gradient_is_unbiased():
    # E_{y ~ p_s}[r(y) grad log p_s(y)] must equal the full reverse-KL gradient (exact expectation).
    v, n = 12, 3
    zs, zt = torch.randn(n, v, dtype=torch.float64), torch.randn(n, v, dtype=torch.float64)
    eye = torch.eye(v, dtype=torch.float64)
    ps = torch.softmax(zs, -1)
    expected = torch.zeros(n, v, dtype=torch.float64)
    for y in range(v):
        _, gh, _ = _run(
            fused_linear_divergence,
            zs,
            eye,
            zt,
            estimator="sampled_token",
            target_ids=torch.full((n,), y),
            reduction="sum",
        )
        expected += ps[:, y : y + 1] * gh
    _, full, _ = _run(fused_linear_divergence, zs, eye, zt, reduction="sum")
    torch.testing.assert_close(expected, full, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("div", ["reverse_kl", "forward_kl", "jsd"])
def test_identities(div):
    sh, w, th = _inputs(N, H, V, 1, torch.float64, seed=5)
    # Teacher == student: every divergence and estimator is 0, with zero gradient.
    for est in ("full", "topk"):
        loss, gh, gw = _run(fused_linear_divergence, sh, w, sh, divergence=div, estimator=est, topk=5)
        assert abs(float(loss)) < 1e-12 and float(gh.abs().max()) < 1e-12 and float(gw.abs().max()) < 1e-12
    # M identical contexts: mixture == logmean == the single context.
    stack = th.expand(3, *th.shape)
    single = _run(fused_linear_divergence, sh, w, th, divergence=div)
    for comb in ("mixture", "logmean"):
        got = _run(fused_linear_divergence, sh, w, stack, divergence=div, combine=comb, context_weights=torch.rand(3))
        for x, y in zip(got, single, strict=True):
            assert _rel(x, y) < 1e-12
    # A tail bucket of one token is that token: top-(V-1) equals the full estimator.
    topk = _run(fused_linear_divergence, sh, w, th, divergence=div, estimator="topk", topk=V - 1)
    for x, y in zip(topk, single, strict=True):
        assert _rel(x, y) < 1e-10


def test_jsd_limits_and_combine_definitions():
    sh, w, th = _inputs(8, 16, 40, 1, torch.float64, seed=6)
    for beta in (0.0, 1.0):
        assert abs(float(fused_linear_divergence(sh, w, th, divergence="jsd", beta=beta))) < 1e-15
    lts = torch.log_softmax(torch.randn(2, 5, 40, dtype=torch.float64), -1)
    w = torch.tensor([[0.25] * 5, [0.75] * 5], dtype=torch.float64)   # [M, N]: one weight per context and token
    mix = combine_teachers(lts, w, "mixture")
    torch.testing.assert_close(mix.exp(), 0.25 * lts[0].exp() + 0.75 * lts[1].exp())
    geo = combine_teachers(lts, w, "logmean")
    torch.testing.assert_close(geo, torch.log_softmax(0.25 * lts[0] + 0.75 * lts[1], -1))


def test_weights_mask_and_module():
    sh, w, th = _inputs(10, 16, 60, 1, torch.float64, seed=7)
    tw = torch.tensor([1.0, 0, 0, -2.0, 0.5, 0, 1, 1, 0, 3])
    per_tok = fused_linear_divergence(sh, w, th, reduction="none")
    mean = fused_linear_divergence(sh, w, th, token_weights=tw)
    torch.testing.assert_close(mean, (per_tok * tw.double()).sum() / 6)  # 6 tokens with w != 0
    zero = fused_linear_divergence(sh, w, th, token_weights=torch.zeros(10))
    assert float(zero) == 0.0
    mod = FusedLinearDivergence("forward_kl", temperature=2.0)
    assert "forward_kl" in repr(mod)
    torch.testing.assert_close(
        mod(sh, w, th), fused_linear_divergence(sh, w, th, divergence="forward_kl", temperature=2.0)
    )
    # The teacher is a constant: no gradient reaches it even when it asks for one.
    t = th.clone().requires_grad_(True)
    fused_linear_divergence(sh.requires_grad_(True), w, t).backward()
    assert t.grad is None


def test_invalid_arguments():
    sh, w, th = _inputs(4, 8, 20, 1, torch.float32)
    with pytest.raises(ValueError, match="reverse_kl"):
        fused_linear_divergence(sh, w, th, divergence="jsd", estimator="sampled_token", target_ids=torch.zeros(4))
    with pytest.raises(ValueError, match="target_ids"):
        fused_linear_divergence(sh, w, th, estimator="sampled_token")
    with pytest.raises(ValueError, match="topk"):
        fused_linear_divergence(sh, w, th, estimator="topk")
    with pytest.raises(ValueError, match="dtype"):
        fused_linear_divergence(sh.double(), w, th)


def test_import_is_lazy():
    code = (
        "import sys, torch; before = set(sys.modules); import sdbench.core.kernels as k; k.fused_linear_divergence;"
        "new = set(sys.modules) - before; assert not any(m.split('.')[0] == 'triton' for m in new), new;"
        "assert 'torch._inductor' not in new"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("div", ["reverse_kl", "forward_kl", "jsd"])
@pytest.mark.parametrize("m,comb", [(1, "mixture"), (3, "mixture"), (3, "logmean")])
def test_cpu_row_kernel_matches_eager_body(monkeypatch, dtype, div, m, comb):
    from sdbench.core.kernels import cpu_kernel as ck

    if ck.cpu_kernel() is None:
        pytest.skip("no C compiler / kernel disabled (SDBENCH_CPU_KERNEL=0): the eager body is used")
    sh, w, th = _inputs(N, H, V, m, dtype, seed=8)
    g = torch.Generator().manual_seed(8)
    tw = _context_weights(m, N, True, g) if m > 1 else None  # some contexts absent for some tokens
    kw = dict(divergence=div, temperature=0.7, entropy_coef=torch.rand(N) * 0.1, chunk_size=16, combine=comb,
              context_weights=tw)
    fast = _run(fused_linear_divergence, sh, w, th, **kw)
    monkeypatch.setattr(ck, "_LIB", None)  # the next call takes the eager torch body
    eager = _run(fused_linear_divergence, sh, w, th, **kw)
    tol = 1e-5 if dtype == torch.float32 else 1e-2  # bf16: the gradient is rounded to bf16 by both
    for x, y in zip(fast, eager, strict=True):
        assert _rel(x, y) < tol


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("div", ["forward_kl", "jsd"])
@pytest.mark.parametrize("m", [1, 3])
def test_sharp_teachers_underflow_safely(dtype, div, m):
    # Teacher log-probs far below fp32's exp range (< -103): exp must give 0, not garbage. The
    # C kernel once got this wrong under -ffinite-math-only (vectorized expf).
    sh, w, th = _inputs(N, H, V, m, dtype, seed=11)
    th = (th.float() * 40).to(dtype)
    kw = dict(divergence=div, context_weights=torch.ones(m, N) if m > 1 else None)
    ref = materialized_linear_divergence(sh.double(), w.double(), th.double(), reduction="none", **kw)
    assert float((th.double() @ w.double().T).std()) > 20  # really sharp: most log-probs underflow
    got = fused_linear_divergence(sh, w, th, reduction="none", chunk_size=16, **kw)
    assert _rel(got, ref) < (1e-5 if dtype == torch.float32 else 1e-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_signed_logmean_weights(dtype):
    # log-mean may subtract a context (negative weight) as long as each token's weights sum > 0.
    sh, w, th = _inputs(N, H, V, 3, dtype, seed=9)
    tw = torch.tensor([1.0, 0.8, -0.5]).view(3, 1).repeat(1, N)
    tw[1, ::3] = 0.0  # some tokens lack the second context
    kw = dict(divergence="reverse_kl", combine="logmean", context_weights=tw, entropy_coef=0.02, chunk_size=16)
    got = _run(fused_linear_divergence, sh, w, th, **kw)
    ref = _run(materialized_linear_divergence, sh.double(), w.double(), th.double(), **kw)
    for x, y in zip(got, ref, strict=True):
        assert _rel(x, y) < (1e-5 if dtype == torch.float32 else 1e-10)
    with pytest.raises(ValueError, match="mixture"):
        fused_linear_divergence(sh, w, th, combine="mixture", context_weights=tw)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "div,est", [("reverse_kl", "full"), ("forward_kl", "full"), ("jsd", "topk"), ("reverse_kl", "sampled_token")]
)
def test_teacher_entropy_gate(dtype, div, est):
    sh, w, th = _inputs(N, H, V, 3, dtype, seed=10)
    kw = _case_kwargs(div, est, "mixture", 3, True, 0.05)
    # Per-token bounds clearly either side of each token's teacher entropy, so that fp32 rounding
    # cannot flip a token: every other token is gated out.
    zt = torch.log_softmax(th.double() @ w.double().T / kw["temperature"], -1)
    lt = torch.logsumexp(
        zt
        + torch.log(
            torch.as_tensor(kw["context_weights"], dtype=torch.float64) / torch.as_tensor(kw["context_weights"]).sum(0)
        ).unsqueeze(-1),
        0,
    )
    h_t = -(lt.exp() * lt).sum(-1)
    hi = torch.where(torch.arange(N) % 2 == 0, h_t + 0.05, h_t - 0.05)
    kw["teacher_entropy_gate"] = (0.0, hi)
    got = _run(fused_linear_divergence, sh, w, th, chunk_size=16, **kw)
    ref = _run(materialized_linear_divergence, sh.double(), w.double(), th.double(), **kw)
    for x, y in zip(got[1:], ref[1:], strict=True):
        assert _rel(x, y) < (1e-5 if dtype == torch.float32 else 1e-10)
    ungated = materialized_linear_divergence(sh.double(), w.double(), th.double(),
                                             **{**kw, "teacher_entropy_gate": None})
    assert abs(float(ref[0]) - float(ungated)) > 1e-3  # the gate did something
    assert abs(float(got[0]) - float(ref[0])) < 1e-5 * max(1.0, abs(float(ref[0])))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("n", [40, 300])
def test_more_teacher_contexts_cost_no_work_buffer_memory(monkeypatch, dtype, n):
    # The work buffers of an M = 4 call must not exceed those of the M = 1 call of the same size
    # (the budget is tiny here so that it binds for one n and not the other).
    from sdbench.core.kernels import _torch_chunk

    monkeypatch.setenv("SDBENCH_FLD_BUDGET_MB", "4")
    monkeypatch.setattr(_torch_chunk, "_CACHE", {})

    def work_bytes(m: int) -> int:
        _torch_chunk.clear_workspace_cache()
        sh, w, th = _inputs(n, 32, 3001, m, dtype, seed=12)
        _run(fused_linear_divergence, sh, w, th)
        return sum(b.numel() * b.element_size() for ws in _torch_chunk._CACHE.values() for b in ws._bufs.values())

    one, four = work_bytes(1), work_bytes(4)
    assert 0 < four <= one
