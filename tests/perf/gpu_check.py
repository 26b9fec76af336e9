"""GPU check of the fused self-distillation loss: correctness, then time and memory vs naive and Liger.

Run on a CUDA machine (<= 5 min):  python tests/perf/gpu_check.py [--quick]
Needs torch with CUDA and triton (`pip install -e .[gpu]`); liger-kernel is optional. Without a GPU
it prints why and exits 0. Every section is guarded: a failure is reported and the script goes
on; the exit status is 1 if any correctness check failed.

1. Correctness (Triton path, small odd shapes) against the fp64 reference: every divergence,
   M in {1, 3}, mixture / logmean, token weights, entropy bonus; fp32 relative error <= 1e-4
   (TF32 is disabled for the check), bf16 loss within 0.1%.
2. Time (median of 5 after 2 warm-ups) and peak extra memory (torch.cuda.max_memory_allocated
   over the inputs) at H=896, V=151936, N in {2048, 8192}, bf16, for: fused (Triton), fused with
   the torch element-wise body (SDBENCH_KERNEL_BACKEND=torch), the naive full-logit path, Liger's
   Triton LigerFusedLinearJSD and (JSD only) its chunked LigerFusedLinearJSDLoss, and the four-matmul
   floor. --quick: N=2048 only.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable

import torch

from sdbench.core.kernels import clear_workspace_cache, fused_linear_divergence, materialized_linear_divergence

FAILURES: list[str] = []


def _rel(x: torch.Tensor, y: torch.Tensor) -> float:
    return float((x.double() - y.double()).norm() / y.double().norm().clamp_min(1e-30))


def check_correctness(dev: torch.device) -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    n, h, v = 41, 64, 1271
    seed = 0
    for div in ("reverse_kl", "forward_kl", "jsd"):
        for m, comb in ((1, "mixture"), (3, "mixture"), (3, "logmean")):
            for weighted in (False, True):
                seed += 1
                g = torch.Generator().manual_seed(seed)
                sh, w = torch.randn(n, h, generator=g) * 0.4, torch.randn(v, h, generator=g) * 0.4
                th = torch.randn(m, n, h, generator=g) * 0.4
                kw = dict(
                    divergence=div,
                    combine=comb,
                    temperature=1.3,
                    entropy_coef=0.05 if weighted else 0.0,
                    context_weights=torch.rand(m, generator=g) + 0.1,
                    token_weights=(torch.rand(n, generator=g) > 0.3).float() if weighted else None,
                )
                outs = []
                for fn, dt, d in (
                    (fused_linear_divergence, torch.float32, dev),
                    (materialized_linear_divergence, torch.float64, torch.device("cpu")),
                ):
                    a = sh.to(d, dt).requires_grad_(True)
                    b = w.to(d, dt).requires_grad_(True)
                    k = {key: (val.to(d) if isinstance(val, torch.Tensor) else val) for key, val in kw.items()}
                    loss = fn(a, b, th.to(d, dt), **k)
                    loss.backward()
                    outs.append((loss.detach().cpu(), a.grad.cpu(), b.grad.cpu()))
                errs = [_rel(x, y) for x, y in zip(*outs, strict=True)]
                status = "ok" if max(errs) < 1e-4 else "FAIL"
                if status == "FAIL":
                    FAILURES.append(f"{div} M={m} {comb} weighted={weighted}: {errs}")
                print(f"  [{status}] {div:10s} M={m} {comb:8s} weighted={weighted!s:5s} max rel err {max(errs):.1e}")
    sh = (torch.randn(256, 512) * 0.2).bfloat16()
    w = (torch.randn(32000, 512) * 0.05).bfloat16()
    th = (torch.randn(256, 512) * 0.2).bfloat16()
    got = fused_linear_divergence(sh.to(dev), w.to(dev), th.to(dev), divergence="jsd")
    ref = materialized_linear_divergence(sh.double(), w.double(), th.double(), divergence="jsd")
    err = _rel(got.cpu(), ref)
    print(f"  [{'ok' if err < 1e-3 else 'FAIL'}] bf16 jsd loss rel err {err:.1e}")
    if err >= 1e-3:
        FAILURES.append(f"bf16 loss rel err {err}")
    torch.backends.cuda.matmul.allow_tf32 = True


def _measure(fn: Callable[[], object], reps: int = 5) -> tuple[float, float]:
    """(median seconds, peak extra GiB over the memory allocated before the call)."""
    for _ in range(2):
        fn()
    clear_workspace_cache()  # cached work buffers must count as this method's extra memory
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), (torch.cuda.max_memory_allocated() - base) / 2**30


def bench(dev: torch.device, ns: list[int]) -> None:
    for n in ns:
        for div, m in (("reverse_kl", 1), ("forward_kl", 1), ("jsd", 1), ("reverse_kl", 4)):
            _bench_one(dev, n, div, m)


def _bench_one(dev: torch.device, n: int, div: str, m: int) -> None:
    h, v, dt = 896, 151936, torch.bfloat16
    torch.manual_seed(0)
    sh = torch.randn(n, h, device=dev, dtype=dt)
    w = (torch.randn(v, h, device=dev) * 0.05).to(dt)
    th = (sh + 0.5 * torch.randn(m, n, h, device=dev, dtype=dt)) if m > 1 else sh + 0.5 * torch.randn_like(sh)
    th3 = th if m > 1 else th.unsqueeze(0)

    def step(fn: Callable[..., torch.Tensor], **kw: object) -> Callable[[], None]:
        def run() -> None:
            a, b = sh.detach().requires_grad_(True), w.detach().requires_grad_(True)
            fn(a, b, th, **kw).backward()

        return run

    def floor() -> None:
        z = sh @ w.T
        for j in range(m):
            th3[j] @ w.T
        z @ w
        z.T @ sh

    def torch_body() -> None:
        os.environ["SDBENCH_KERNEL_BACKEND"] = "torch"
        try:
            step(fused_linear_divergence, divergence=div)()
        finally:
            os.environ.pop("SDBENCH_KERNEL_BACKEND", None)

    methods: dict[str, Callable[[], object]] = {
        "floor": floor,
        "fused": step(fused_linear_divergence, divergence=div),
        "fused-torch": torch_body,
    }
    if (m + 7) * n * v * 4 < 0.6 * torch.cuda.get_device_properties(dev).total_memory:
        methods["naive"] = step(materialized_linear_divergence, divergence=div)
    beta = {"jsd": 0.5, "forward_kl": 0.0, "reverse_kl": 1.0}[div]
    if m == 1:
        try:
            from liger_kernel.transformers import LigerFusedLinearJSD

            lj = LigerFusedLinearJSD(jsd_beta=beta)
            methods["liger-triton"] = step(lambda a, b, t: lj(a, b, t, b.detach()))
            if div == "jsd":  # torch.compile'd: compiles per shape, so only once per N to bound the run time
                from liger_kernel.chunked_loss import LigerFusedLinearJSDLoss

                lc = LigerFusedLinearJSDLoss(weight_hard_loss=0.0, weight_soft_loss=1.0, beta=beta)
                labels = torch.zeros(n, dtype=torch.long, device=dev)
                methods["liger-chunked"] = step(lambda a, b, t: lc(a, b, t, b.detach(), labels))
        except ImportError:
            pass
    res: dict[str, tuple[float, float]] = {}
    for name, fn in methods.items():
        try:
            res[name] = _measure(fn)
        except Exception as exc:  # report and go on: one baseline failing must not hide the rest
            print(f"    {name}: failed ({type(exc).__name__}: {str(exc)[:120]})")
        torch.cuda.empty_cache()
    fl = res.get("floor", (float("nan"), 0.0))[0]
    print(f"  N={n} {div} M={m} bf16:")
    for name, (t, mem) in res.items():
        print(f"    {name:14s} {t * 1e3:8.2f} ms  {t / fl:5.2f}x floor  extra mem {mem:6.2f} GiB")


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing to check (run it on a GPU machine).")
        return 0
    dev = torch.device("cuda")
    from sdbench.core.kernels import triton_available

    print(f"device: {torch.cuda.get_device_name(dev)}; triton available: {triton_available()}")
    t0 = time.time()
    for title, fn in (
        ("correctness", lambda: check_correctness(dev)),
        ("benchmark", lambda: bench(dev, [2048] if "--quick" in sys.argv else [2048, 8192])),
    ):
        print(f"== {title}")
        try:
            fn()
        except Exception:
            traceback.print_exc()
            FAILURES.append(f"{title} crashed")
        print(f"   ({time.time() - t0:.0f} s elapsed)")
    print("FAILURES:\n  " + "\n  ".join(FAILURES) if FAILURES else "all correctness checks passed")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
