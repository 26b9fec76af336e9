"""Loss kernels for self-distillation: the fused linear + divergence op, its materialized-logits oracle and Triton part.

    from sdbench.core.kernels import fused_linear_divergence, FusedLinearDivergence
    from sdbench.core.kernels import materialized_linear_divergence   # materialized-logits ground truth

Importing this package loads neither torch.compile machinery nor triton: the Triton module is
imported lazily (PEP 562) only when a CUDA tensor (or SDBENCH_KERNEL_BACKEND=triton) asks for it.
The fused op is imported eagerly on purpose: its module shares the function's name, and a lazy
import would let the import system rebind the package attribute to the submodule.
Tests: tests/test_fused_linear_divergence.py, tests/test_triton_divergence.py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sdbench.core.kernels.fused_linear_divergence import FusedLinearDivergence, fused_linear_divergence
from sdbench.core.kernels.materialized import materialized_linear_divergence

__all__ = [
    "FusedLinearDivergence",
    "clear_workspace_cache",
    "fused_linear_divergence",
    "materialized_linear_divergence",
    "triton_available",
]

_WHERE = {
    "triton_available": "sdbench.core.kernels.triton_divergence",
    "clear_workspace_cache": "sdbench.core.kernels._torch_chunk",
}

if TYPE_CHECKING:
    from sdbench.core.kernels._torch_chunk import clear_workspace_cache
    from sdbench.core.kernels.triton_divergence import triton_available


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
