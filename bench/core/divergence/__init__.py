"""Token-level divergences between student and teacher next-token distributions, from log-probs.

With p_s the student's and p_t the teacher's distribution over the vocabulary at one position:
    forward_kl  KL(p_t || p_s) = sum_v p_t (log p_t - log p_s)          (mode covering)
    reverse_kl  KL(p_s || p_t) = sum_v p_s (log p_s - log p_t)          (mode seeking)
    jsd(beta)   beta KL(p_t || m) + (1 - beta) KL(p_s || m),  m = beta p_t + (1 - beta) p_s
(jsd at beta = 0 or 1 is identically zero; beta = 0.5 is the symmetric Jensen-Shannon divergence.)

Several teacher contexts combine into one teacher distribution before the divergence:
    mixture   p_t = sum_j w_j p_j                       (probabilities)
    logmean   p_t ∝ exp(sum_j w_j log p_j)              (weighted geometric mean, renormalized)

These are the textbook formulas in plain torch; gradients come from autograd. They are the
definition the fused kernels in sdbench.core.kernels are tested against.

This package is the one home of the divergence names and formulas: the run configuration, the loss
and the kernels (reference, fused torch, Triton) all import them from here. The names are plain
data in `.names` (importing them loads no torch: `sdbench.config` needs them); the formulas live in `.formulas`
and load with torch on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sdbench.core.divergence.names import (
    COMBINES,
    DIVERGENCE_CODES,
    DIVERGENCES,
    ESTIMATORS,
    Combine,
    Divergence,
    Estimator,
)

_FORMULAS = ("token_divergence", "entropy", "combine_teachers")

if TYPE_CHECKING:
    from sdbench.core.divergence.formulas import combine_teachers, entropy, token_divergence


def __getattr__(name: str) -> Any:
    if name in _FORMULAS:
        from sdbench.core.divergence import formulas

        return getattr(formulas, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["COMBINES", "DIVERGENCES", "DIVERGENCE_CODES", "ESTIMATORS", "Combine", "Divergence", "Estimator",
           "combine_teachers", "entropy", "token_divergence"]
