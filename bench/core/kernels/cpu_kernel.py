"""Fused CPU row kernel (C, OpenMP) for the element-wise part of the self-distillation loss.

Used by `sdbench.core.kernels._torch_chunk` for the "full" estimator with one teacher context on
CPU (fp32 / bf16 logits); everything else uses the eager torch body. The C source below is built
on first use with the system C compiler (`cc -O3 -march=native -ffast-math -fopenmp`, ~1 s) into
$SDBENCH_CACHE_DIR (default ~/.cache/sdbench/kernels), keyed by a hash of source and flags, and
loaded with ctypes (which releases the GIL during the call). No compiler, a failed build, or
SDBENCH_CPU_KERNEL=0 all fall back to the eager torch body, which computes the same thing.

Why: eager torch makes ~12 passes over the [C, V] fp32 work buffers per chunk; this kernel keeps
one token's student and teacher logit rows in cache across its four passes (row maxima,
log-sum-exps, divergence / entropy sums, gradient written over the student-logit row), so memory
traffic is about one read of the logits and one write of the gradient.
Checked by tests/test_fused_linear_divergence.py (fp32 cases run through it; one test compares
it with the eager body).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import torch

_SOURCE = r"""
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

static inline float bf2f(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t f2bf(float f) { /* round to nearest even (inputs are finite) */
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

#define DEFINE_ROWS(NAME, T, LOAD, STORE)                                                                  \
    void NAME(T *zs, const T *zt, float *loss, const float *lam, long rows, long V, float inv_tau, int div, \
              float beta, int want_grad) {                                                                 \
        const float lb = beta > 0.f ? logf(beta) : -1e30f, l1b = beta < 1.f ? log1pf(-beta) : -1e30f;        \
        _Pragma("omp parallel for schedule(static)") for (long r = 0; r < rows; ++r) {                     \
            T *s = zs + r * V;                                                                             \
            const T *t = zt + r * V;                                                                       \
            float ms = -INFINITY, mt = -INFINITY;                                                          \
            _Pragma("omp simd reduction(max : ms, mt)") for (long v = 0; v < V; ++v) {                     \
                float a = LOAD(s[v]), b = LOAD(t[v]);                                                      \
                ms = a > ms ? a : ms;                                                                      \
                mt = b > mt ? b : mt;                                                                      \
            }                                                                                              \
            float ss = 0.f, st = 0.f;                                                                      \
            _Pragma("omp simd reduction(+ : ss, st)") for (long v = 0; v < V; ++v) {                       \
                ss += expf((LOAD(s[v]) - ms) * inv_tau);                                                   \
                st += expf((LOAD(t[v]) - mt) * inv_tau);                                                   \
            }                                                                                              \
            const float cs = ms * inv_tau + logf(ss), ct = mt * inv_tau + logf(st);                        \
            float k1 = 0.f, k2 = 0.f, hs = 0.f;                                                            \
            _Pragma("omp simd reduction(+ : k1, k2, hs)") for (long v = 0; v < V; ++v) {                   \
                float ls = LOAD(s[v]) * inv_tau - cs, lt = LOAD(t[v]) * inv_tau - ct, p = expf(ls);        \
                hs += p * ls;                                                                              \
                if (div == 0) {                                                                            \
                    k1 += p * (ls - lt);                                                                   \
                } else if (div == 1) {                                                                     \
                    k1 += expf(lt) * (lt - ls);                                                            \
                } else {                                                                                   \
                    float x1 = lb + lt, x2 = l1b + ls, mx = x1 > x2 ? x1 : x2;                             \
                    float lm = mx + log1pf(expf(-fabsf(x1 - x2)));                                         \
                    k1 += expf(lt) * (lt - lm);                                                            \
                    k2 += p * (ls - lm);                                                                   \
                }                                                                                          \
            }                                                                                              \
            const float ent = -hs, lr = lam ? lam[r] : 0.f;                                                \
            loss[r] = (div == 2 ? beta * k1 + (1.f - beta) * k2 : k1) - lr * ent;                         \
            if (!want_grad) continue;                                                                      \
            _Pragma("omp simd") for (long v = 0; v < V; ++v) {                                             \
                float ls = LOAD(s[v]) * inv_tau - cs, lt = LOAD(t[v]) * inv_tau - ct, p = expf(ls);        \
                float g = lr * p * (ls + ent);                                                             \
                if (div == 0) {                                                                            \
                    g += p * (ls - lt - k1);                                                               \
                } else if (div == 1) {                                                                     \
                    g += p - expf(lt);                                                                     \
                } else {                                                                                   \
                    float x1 = lb + lt, x2 = l1b + ls, mx = x1 > x2 ? x1 : x2;                             \
                    float lm = mx + log1pf(expf(-fabsf(x1 - x2)));                                         \
                    g += (1.f - beta) * p * (ls - lm - k2);                                                \
                }                                                                                          \
                s[v] = STORE(g);                                                                           \
            }                                                                                              \
        }                                                                                                  \
    }

#define ID(x) (x)
DEFINE_ROWS(sd_rows_f32, float, ID, ID)
DEFINE_ROWS(sd_rows_bf16, uint16_t, bf2f, f2bf)

void sd_set_threads(int n) { omp_set_num_threads(n); }
"""
_FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp", "-shared", "-fPIC"]
_DIV = {"reverse_kl": 0, "forward_kl": 1, "jsd": 2}
_LIB: ctypes.CDLL | None = None
_TRIED = False


def _build() -> ctypes.CDLL | None:
    key = hashlib.sha256((_SOURCE + " ".join(_FLAGS)).encode()).hexdigest()[:16]
    root = Path(os.environ.get("SDBENCH_CACHE_DIR", Path.home() / ".cache" / "sdbench")) / "kernels"
    so = root / f"sd_rows_{key}.so"
    if not so.exists():
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root) as tmp:  # build aside, then rename: safe for concurrent builds
            c_file, out = Path(tmp) / "sd_rows.c", Path(tmp) / "sd_rows.so"
            c_file.write_text(_SOURCE)
            cc = os.environ.get("CC", "cc")
            subprocess.run(
                [cc, *_FLAGS, str(c_file), "-o", str(out), "-lm"], check=True, capture_output=True, timeout=120
            )
            os.replace(out, so)
    lib = ctypes.CDLL(str(so))
    args = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_long,
        ctypes.c_long,
        ctypes.c_float,
        ctypes.c_int,
        ctypes.c_float,
        ctypes.c_int,
    ]
    for name in ("sd_rows_f32", "sd_rows_bf16"):
        getattr(lib, name).argtypes = args
        getattr(lib, name).restype = None
    lib.sd_set_threads.argtypes = [ctypes.c_int]
    return lib


def cpu_kernel() -> ctypes.CDLL | None:
    """The loaded kernel library, or None when disabled or unbuildable (then eager torch is used)."""
    global _LIB, _TRIED
    if not _TRIED:
        _TRIED = True
        if os.environ.get("SDBENCH_CPU_KERNEL", "1") != "0":
            try:
                _LIB = _build()
            except (OSError, subprocess.SubprocessError):
                _LIB = None
    return _LIB


def rows_loss_and_grad(
    lib: ctypes.CDLL,
    zs: torch.Tensor,
    zt: torch.Tensor,
    lam: torch.Tensor | None,
    divergence: str,
    beta: float,
    inv_tau: float,
    want_grad: bool,
) -> torch.Tensor:
    """Per-row loss [c] (fp32); when want_grad, zs is overwritten with d loss / d (zs * inv_tau)."""
    assert zs.is_contiguous() and zt.is_contiguous() and zs.dtype == zt.dtype and zs.shape == zt.shape
    c, vocab = zs.shape
    loss = torch.empty(c, dtype=torch.float32)
    lam_c = lam.to(torch.float32).contiguous() if lam is not None else None
    fn = lib.sd_rows_f32 if zs.dtype == torch.float32 else lib.sd_rows_bf16
    lib.sd_set_threads(torch.get_num_threads())
    fn(
        zs.data_ptr(),
        zt.data_ptr(),
        loss.data_ptr(),
        lam_c.data_ptr() if lam_c is not None else None,
        c,
        vocab,
        inv_tau,
        _DIV[divergence],
        beta,
        int(want_grad),
    )
    return loss
