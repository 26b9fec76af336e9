"""`--report-to tensorboard`: per-step training logs and evaluation points, offline, in the run directory.

    sdbench run --report-to tensorboard      # then: tensorboard --logdir runs/default/tensorboard

Uses the standard `torch.utils.tensorboard.SummaryWriter` (needs the optional `tensorboard`
package: `pip install 'sdbench[tensorboard]'`); one event directory per cell. Scalars: train/loss,
train/divergence, train/reward, train/trained_rollouts per step; val/pass@1, val/distinct_correct,
val/entropy, val/kl_from_base per evaluation point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdbench.errors import UserError


def require_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise UserError("--report-to tensorboard needs the tensorboard package",
                        "pip install 'sdbench[tensorboard]' (or pip install tensorboard)") from None


class Board:
    def __init__(self, log_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def step(self, log: Any) -> None:
        for name in ("loss", "divergence", "reward", "trained_rollouts"):
            self.writer.add_scalar(f"train/{name}", float(getattr(log, name)), log.step + 1)

    def point(self, point: Any) -> None:
        problems = point.problems
        k = len(problems)
        self.writer.add_scalar("val/pass@1", point.pass1, point.step)
        self.writer.add_scalar("val/distinct_correct", sum(p.distinct_correct for p in problems) / k, point.step)
        self.writer.add_scalar("val/entropy", sum(p.entropy for p in problems) / k, point.step)
        self.writer.add_scalar("val/kl_from_base", sum(p.kl_from_base or 0.0 for p in problems) / k, point.step)

    def close(self) -> None:
        self.writer.close()


def board_for(log_dir: Path) -> Board:
    require_tensorboard()
    return Board(log_dir)
