"""Deprecated internal alias: the demo helpers live in `sdbench.strategy` (their one home).

    from sdbench.strategy import class_of, draw_demos, other_correct

Kept only because `sdbench.gate` still imports `class_of` and `draw_demos` from here; remove it
once that import points at `sdbench.strategy`. Nothing registers here.
"""

from sdbench.strategy import class_of, draw_demos, other_correct

__all__ = ["class_of", "draw_demos", "other_correct"]
