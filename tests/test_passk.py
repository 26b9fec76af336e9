"""pass@k against exact combinatorics, its curve, and its area over log2 k."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sdbench.eval import area_under_curve, k_values, pass_at_k, pass_curve


def exact(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@pytest.mark.parametrize("n", [1, 2, 5, 16, 33, 64, 200])
def test_matches_exact_combinatorics(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(exact(n, c, k), rel=1e-12, abs=1e-12)


def test_arrays_broadcast_and_scalars_stay_scalar() -> None:
    out = pass_at_k([32, 32, 32], [0, 3, 32], 4)
    assert isinstance(out, np.ndarray) and out.shape == (3,)
    assert out[0] == 0.0 and out[2] == 1.0 and out[1] == pytest.approx(exact(32, 3, 4))
    assert isinstance(pass_at_k(10, 2, 1), float)
    assert pass_at_k(10, 2, 1) == pytest.approx(0.2)


def test_large_n_is_numerically_stable() -> None:
    # C(5000, 2500) overflows floats; the product form must not.
    assert pass_at_k(5000, 1, 2500) == pytest.approx(0.5)
    assert pass_at_k(5000, 1, 1) == pytest.approx(1 / 5000, rel=1e-12)   # 1 - C(4999,1)/C(5000,1)


def test_rejects_impossible_inputs() -> None:
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 8)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 0)


def test_k_values_and_area() -> None:
    assert k_values(32) == [1, 2, 4, 8, 16, 32]
    assert k_values(48) == [1, 2, 4, 8, 16, 32]
    ks = k_values(8)
    flat = pass_curve(np.array([8]), np.array([8]), ks)
    assert area_under_curve(flat, ks)[0] == pytest.approx(1.0)
    # A curve rising linearly in log2 k from 0 to 1 has area 1/2.
    curve = np.array([0.0, 1 / 3, 2 / 3, 1.0])
    assert area_under_curve(curve, ks) == pytest.approx(0.5)
    n, c = np.array([8, 8]), np.array([1, 4])
    mono = pass_curve(n, c, ks)
    assert np.all(np.diff(mono, axis=0) >= 0)
