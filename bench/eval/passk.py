"""pass@k: the unbiased estimator of Chen et al. (2021), in its numerically stable product form.

    pass@k = 1 - C(n-c, k) / C(n, k) = 1 - prod_{i=n-c+1}^{n} (1 - k / i)

for n samples of which c are correct. `pass_at_k` accepts scalars or arrays (broadcast).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike


def pass_at_k(n: ArrayLike, c: ArrayLike, k: int) -> np.ndarray | float:
    """Unbiased pass@k for n samples with c correct; scalars give a float, arrays an array."""
    n_arr, c_arr = np.broadcast_arrays(np.asarray(n, dtype=np.int64), np.asarray(c, dtype=np.int64))
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if np.any(n_arr < k):
        raise ValueError(f"pass@{k} needs at least k={k} samples per problem")
    if np.any((c_arr < 0) | (c_arr > n_arr)):
        raise ValueError("correct counts must lie in [0, n]")
    out = np.empty(n_arr.shape, dtype=np.float64)
    for idx in np.ndindex(n_arr.shape):
        nn, cc = int(n_arr[idx]), int(c_arr[idx])
        if nn - cc < k:
            out[idx] = 1.0
        else:
            out[idx] = 1.0 - float(np.prod(1.0 - k / np.arange(nn - cc + 1, nn + 1)))
    return float(out) if out.ndim == 0 else out


def k_values(n: int) -> list[int]:
    """k = 1, 2, 4, ... up to n (n itself included when it is a power of two)."""
    return [2**i for i in range(int(math.log2(n)) + 1)] if n >= 1 else []


def pass_curve(n: ArrayLike, c: ArrayLike, ks: list[int]) -> np.ndarray:
    """pass@k for every k in ks: shape [len(ks), *broadcast(n, c).shape]."""
    return np.stack([np.asarray(pass_at_k(n, c, k), dtype=np.float64) for k in ks])


def area_under_curve(curve: np.ndarray, ks: list[int]) -> np.ndarray:
    """Normalized area under pass@k over log2 k (trapezoids), in [0, 1]; axis 0 runs over ks."""
    if len(ks) == 1:
        return curve[0]
    x = np.log2(np.asarray(ks, dtype=np.float64))
    widths = np.diff(x)[:, None] if curve.ndim > 1 else np.diff(x)
    heights = (curve[1:] + curve[:-1]) / 2
    if curve.ndim > 1:
        widths = widths.reshape((-1,) + (1,) * (curve.ndim - 1))
    return (heights * widths).sum(axis=0) / (x[-1] - x[0])
