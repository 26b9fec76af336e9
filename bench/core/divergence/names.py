"""The divergence names: plain data, no torch (`sdbench.config` validates against them).

Re-exported by `sdbench.core.divergence`, which documents the formulas; `.formulas` imports these too,
so neither module imports the other backwards. `Combine` has one home, the plugin API
(`sdbench.strategy`), because a strategy's plan names how its teachers combine.
"""

from __future__ import annotations

from typing import Literal, get_args

from sdbench.strategy import Combine

Divergence = Literal["reverse_kl", "forward_kl", "jsd"]
Estimator = Literal["full", "topk", "sampled_token"]

DIVERGENCES: tuple[str, ...] = get_args(Divergence)
COMBINES: tuple[str, ...] = get_args(Combine)
ESTIMATORS: tuple[str, ...] = get_args(Estimator)
# The integer a compiled kernel (C++ on CPU, Triton on CUDA) receives for each divergence.
DIVERGENCE_CODES: dict[str, int] = {name: i for i, name in enumerate(DIVERGENCES)}
