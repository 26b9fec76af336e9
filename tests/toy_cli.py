"""`sdbench` command line with the toy task and two test-only strategies registered, for CLI tests.

    python tests/toy_cli.py run --tasks toy_pick --profile smoke --out /tmp/x

Environment: TOY_MODEL_DIR names the tiny model directory (see tests/toy.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from toy import ToyPick  # noqa: E402

from sdbench.strategy import STRATEGIES, RolloutPlan, StrategyBase  # noqa: E402
from sdbench.task import TASKS  # noqa: E402


class Exploding(StrategyBase):
    """Test-only: an infinite advantage, as an absurd learning rate would, makes training diverge."""

    def plan(self, group):
        return [RolloutPlan(advantage=float("inf"))] * len(group.rollouts)


class Raising(StrategyBase):
    """Test-only: a plugin that raises inside plan()."""

    def plan(self, group):
        raise RuntimeError("plugin bug")


ToyPick.model_dir = os.environ["TOY_MODEL_DIR"]
TASKS.register("toy_pick", ToyPick, distribution="sdbench-tests")
STRATEGIES.register("exploding", Exploding, distribution="sdbench-tests")
STRATEGIES.register("raising", Raising, distribution="sdbench-tests")

if __name__ == "__main__":
    from sdbench.cli import main

    main()
