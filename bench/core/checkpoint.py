"""Training checkpoints inside a cell: model, optimizer, EMA/frozen teacher and the step log.

Every random choice of a training step derives from (seed, step), so these tensors are the whole
state: a cell resumed from step k's checkpoint replays steps k+1.. exactly as an uninterrupted run.
Files are written to a temp name and renamed, so a kill never leaves half a checkpoint, and end with
the sha256 of what precedes them: a flipped byte or a truncation is found before anything loads
(`checkpoint_problem`; the cell then restarts from step 0, see sdbench.runs.execute). The state streams to
the temp file through a writer that hashes what passes (never a copy in memory: a real model's checkpoint
is 4 x its weights, 2.15 GB for SmolLM2-135M, and the in-memory route held three copies at once); a write
error inside torch.save comes out as the OSError it is (ENOSPC), not torch's "unexpected pos". Reading
hashes the file in chunks and loads through a reader that ends where the payload does.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from sdbench.atomic import atomic_write
from sdbench.errors import UserError

FORMAT = 2   # 2: `extra`, the evaluation-along-training state (trajectory so far, best-val weights)
TRAILER = b"\nsdbench-sha256:"   # + 64 hex digits of sha256(the torch.save bytes before it)
TRAILER_LEN = len(TRAILER) + 64


CHUNK = 1 << 22


def _payload_size(path: Path) -> int | str:
    """The length of the torch.save bytes of a checkpoint file (hashed in chunks against its trailer), or
    what is wrong with it."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if size < TRAILER_LEN:
            return "no integrity trailer (truncated, or written by an older sdbench)"
        fh.seek(size - TRAILER_LEN)
        tail = fh.read(TRAILER_LEN)
        if tail[:-64] != TRAILER:
            return "no integrity trailer (truncated, or written by an older sdbench)"
        fh.seek(0)
        digest, left = hashlib.sha256(), size - TRAILER_LEN
        while left:
            block = fh.read(min(CHUNK, left))
            if not block:
                return "truncated while read"
            digest.update(block)
            left -= len(block)
    if digest.hexdigest() != tail[-64:].decode("ascii", errors="replace"):
        return "its sha256 does not match its content"
    return size - TRAILER_LEN


def checkpoint_problem(path: Path) -> str | None:
    """Why the checkpoint at `path` fails its integrity check, or None when it passes."""
    try:
        found = _payload_size(path)
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    return found if isinstance(found, str) else None


class _HashingWriter:
    """What torch.save writes, passed to the file and hashed on the way; remembers the OSError torch would
    turn into a RuntimeError."""

    def __init__(self, fh) -> None:
        self.fh, self.sha, self.error = fh, hashlib.sha256(), None

    def write(self, data) -> int:
        try:
            self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise
        self.sha.update(data)
        return len(data)

    def flush(self) -> None:
        self.fh.flush()


class _PayloadReader(io.RawIOBase):
    """A read-only view of the first `size` bytes of a file: torch.load sees the payload, not the trailer."""

    def __init__(self, fh, size: int) -> None:
        self.fh, self.size, self.pos = fh, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, min(self.size, base + offset))
        return self.pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.size - self.pos)
        if want <= 0:
            return 0
        self.fh.seek(self.pos)
        got = self.fh.readinto(view[:want])
        self.pos += got
        return got


def save_checkpoint(path: Path, *, step: int, model, optimizer, teacher, log: list[dict[str, Any]],
                    extra: dict[str, Any] | None = None) -> None:
    state = {"format": FORMAT, "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "teacher": None if teacher is model else teacher.state_dict(), "log": log, "extra": extra}

    def write(fh) -> None:
        writer = _HashingWriter(fh)
        try:
            torch.save(state, writer)
        except RuntimeError:
            if writer.error is not None:
                raise writer.error from None   # a full disk is ENOSPC, not "unexpected pos"
            raise
        fh.write(TRAILER + writer.sha.hexdigest().encode())

    atomic_write(path, write)


def load_checkpoint(path: Path, *, model, optimizer, teacher,
                    ) -> tuple[int, list[dict[str, Any]], dict[str, Any] | None]:
    """Restore state in place; returns (last finished step, step log so far, the evaluation state)."""
    try:
        size = _payload_size(path)
        if isinstance(size, str):
            raise ValueError(size)
        with open(path, "rb") as fh:
            state = torch.load(_PayloadReader(fh, size), map_location="cpu", weights_only=True)
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
