"""Evaluation: pass@k, its curve and area, diversity, bootstrap statistics, and the evaluation protocol.

    from sdbench.eval import pass_at_k
    pass_at_k(32, 5, 4)            # one problem
    pass_at_k([32, 32], [0, 7], 8)  # arrays broadcast

    protocol.py   the protocol's settings (EvalConfig), one split at one set of weights, the best checkpoint
    along.py      evaluation along training (val every K steps) and test / ood at the final and best checkpoints
    lane.py       the evaluation lane: a helper process that evaluates on an idle core while the cell trains
    evaluate.py   sampling -> grading -> per-problem counts; metrics.py, passk.py, intervals.py the statistics

The pass@k names load on first use (PEP 562), so `sdbench.config` can import the protocol's settings without numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["area_under_curve", "k_values", "pass_at_k", "pass_curve"]

if TYPE_CHECKING:
    from sdbench.eval.passk import area_under_curve, k_values, pass_at_k, pass_curve


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sdbench.eval import passk

        return getattr(passk, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
