"""Evaluation: pass@k, its curve and area, diversity, and bootstrap statistics.

    from sdbench.eval import pass_at_k
    pass_at_k(32, 5, 4)            # one problem
    pass_at_k([32, 32], [0, 7], 8)  # arrays broadcast
"""

from sdbench.eval.passk import area_under_curve, k_values, pass_at_k, pass_curve

__all__ = ["area_under_curve", "k_values", "pass_at_k", "pass_curve"]
