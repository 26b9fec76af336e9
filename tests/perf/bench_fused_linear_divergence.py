"""Benchmark: fused self-distillation loss vs the matmul floor, a naive full-logit path and Liger.

Run: pytest tests/perf/bench_fused_linear_divergence.py --benchmark-only [-k "N512 and bf16"] -s
     (one configuration: python tests/perf/bench_fused_linear_divergence.py --worker '{"n": 512, ...}')

Each configuration runs in its own subprocess, so peak memory is clean and every ratio compares
methods timed in the same process, interleaved (min over rounds; the machine is shared and noisy):
  floor  the four matmuls at full N with preallocated outputs: student logits, M x teacher
         logits, grad wrt hidden, grad wrt weight (the ideal any fused kernel pays);
  naive  TRL-style: materialized fp32 logits, log_softmax, divergence, autograd
         (= sdbench.core.kernels.materialized_linear_divergence); skipped when it would need more
         than SDBENCH_BENCH_MAX_NAIVE_GB (default 20) or 85% of available memory;
  liger  liger_kernel's LigerFusedLinearJSDLoss (chunked, torch.compile'd; beta=0 / 1 give
         forward / reverse KL), when liger-kernel is installed; single teacher only.
Memory: extra peak RSS of one forward+backward over the RSS just before it (a sampling thread reads
/proc/self/statm every millisecond), work buffers and returned gradients included.
Targets on CPU: KL <= 1.15x floor (fp32), <= 1.35x (bf16); JSD <= 1.5x; extra memory <= 1/8 of
naive at N=2048; M=4 no more extra memory than M=1 beyond the teacher hidden states.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

H, V = 896, 151936
CONFIGS = [
    dict(n=n, dtype=dt, div=div, m=m)
    for n, dt, div, m in itertools.product(
        [512, 2048], ["float32", "bfloat16"], ["reverse_kl", "forward_kl", "jsd"], [1, 4]
    )
]
TARGET = {
    ("reverse_kl", "float32"): 1.15,
    ("forward_kl", "float32"): 1.15,
    ("reverse_kl", "bfloat16"): 1.35,
    ("forward_kl", "bfloat16"): 1.35,
    ("jsd", "float32"): 1.5,
    ("jsd", "bfloat16"): 1.5,
}


def _cid(c: dict) -> str:
    return f"N{c['n']}-{c['dtype']}-{c['div']}-M{c['m']}"


class PeakRSS:
    """Peak resident memory (bytes) above the level at entry, sampled by a background thread."""

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE")
        self.peak = 0

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss() - self.base)
            time.sleep(0.001)

    def __enter__(self) -> PeakRSS:
        self.base, self.peak = self._rss(), 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss() - self.base)


def _available_gb() -> float:
    """MemAvailable: a naive path that cannot fit is skipped rather than OOM-killed mid-run."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return float("inf")


def _methods(cfg: dict) -> tuple[dict[str, Callable[[], object]], dict[str, str]]:
    import torch

    from sdbench.core.kernels import fused_linear_divergence, materialized_linear_divergence

    torch.manual_seed(0)
    dt = getattr(torch, cfg["dtype"])
    n, m, div = cfg["n"], cfg["m"], cfg["div"]
    sh = torch.randn(n, H).to(dt)
    w = (torch.randn(V, H) * 0.05).to(dt)  # logits with std ~1.5, like a trained LM head
    th = (sh + 0.5 * torch.randn(m, n, H)).to(dt) if m > 1 else (sh + 0.5 * torch.randn(n, H)).to(dt)
    notes: dict[str, str] = {}

    z, zt = torch.empty(n, V, dtype=dt), torch.empty(n, V, dtype=dt)
    gh, gw = torch.empty(n, H, dtype=dt), torch.empty(V, H, dtype=dt)
    th3 = th if m > 1 else th.unsqueeze(0)

    def floor() -> None:
        torch.mm(sh, w.T, out=z)
        for j in range(m):
            torch.mm(th3[j], w.T, out=zt)
        torch.mm(z, w, out=gh)
        torch.mm(z.T, sh, out=gw)

    def step(fn: Callable[..., torch.Tensor], **kw: object) -> Callable[[], object]:
        def run() -> float:
            a, b = sh.detach().requires_grad_(True), w.detach().requires_grad_(True)
            loss = fn(a, b, th, **kw)
            loss.backward()
            return float(loss)

        return run

    methods: dict[str, Callable[[], object]] = {"floor": floor, "fused": step(fused_linear_divergence, divergence=div)}
    # [N, V] fp32 buffers the materialized path holds at its peak (measured at M = 1: reverse KL 11.3,
    # forward KL 10.3, JSD 15.5), plus ~3 per extra teacher context.
    naive_gb = ({"reverse_kl": 11.5, "forward_kl": 10.5, "jsd": 15.5}[div] + 3 * (m - 1)) * n * V * 4 / 2**30
    limit = min(float(os.environ.get("SDBENCH_BENCH_MAX_NAIVE_GB", "20")), 0.85 * _available_gb())
    if naive_gb <= limit:
        methods["naive"] = step(materialized_linear_divergence, divergence=div)
    else:
        notes["naive"] = f"skipped (~{naive_gb:.0f} GB > {limit:.0f} GB)"
    try:
        from liger_kernel.chunked_loss import LigerFusedLinearJSDLoss

        if m == 1:
            beta = {"jsd": 0.5, "forward_kl": 0.0, "reverse_kl": 1.0}[div]
            liger = LigerFusedLinearJSDLoss(weight_hard_loss=0.0, weight_soft_loss=1.0, beta=beta, compiled=True)
            labels = torch.zeros(n, dtype=torch.long)

            def liger_fn(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, **_: object) -> torch.Tensor:
                return liger(a, b, t, b.detach(), labels)

            methods["liger"] = step(liger_fn)
        else:
            notes["liger"] = "n/a (single teacher only)"
    except ImportError:
        notes["liger"] = "n/a (liger-kernel not installed)"
    return methods, notes


