"""User-facing errors: one line naming the problem, one hint naming the fix.

The CLI prints a `UserError` as those lines and exits non-zero, without a traceback (unless
`--debug`). Anything else that escapes is a bug in sdbench and keeps its traceback.
"""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable


class UserError(Exception):
    """A problem with the user's input: bad config, unknown name, unreadable file."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message} ({self.hint})"


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """A 'did you mean ...?' hint for a near-miss name, or None when nothing is close."""
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"


def unknown_name(kind: str, name: str, known: Iterable[str]) -> UserError:
    known = sorted(known)
    hint = did_you_mean(name, known) or ("known: " + ", ".join(known) if known else None)
    return UserError(f"unknown {kind} {name!r}", hint)


# The errnos of a full or failing disk: a cell that fails with one is transient (a resume retries it).
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)


def disk_full(path: object, detail: object = None) -> UserError:
    """One line for a write that failed for want of space (ENOSPC and kin): the path, the free space
    left on its filesystem, and the fix."""
    import os
    from pathlib import Path

    where = Path(str(path))
    probe = next((p for p in (where, *where.parents) if p.exists()), Path("."))
    try:
        stat = os.statvfs(probe)
        free = f"{stat.f_bavail * stat.f_frsize / 2**20:.1f} MiB free there"
    except OSError:
        free = "free space unknown"
    reason = f": {detail}" if detail else ""
    return UserError(f"cannot write {where}{reason} ({free})",
                     "free space on that disk (or pass another --out), then run the same command again to resume")
