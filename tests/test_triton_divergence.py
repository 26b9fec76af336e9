"""The Triton element-wise kernel against the pure-torch reference, on CPU under TRITON_INTERPRET=1.

Run: pytest tests/test_triton_divergence.py   (~15 s; needs `pip install triton`, which installs and
runs in interpreter mode on CPU-only Linux x86-64; the test skips, saying so, where it cannot import)

TRITON_INTERPRET must be set before triton is first imported, so the pytest test re-runs this file
as a script in a subprocess with TRITON_INTERPRET=1 and SDBENCH_KERNEL_BACKEND=triton (which routes
the "full" estimator through the kernel even on CPU tensors). Tolerance: fp32 kernel vs fp64
reference, relative 1e-5 on the loss and both gradients; bf16 logits: loss within 0.1%.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys

import pytest


def _check() -> None:
    import torch

    from sdbench.core.kernels import fused_linear_divergence, materialized_linear_divergence, triton_available

    assert triton_available(), "TRITON_INTERPRET=1 should make the kernel runnable on CPU"
    n, h, v = 13, 32, 301  # odd sizes: v spans a partial vocabulary block

    def run(fn, sh, w, th, dtype, **kw):
        a = sh.detach().to(dtype).clone().requires_grad_(True)
        b = w.detach().to(dtype).clone().requires_grad_(True)
        loss = fn(a, b, th.to(dtype), **kw)
        go = torch.linspace(-1, 1, n, dtype=loss.dtype) if loss.dim() else torch.ones((), dtype=loss.dtype)
        (loss * go).sum().backward()
        return loss.detach().double(), a.grad.double(), b.grad.double()

    def rel(x, y):
        return float((x - y).norm() / y.norm().clamp_min(1e-30))

    cases = list(
        itertools.product(["reverse_kl", "forward_kl", "jsd"], [(1, "mixture"), (3, "mixture"), (3, "logmean")])
    )
    for i, (div, (m, comb)) in enumerate(cases):
        g = torch.Generator().manual_seed(i)
        sh, w = torch.randn(n, h, generator=g) * 0.5, torch.randn(v, h, generator=g) * 0.5
        th = torch.randn(m, n, h, generator=g) * 0.5
        kw = dict(
            divergence=div,
            combine=comb,
            temperature=1.3,
            entropy_coef=0.1 * (i % 2),
            chunk_size=8,
            context_weights=torch.rand(m, generator=g) + 0.1,
            reduction="none" if i % 3 == 0 else "mean",
            token_weights=(torch.rand(n, generator=g) > 0.3).float() if i % 2 else None,
        )
        got = run(fused_linear_divergence, sh, w, th, torch.float32, **kw)
        ref = run(materialized_linear_divergence, sh, w, th, torch.float64, **kw)
        errs = [rel(x, y) for x, y in zip(got, ref, strict=True)]
        assert max(errs) < 1e-5, (div, m, comb, errs)
        print(f"ok {div:10s} M={m} {comb:8s} rel errs {max(errs):.1e}")
    # bf16 inputs: the kernel reads bf16 logits and does fp32 math.
    g = torch.Generator().manual_seed(99)
    sh, w, th = (
        (torch.randn(n, h, generator=g) * 0.3).bfloat16(),
        (torch.randn(v, h, generator=g) * 0.3).bfloat16(),
        (torch.randn(n, h, generator=g) * 0.3).bfloat16(),
    )
    got = fused_linear_divergence(sh, w, th, divergence="jsd")
    ref = materialized_linear_divergence(sh.double(), w.double(), th.double(), divergence="jsd")
    assert rel(got.double(), ref) < 1e-3, rel(got.double(), ref)
    print("ok bf16")


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed (pip install triton)")
def test_triton_kernel_matches_reference_in_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1", SDBENCH_KERNEL_BACKEND="triton")
    out = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("ok ") == 10, out.stdout


if __name__ == "__main__":
    _check()


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed (pip install triton)")
@pytest.mark.parametrize("div,combine", [(0, 0), (2, 1)])
def test_triton_kernel_compiles_for_sm90(div, combine):
    # No GPU needed: the interpreter does not check what the compiler rejects (e.g. non-constexpr
    # globals), so also lower the kernel to PTX for an H100 target with triton's bundled toolchain.
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from sdbench.core.kernels import triton_divergence as td

    ptr = {"zs_ptr": "*bf16", "zt_ptr": "*bf16", "loss_ptr": "*fp32", "w_ptr": "*fp32", "logw_ptr": "*fp32"}
    sig = {**ptr, "coef_ptr": "*fp32", "V": "i32", "M": "i32"}
    sig |= {k: "i64" for k in ("stride_s", "stride_tm", "stride_tr", "stride_w")}
    sig |= {k: "fp32" for k in ("scale", "beta", "log_beta", "log_1mbeta")}
    consts = {"DIV": div, "COMBINE": combine, "WANT_GRAD": True, "BLOCK": 4096, "MAXM": 4}
    sig |= {k: "constexpr" for k in consts}
    src = ASTSource(fn=td._sd_rows_kernel, signature=sig, constexprs=consts)
    try:
        compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32),
                                  options={"num_warps": 8, "enable_fp_fusion": True})   # as the launch pins it
    except RuntimeError as exc:  # e.g. a triton build without the NVIDIA backend toolchain
        if "ptxas" in str(exc) or "backend" in str(exc).lower():
            pytest.skip(f"no NVIDIA toolchain in this triton install: {exc}")
        raise
    assert ".entry _sd_rows_kernel" in compiled.asm["ptx"]
