"""The textbook divergences: values against explicit sums in float64, gradients against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from sdbench.core.divergence import combine_teachers, entropy, token_divergence


def _logits(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2


def _explicit(ps: torch.Tensor, pt: torch.Tensor, divergence: str, beta: float) -> torch.Tensor:
    def kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return (p * (p / q).log()).sum(-1)
    if divergence == "reverse_kl":
        return kl(ps, pt)
    if divergence == "forward_kl":
        return kl(pt, ps)
    m = beta * pt + (1 - beta) * ps
    return beta * kl(pt, m) + (1 - beta) * kl(ps, m)


@pytest.mark.parametrize("divergence", ["reverse_kl", "forward_kl", "jsd"])
@pytest.mark.parametrize("beta", [0.5, 0.1, 0.9])
def test_values_match_explicit_sums(divergence: str, beta: float) -> None:
    zs, zt = _logits(7, 13, seed=1), _logits(7, 13, seed=2)
    got = token_divergence(zs.log_softmax(-1), zt.log_softmax(-1), divergence, beta)
    want = _explicit(zs.softmax(-1), zt.softmax(-1), divergence, beta)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert (got > 0).all()


def test_gradients_match_closed_forms() -> None:
    zs, zt = _logits(5, 11, seed=3).requires_grad_(), _logits(5, 11, seed=4)
    ps, pt = zs.detach().softmax(-1), zt.softmax(-1)
    ls, lt = ps.log(), pt.log()
    # reverse KL: d/dz_s KL(p_s||p_t) = p_s * (log p_s - log p_t - KL)
    token_divergence(zs.log_softmax(-1), zt.log_softmax(-1), "reverse_kl").sum().backward()
    kl = (ps * (ls - lt)).sum(-1, keepdim=True)
    torch.testing.assert_close(zs.grad, ps * (ls - lt - kl), rtol=1e-10, atol=1e-12)
    # forward KL: d/dz_s KL(p_t||p_s) = p_s - p_t
    zs.grad = None
    token_divergence(zs.log_softmax(-1), zt.log_softmax(-1), "forward_kl").sum().backward()
    torch.testing.assert_close(zs.grad, ps - pt, rtol=1e-10, atol=1e-12)
    # JSD(beta): d/dz_s = (1-beta) * p_s * (log p_s - log m - E_ps[log p_s - log m])
    beta = 0.3
    zs.grad = None
    token_divergence(zs.log_softmax(-1), zt.log_softmax(-1), "jsd", beta).sum().backward()
    lm = (beta * pt + (1 - beta) * ps).log()
    inner = ls - lm
    want = (1 - beta) * ps * (inner - (ps * inner).sum(-1, keepdim=True))
    torch.testing.assert_close(zs.grad, want, rtol=1e-9, atol=1e-12)


def test_teacher_gets_no_gradient_and_identical_distributions_give_zero() -> None:
    z = _logits(4, 9, seed=5)
    zt = z.clone().requires_grad_()
    for divergence in ("reverse_kl", "forward_kl", "jsd"):
        out = token_divergence(z.log_softmax(-1), zt.log_softmax(-1), divergence)
        torch.testing.assert_close(out, torch.zeros(4, dtype=torch.float64), atol=1e-12, rtol=0)
        assert not out.requires_grad


def test_entropy() -> None:
    uniform = torch.full((3, 8), -math.log(8.0), dtype=torch.float64)
    torch.testing.assert_close(entropy(uniform), torch.full((3,), math.log(8.0), dtype=torch.float64))


def test_combine_mixture_and_logmean() -> None:
    a, b = _logits(6, 10, seed=6).log_softmax(-1), _logits(6, 10, seed=7).log_softmax(-1)
    w = torch.tensor([[0.25] * 6, [0.75] * 6], dtype=torch.float64)
    mix = combine_teachers(torch.stack([a, b]), w, "mixture")
    torch.testing.assert_close(mix.exp(), 0.25 * a.exp() + 0.75 * b.exp())
    geo = combine_teachers(torch.stack([a, b]), w, "logmean")
    want = (0.25 * a + 0.75 * b).log_softmax(-1)
    torch.testing.assert_close(geo, want)
    # identical teachers: both combinations give that teacher
    same = torch.stack([a, a, a])
    w3 = torch.tensor([[1.0] * 6, [2.0] * 6, [0.5] * 6], dtype=torch.float64)
    torch.testing.assert_close(combine_teachers(same, w3, "mixture"), a)
    torch.testing.assert_close(combine_teachers(same, w3, "logmean"), a)
    # a zero weight removes a context entirely
    padded = combine_teachers(torch.stack([a, b]), torch.tensor([[1.0] * 6, [0.0] * 6], dtype=torch.float64),
                              "mixture")
    torch.testing.assert_close(padded, a)
