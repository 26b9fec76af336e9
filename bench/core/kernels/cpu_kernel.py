"""Fused CPU row kernel (C, OpenMP) for the element-wise part of the self-distillation loss.

Used by `sdbench.core.kernels._torch_chunk` for the "full" estimator on CPU (fp32 / bf16 logits,
1 to 16 teacher contexts, mixture or log-mean, ungated); everything else uses the eager torch
body. The C source below is built on first use with the system C compiler (`cc -O3 -march=native
-ffast-math -fopenmp`, ~1 s; fast-math lets GCC call glibc's vector expf) into $SDBENCH_CACHE_DIR (default
~/.cache/sdbench/kernels), keyed by a hash of source and flags, and loaded with ctypes (which
releases the GIL during the call). No compiler, a failed build, or SDBENCH_CPU_KERNEL=0 fall back
to the eager torch body, which computes the same thing.

Why: eager torch makes ~12 passes over the [C, V] fp32 work buffers per chunk; this kernel keeps
one token's student and teacher logit rows in cache across its three passes (log-sum-exps, blocked
so max and sum share one pass; divergence and entropy sums; gradient written over the student
row), so memory traffic is about one read of the logits and one write of the gradient. With M
teacher contexts: bf16 chunks hold all M contexts' logits and each row's combined teacher is
formed in a cache-resident fp32 scratch row; fp32 chunks fold the contexts one at a time into a
combined fp32 buffer (`sd_fold_f32`: 2 buffers per token as for M = 1 instead of 1 + M, so chunks
stay large enough for efficient fp32 matmuls under the same memory budget). Both replace the eager body's M
log-softmaxes and logaddexps over [C, V] buffers.
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

from sdbench.core.divergence import DIVERGENCE_CODES

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

/* log sum_v exp(x[v] * inv_tau), one pass from memory: blocks of SD_BLOCK elements are read twice
   from L1 (block max, then the sum of exps against the running max, rescaled when it grows). */
#define SD_BLOCK 512
#define DEFINE_LSE(NAME, T, LOAD)                                                                          \
    static inline float NAME(const T *x, long V, float inv_tau) {                                          \
        float m = -1e30f, sum = 0.f;                                                                       \
        for (long v0 = 0; v0 < V; v0 += SD_BLOCK) {                                                        \
            const long v1 = v0 + SD_BLOCK < V ? v0 + SD_BLOCK : V;                                         \
            float bm = -1e30f, bs = 0.f;                                                                   \
            _Pragma("omp simd reduction(max : bm)") for (long v = v0; v < v1; ++v) {                       \
                float a = LOAD(x[v]);                                                                      \
                bm = a > bm ? a : bm;                                                                      \
            }                                                                                              \
            if (bm > m) {                                                                                  \
                sum = sum > 0.f ? sum * expf((m - bm) * inv_tau) : 0.f;                                    \
                m = bm;                                                                                    \
            }                                                                                              \
            _Pragma("omp simd reduction(+ : bs)") for (long v = v0; v < v1; ++v) bs +=                     \
                expf((LOAD(x[v]) - m) * inv_tau);                                                          \
            sum += bs;                                                                                     \
        }                                                                                                  \
        return m * inv_tau + logf(sum);                                                                    \
    }

#define ID(x) (x)
DEFINE_LSE(lse_f32, float, ID)
DEFINE_LSE(lse_bf16, uint16_t, bf2f)

/* One token row. Student logits s (type T) are overwritten with d loss / d (s * inv_tau) when
   want_grad; teacher t (type TT) is read only and scaled by inv_tau_t (1 for the combined teacher
   log-probs of several contexts, which are already scaled). Three passes over the row:
   log-sum-exps, divergence and entropy sums, gradient. */
#define DEFINE_ROW(NAME, T, LOAD, STORE, LSE, TT, TLOAD, TLSE)                                              \
    static inline float NAME(T *s, const TT *t, long V, float inv_tau, float inv_tau_t, int div, float beta,  \
                             float lb, float l1b, float lr, int want_grad) {                                \
        const float cs = LSE(s, V, inv_tau), ct = TLSE(t, V, inv_tau_t);                                   \
        float k1 = 0.f, k2 = 0.f, hs = 0.f;                                                                \
        /* One loop per divergence (not a branch inside one loop): GCC's masked vector expf on a branch \
           gave wrong values for bf16 rows under fast-math. */                                             \
        if (div == 0) {                                                                                    \
            _Pragma("omp simd reduction(+ : k1, hs)") for (long v = 0; v < V; ++v) {                       \
                float ls = LOAD(s[v]) * inv_tau - cs, lt = TLOAD(t[v]) * inv_tau_t - ct, p = expf(ls);     \
                hs += p * ls;                                                                              \
                k1 += p * (ls - lt);                                                                       \
            }                                                                                              \
        } else if (div == 1) {                                                                             \
            _Pragma("omp simd reduction(+ : k1, hs)") for (long v = 0; v < V; ++v) {                       \
                float ls = LOAD(s[v]) * inv_tau - cs, lt = TLOAD(t[v]) * inv_tau_t - ct, p = expf(ls);     \
                hs += p * ls;                                                                              \
                k1 += expf(lt) * (lt - ls);                                                                \
            }                                                                                              \
        } else {                                                                                           \
            _Pragma("omp simd reduction(+ : k1, k2, hs)") for (long v = 0; v < V; ++v) {                   \
                float ls = LOAD(s[v]) * inv_tau - cs, lt = TLOAD(t[v]) * inv_tau_t - ct, p = expf(ls);     \
                float x1 = lb + lt, x2 = l1b + ls, mx = x1 > x2 ? x1 : x2;                                 \
                float lm = mx + log1pf(expf(-fabsf(x1 - x2)));                                             \
                hs += p * ls;                                                                              \
                k1 += expf(lt) * (lt - lm);                                                                \
                k2 += p * (ls - lm);                                                                       \
            }                                                                                              \
        }                                                                                                  \
        const float ent = -hs;                                                                             \
        const float loss = (div == 2 ? beta * k1 + (1.f - beta) * k2 : k1) - lr * ent;                     \
        if (!want_grad) return loss;                                                                       \
        if (div == 0) {                                                                                    \
            _Pragma("omp simd") for (long v = 0; v < V; ++v) {                                             \
                float ls = LOAD(s[v]) * inv_tau - cs, lt = TLOAD(t[v]) * inv_tau_t - ct, p = expf(ls);     \
                s[v] = STORE(p * (lr * (ls + ent) + ls - lt - k1));                                        \
            }                                                                                              \
        } else if (div == 1) {                                                                             \
            _Pragma("omp simd") for (long v = 0; v < V; ++v) {                                             \
                float ls = LOAD(s[v]) * inv_tau - cs, lt = TLOAD(t[v]) * inv_tau_t - ct, p = expf(ls);     \
                s[v] = STORE(lr * p * (ls + ent) + p - expf(lt));                                          \
            }                                                                                              \
        } else {                                                                                           \
            _Pragma("omp simd") for (long v = 0; v < V; ++v) {                                             \
                float ls = LOAD(s[v]) * inv_tau - cs, lt = TLOAD(t[v]) * inv_tau_t - ct, p = expf(ls);     \
                float x1 = lb + lt, x2 = l1b + ls, mx = x1 > x2 ? x1 : x2;                                 \
                float lm = mx + log1pf(expf(-fabsf(x1 - x2)));                                             \
                s[v] = STORE(p * (lr * (ls + ent) + (1.f - beta) * (ls - lm - k2)));                       \
            }                                                                                              \
        }                                                                                                  \
        return loss;                                                                                       \
    }

/* One teacher row per token: zt [rows, V] in the student's dtype, scaled by inv_tau_t (inv_tau for
   teacher logits; 1 for combined teacher log-probs folded by sd_fold_f32). */
#define DEFINE_ROWS(NAME, T, ROW)                                                                          \
    void NAME(T *zs, const T *zt, float *loss, const float *coef, long rows, long V, float inv_tau,         \
              float inv_tau_t, int div, float beta, int want_grad) {                                       \
        const float lb = beta > 0.f ? logf(beta) : -1e30f, l1b = beta < 1.f ? log1pf(-beta) : -1e30f;        \
        _Pragma("omp parallel for schedule(static)") for (long r = 0; r < rows; ++r) {                     \
            loss[r] = ROW(zs + r * V, zt + r * V, V, inv_tau, inv_tau_t, div, beta, lb, l1b,               \
                          coef ? coef[r] : 0.f, want_grad);                                                  \
        }                                                                                                  \
    }

/* Fold one teacher context z_j [rows, V] (weights wj [rows]; 0 = absent) into the combined teacher
   log-probs lt [rows, V] (fp32), one context at a time, so only one context's logits are held:
     mixture  lt = logaddexp(lt, log w_j + log p_j)   (exact, no underflow)
     logmean  lt += w_j * z_j / tau                    (the row body renormalizes)
   first = 1 initializes lt (an absent first context leaves the empty value: -1e30 or 0). */
void sd_fold_f32(const float *zt, const float *wj, float *lt, long rows, long V, float inv_tau, int logmean,
                 int first) {
    _Pragma("omp parallel for schedule(static)") for (long r = 0; r < rows; ++r) {
        const float *t = zt + r * V, w = wj[r];
        float *o = lt + r * V;
        if (w == 0.f) {
            if (first)
                for (long v = 0; v < V; ++v) o[v] = logmean ? 0.f : -1e30f;
            continue;
        }
        if (logmean) {
            const float a = w * inv_tau;
            if (first) {
                _Pragma("omp simd") for (long v = 0; v < V; ++v) o[v] = a * t[v];
            } else {
                _Pragma("omp simd") for (long v = 0; v < V; ++v) o[v] += a * t[v];
            }
            continue;
        }
        const float c = logf(w) - lse_f32(t, V, inv_tau);
        if (first) {
            _Pragma("omp simd") for (long v = 0; v < V; ++v) o[v] = t[v] * inv_tau + c;
        } else {
            _Pragma("omp simd") for (long v = 0; v < V; ++v) {
                float x = t[v] * inv_tau + c, a = o[v], mx = a > x ? a : x;
                o[v] = mx + log1pf(expf(-fabsf(a - x)));
            }
        }
    }
}

/* M teacher contexts: zt [m, rows, V], weights wj [m, rows] (normalized over m per token; 0 = absent).
   Per row, the combined teacher log-probs are formed in a per-thread fp32 scratch row (V floats,
   cache resident) with one vectorized pass per context, and the one-teacher row body runs on it:
     mixture  lt(v) = log sum_j w_j p_j(v): accumulated in probability space; the few elements where
              that underflows (sum < 1e-30) are recomputed exactly with a per-element max shift
     logmean  lt(v) = sum_j w_j z_j(v) / tau (the row body renormalizes). */
#define SD_MAX_CONTEXTS 16
#define DEFINE_MULTI(NAME, T, LOAD, LSE, ROW)                                                                   \
    void NAME(T *zs, const T *zt, long m, const float *wj, int logmean, float *scratch, float *loss,         \
              const float *coef, long rows, long V, float inv_tau, int div, float beta, int want_grad) {      \
        const float lb = beta > 0.f ? logf(beta) : -1e30f, l1b = beta < 1.f ? log1pf(-beta) : -1e30f;        \
        _Pragma("omp parallel") {                                                                          \
            float *lt = scratch + (long)omp_get_thread_num() * V;                                          \
            _Pragma("omp for schedule(static)") for (long r = 0; r < rows; ++r) {                          \
                const T *tp[SD_MAX_CONTEXTS];                                                              \
                float off[SD_MAX_CONTEXTS];                                                                \
                int k = 0;                                                                                 \
                memset(lt, 0, V * sizeof(float));                                                          \
                for (long j = 0; j < m; ++j) {                                                             \
                    const float w = wj[j * rows + r];                                                      \
                    if (w == 0.f) continue; /* context absent for this token */                           \
                    const T *t = zt + (j * rows + r) * V;                                                  \
                    if (logmean) {                                                                         \
                        const float a = w * inv_tau;                                                       \
                        _Pragma("omp simd") for (long v = 0; v < V; ++v) lt[v] += a * LOAD(t[v]);          \
                        continue;                                                                          \
                    }                                                                                      \
                    const float c = logf(w) - LSE(t, V, inv_tau); /* log w_j - logsumexp_j */              \
                    _Pragma("omp simd") for (long v = 0; v < V; ++v) lt[v] += expf(LOAD(t[v]) * inv_tau + c); \
                    tp[k] = t, off[k] = c, ++k;                                                            \
                }                                                                                          \
                if (!logmean) {                                                                            \
                    long small = 0;                                                                        \
                    _Pragma("omp simd reduction(+ : small)") for (long v = 0; v < V; ++v) {                \
                        small += lt[v] < 1e-30f;                                                           \
                        lt[v] = logf(lt[v] > 1e-38f ? lt[v] : 1e-38f);                                     \
                    }                                                                                      \
                    for (long v = 0; small && v < V; ++v) {                                                \
                        if (lt[v] >= logf(1e-30f)) continue;                                               \
                        float mx = -1e30f, sm = 0.f;                                                       \
                        for (int j = 0; j < k; ++j) {                                                      \
                            float x = LOAD(tp[j][v]) * inv_tau + off[j];                                   \
                            mx = x > mx ? x : mx;                                                          \
                        }                                                                                  \
                        for (int j = 0; j < k; ++j) sm += expf(LOAD(tp[j][v]) * inv_tau + off[j] - mx);    \
                        lt[v] = mx + logf(sm);                                                             \
                    }                                                                                      \
                }                                                                                          \
                loss[r] = ROW(zs + r * V, lt, V, inv_tau, 1.f, div, beta, lb, l1b, coef ? coef[r] : 0.f,      \
                              want_grad);                                                                  \
            }                                                                                              \
        }                                                                                                  \
    }

DEFINE_ROW(row_f32, float, ID, ID, lse_f32, float, ID, lse_f32)
DEFINE_ROW(row_bf16, uint16_t, bf2f, f2bf, lse_bf16, uint16_t, bf2f, lse_bf16)
DEFINE_ROW(row_bf16_combined, uint16_t, bf2f, f2bf, lse_bf16, float, ID, lse_f32)
DEFINE_ROWS(sd_rows_f32, float, row_f32)
DEFINE_ROWS(sd_rows_bf16, uint16_t, row_bf16)
DEFINE_MULTI(sd_rows_multi_f32, float, ID, lse_f32, row_f32)
DEFINE_MULTI(sd_rows_multi_bf16, uint16_t, bf2f, lse_bf16, row_bf16_combined)

void sd_set_threads(int n) { omp_set_num_threads(n); }
"""
_FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp", "-shared", "-fPIC"]
MAX_CONTEXTS = 16  # SD_MAX_CONTEXTS in the C source; more contexts take the eager torch body
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
        ctypes.c_float,
        ctypes.c_int,
        ctypes.c_float,
        ctypes.c_int,
    ]
    for name in ("sd_rows_f32", "sd_rows_bf16"):
        getattr(lib, name).argtypes = args
        getattr(lib, name).restype = None
    ptr = ctypes.c_void_p
    multi = [ptr, ptr, ctypes.c_long, ptr, ctypes.c_int, ptr, *args[2:7], *args[8:]]
    lib.sd_fold_f32.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctypes.c_long,
                                ctypes.c_float, ctypes.c_int, ctypes.c_int]
    lib.sd_fold_f32.restype = None
    for name in ("sd_rows_multi_f32", "sd_rows_multi_bf16"):
        getattr(lib, name).argtypes = multi
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
    coef: torch.Tensor | None,
    divergence: str,
    beta: float,
    inv_tau: float,
    want_grad: bool,
    context_weights: torch.Tensor | None = None,
    combine: str = "mixture",
    teacher_is_combined: bool = False,
) -> torch.Tensor:
    """Per-row loss [c] (fp32); when want_grad, zs is overwritten with d loss / d (zs * inv_tau).

    zt is [c, V] teacher logits (one context), or combined teacher log-probs from `fold_context`
    (teacher_is_combined: already divided by the temperature), or [M, c, V] with context_weights
    [M, c] (columns sum to 1; 0 = context absent), combined by `combine` inside the kernel."""
    c, vocab = zs.shape
    assert zs.is_contiguous() and zt.is_contiguous() and zs.dtype == zt.dtype and zt.shape[-2:] == zs.shape
    loss = torch.empty(c, dtype=torch.float32)
    lam_c = coef.to(torch.float32).contiguous() if coef is not None else None
    threads = torch.get_num_threads()
    lib.sd_set_threads(threads)
    tail = (loss.data_ptr(), lam_c.data_ptr() if lam_c is not None else None, c, vocab, inv_tau)
    tail2 = (DIVERGENCE_CODES[divergence], beta, int(want_grad))
    if zt.dim() == 2:
        fn = lib.sd_rows_f32 if zs.dtype == torch.float32 else lib.sd_rows_bf16
        fn(zs.data_ptr(), zt.data_ptr(), *tail, 1.0 if teacher_is_combined else inv_tau, *tail2)
        return loss
    assert context_weights is not None and context_weights.shape == (zt.shape[0], c)
    assert zt.shape[0] <= MAX_CONTEXTS
    wj = context_weights.to(torch.float32).contiguous()
    scratch = _scratch(threads, vocab)
    fn = lib.sd_rows_multi_f32 if zs.dtype == torch.float32 else lib.sd_rows_multi_bf16
    fn(zs.data_ptr(), zt.data_ptr(), zt.shape[0], wj.data_ptr(), int(combine == "logmean"), scratch.data_ptr(),
       *tail, *tail2)
    return loss


def fold_context(lib: ctypes.CDLL, zt: torch.Tensor, weights: torch.Tensor, combined: torch.Tensor,
                 inv_tau: float, combine: str, first: bool) -> None:
    """Fold one context's fp32 teacher logits zt [c, V] (weights [c]) into combined [c, V] in place."""
    assert zt.dtype == combined.dtype == torch.float32 and zt.is_contiguous() and combined.is_contiguous()
    wj = weights.to(torch.float32).contiguous()
    lib.sd_set_threads(torch.get_num_threads())
    lib.sd_fold_f32(zt.data_ptr(), wj.data_ptr(), combined.data_ptr(), zt.shape[0], zt.shape[1], inv_tau,
                    int(combine == "logmean"), int(first))


_SCRATCH: torch.Tensor | None = None


def _scratch(threads: int, vocab: int) -> torch.Tensor:
    """One fp32 row per thread for the combined teacher log-probs (kept: ~0.6 MB per thread at V=152k)."""
    global _SCRATCH
    if _SCRATCH is None or _SCRATCH.numel() < threads * vocab:
        _SCRATCH = torch.empty(threads * vocab, dtype=torch.float32)
    return _SCRATCH
