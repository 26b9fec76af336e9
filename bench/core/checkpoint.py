"""Training checkpoints inside a cell: model, optimizer, EMA/frozen teacher and the step log.

Every random choice of a training step derives from (seed, step), so these tensors are the whole
state: a cell resumed from step k's checkpoint replays steps k+1.. exactly as an uninterrupted run.
Files are written to a temp name and renamed, so a kill never leaves half a checkpoint, and end with
the sha256 of what precedes them: a flipped byte or a truncation is found before anything loads
(`checkpoint_problem`; the cell then restarts from step 0, see sdbench.runs.execute). The state is
serialized in memory first, so a full disk is the OSError it is (ENOSPC), not torch's "unexpected pos".
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from sdbench.atomic import atomic_write_bytes
from sdbench.errors import UserError

FORMAT = 2   # 2: `extra`, the evaluation-along-training state (trajectory so far, best-val weights)
TRAILER = b"\nsdbench-sha256:"   # + 64 hex digits of sha256(the torch.save bytes before it)
TRAILER_LEN = len(TRAILER) + 64


def _payload(data: bytes) -> bytes | str:
    """The torch.save bytes of a checkpoint file, or what is wrong with it."""
    if len(data) < TRAILER_LEN or data[-TRAILER_LEN:-64] != TRAILER:
        return "no integrity trailer (truncated, or written by an older sdbench)"
    payload, digest = data[:-TRAILER_LEN], data[-64:].decode("ascii", errors="replace")
    if hashlib.sha256(payload).hexdigest() != digest:
        return "its sha256 does not match its content"
    return payload


def checkpoint_problem(path: Path) -> str | None:
    """Why the checkpoint at `path` fails its integrity check, or None when it passes."""
    try:
        found = _payload(path.read_bytes())
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    return found if isinstance(found, str) else None


def save_checkpoint(path: Path, *, step: int, model, optimizer, teacher, log: list[dict[str, Any]],
                    extra: dict[str, Any] | None = None) -> None:
    state = {"format": FORMAT, "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "teacher": None if teacher is model else teacher.state_dict(), "log": log, "extra": extra}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    atomic_write_bytes(path, payload + TRAILER + hashlib.sha256(payload).hexdigest().encode())


def load_checkpoint(path: Path, *, model, optimizer, teacher,
                    ) -> tuple[int, list[dict[str, Any]], dict[str, Any] | None]:
    """Restore state in place; returns (last finished step, step log so far, the evaluation state)."""
    try:
        payload = _payload(path.read_bytes())
        if isinstance(payload, str):
            raise ValueError(payload)
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
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
