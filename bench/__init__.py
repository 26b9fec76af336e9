"""sdbench: a benchmark suite for on-policy self-distillation (SD) of language models.

A model is student and teacher at once: the teacher is the same model shown a correct
demonstration, and it scores every token of the student's own rollouts. sdbench measures, for any
*demonstration strategy*, what SD buys in pass@1 and what it costs in diversity and pass@k.

    sdbench run                      # the embedded default suite on CPU
    sdbench strategies list          # registered demonstration strategies

Nothing heavy is imported here: `import sdbench` stays cheap, and the public names below are
resolved lazily on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "Problem": "sdbench.task",
    "Verdict": "sdbench.task",
    "Task": "sdbench.task",
    "register_task": "sdbench.task",
    "Rollout": "sdbench.strategy",
    "Group": "sdbench.strategy",
    "TeacherContext": "sdbench.strategy",
    "RolloutPlan": "sdbench.strategy",
    "Strategy": "sdbench.strategy",
    "StrategyBase": "sdbench.strategy",
    "StrategyParams": "sdbench.strategy",
    "NO_SIGNAL": "sdbench.strategy",
    "STRATEGIES": "sdbench.strategy",
    "register_strategy": "sdbench.strategy",
    "other_correct": "sdbench.strategy",
    "demo_candidates": "sdbench.strategy",
    "DemoSourceParams": "sdbench.strategy",
    "draw_demos": "sdbench.strategy",
    "class_of": "sdbench.strategy",
    "group_advantages": "sdbench.strategy",
    "single_demo_plans": "sdbench.strategy",
    "make_group": "sdbench.testing",
    "RunConfig": "sdbench.config",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sdbench' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