def _worker(cfg: dict) -> dict:
    methods, notes = _methods(cfg)
    rounds = int(os.environ.get("SDBENCH_BENCH_ROUNDS", "3" if cfg["n"] <= 512 else "2"))
    res: dict = {"config": cfg, "notes": notes, "mem_gb": {}, "first_s": {}, "times_s": {}, "loss": {}}
    for name, fn in methods.items():  # first call: memory (cold), compile time for liger
        t0 = time.perf_counter()
        with PeakRSS() as mem:
            out = fn()
        res["first_s"][name] = time.perf_counter() - t0
        res["mem_gb"][name] = mem.peak / 2**30
        if out is not None:
            res["loss"][name] = out
    for _ in range(rounds):  # interleaved, so load changes hit every method alike
        for name, fn in methods.items():
            t0 = time.perf_counter()
            fn()
            res["times_s"].setdefault(name, []).append(time.perf_counter() - t0)
    return res


def _summarize(res: dict) -> str:
    t = {k: min(v) for k, v in res["times_s"].items()}
    mem = res["mem_gb"]
    cfg = res["config"]
    parts = [
        f"{_cid(cfg):32s} floor {t['floor']:6.2f}s  fused {t['fused']:6.2f}s = {t['fused'] / t['floor']:.2f}x floor"
    ]
    target = TARGET[(cfg["div"], cfg["dtype"])]
    parts.append(f"(target {target}x: {'MET' if t['fused'] / t['floor'] <= target else 'MISSED'})")
    for other in ("naive", "liger"):
        if other in t:
            parts.append(f"{other} {t[other]:6.2f}s = fused/{other} {t['fused'] / t[other]:.2f}")
        else:
            parts.append(f"{other} {res['notes'].get(other, 'n/a')}")
    parts.append(f"| extra mem GB fused {mem['fused']:.2f}")
    for other in ("naive", "liger"):
        if other in mem:
            parts.append(f"{other} {mem[other]:.2f} (fused/{other} {mem['fused'] / max(mem[other], 1e-9):.3f})")
    if "liger" in res["first_s"]:
        parts.append(f"| liger first call (compile) {res['first_s']['liger']:.0f}s")
    rounds = res["times_s"]
    paired = sorted(f / fl for f, fl in zip(rounds["fused"], rounds["floor"], strict=True))
    parts.append(f"| per-round fused/floor {' '.join(f'{r:.2f}' for r in paired)}")  # adjacent: less drift
    losses = res["loss"]
    if "naive" in losses:
        parts.append(f"| loss rel diff vs naive {abs(losses['fused'] - losses['naive']) / abs(losses['naive']):.1e}")
    return " ".join(parts)


@pytest.mark.parametrize("cfg", CONFIGS, ids=_cid)
def test_fused_linear_divergence_perf(benchmark, cfg: dict, request: pytest.FixtureRequest) -> None:
    def run() -> dict:
        out = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(cfg)], capture_output=True, text=True, timeout=3600
        )
        assert out.returncode == 0, out.stderr[-4000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    res = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    line = _summarize(res)
    request.config.sdbench_bench_rows.append(line)  # type: ignore[attr-defined]
    print(line)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(_worker(json.loads(sys.argv[2]))))
    else:
        sys.exit(__doc__)
