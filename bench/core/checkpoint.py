"""Training checkpoints inside a cell: model, optimizer, EMA/frozen teacher and the step log.

Every random choice of a training step derives from (seed, step), so these tensors are the whole
state: a cell resumed from step k's checkpoint replays steps k+1.. exactly as an uninterrupted run.
Files are written to a temp name and renamed, so a kill never leaves half a checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sdbench.atomic import atomic_write
from sdbench.errors import UserError

FORMAT = 2   # 2: `extra`, the evaluation-along-training state (trajectory so far, best-val weights)


def save_checkpoint(path: Path, *, step: int, model, optimizer, teacher, log: list[dict[str, Any]],
                    extra: dict[str, Any] | None = None) -> None:
    state = {"format": FORMAT, "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "teacher": None if teacher is model else teacher.state_dict(), "log": log, "extra": extra}
    atomic_write(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: Path, *, model, optimizer, teacher,
                    ) -> tuple[int, list[dict[str, Any]], dict[str, Any] | None]:
    """Restore state in place; returns (last finished step, step log so far, the evaluation state)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("format") != FORMAT:
            raise ValueError(f"format {state.get('format')!r}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state["teacher"] is not None and teacher is not model:
            teacher.load_state_dict(state["teacher"])
    except Exception as exc:
        raise UserError(f"checkpoint {path} is unreadable or corrupt ({type(exc).__name__})",
                        "delete it to restart that cell's training from step 0") from exc
    return int(state["step"]), list(state["log"]), state.get("extra")
