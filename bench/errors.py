"""User-facing errors: one line naming the problem, one hint naming the fix.

The CLI prints a `UserError` as those lines and exits non-zero, without a traceback (unless
`--debug`). Anything else that escapes is a bug in sdbench and keeps its traceback.
"""

from __future__ import annotations

import difflib
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
