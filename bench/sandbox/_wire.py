"""Strict value codec and message framing between the sandboxed program and the judge.

Only plain data crosses: None, bool, int, float, complex, str, bytes, list, tuple, set, frozenset
and dict, checked by exact type. Subclasses of those (an `int` whose `__eq__` always returns True,
a `list` with a patched `__iter__`) are converted through the *base* type's own methods, so their
overrides never run on the judge side; anything else becomes an opaque reference that compares
equal only to itself. Stdlib only (runs inside `python -I -S`); not meant to be run directly.
"""

from __future__ import annotations

import json
import os
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

MAX_DEPTH = 100
MAX_NODES = 1_000_000
MAX_MESSAGE = 64 << 20


class WireError(Exception):
    """A value that cannot cross, or a malformed message."""


def encode(value: Any, refs: Callable[[Any], int] | None = None) -> Any:
    """`value` as JSON-able tagged data; `refs(obj) -> id` handles non-plain objects (else error)."""
    budget = [MAX_NODES]

    def enc(x: Any, depth: int) -> Any:
        budget[0] -= 1
        if depth > MAX_DEPTH or budget[0] < 0:
            raise WireError("value too deep or too large")
        t = type(x)
        if x is None or t is bool or t is str:
            return x
        if t is int:
            return {"i": str(x)} if abs(x) >= 1 << 53 else x
        if t is float:
            return {"f": float.hex(x)}
        if isinstance(x, bool):
            return bool.__bool__(x)
        if isinstance(x, int):
            return enc(int.__index__(x), depth)
        if isinstance(x, float):
            return {"f": float.hex(float.__float__(x))}
        if isinstance(x, str):
            return {"s": str.__str__(x)}
        if isinstance(x, complex):
            return {"c": [float.hex(complex.__getattribute__(x, "real")),
                          float.hex(complex.__getattribute__(x, "imag"))]}
        if isinstance(x, (bytes, bytearray)):
            return {"b": bytes.hex(bytes(memoryview(x)))}
        if isinstance(x, list):
            return {"l": [enc(v, depth + 1) for v in list.__iter__(x)]}
        if isinstance(x, tuple):
            return {"t": [enc(v, depth + 1) for v in tuple.__iter__(x)]}
        if isinstance(x, frozenset):
            return {"F": [enc(v, depth + 1) for v in frozenset.__iter__(x)]}
        if isinstance(x, set):
            return {"S": [enc(v, depth + 1) for v in set.__iter__(x)]}
        if isinstance(x, dict):
            return {"d": [[enc(k, depth + 1), enc(v, depth + 1)] for k, v in dict.items(x)]}
        if refs is None:
            raise WireError(f"cannot send a {t.__name__}")
        return {"r": refs(x)}

    return enc(value, 0)


def decode(data: Any, make_ref: Callable[[int], Any] | None = None) -> Any:
    """The inverse of `encode`; `make_ref(id)` builds a stand-in for a reference (else error)."""

    def dec(x: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise WireError("value too deep")
        if x is None or type(x) in (bool, int, str):
            return x
        if type(x) is not dict or len(x) != 1:
            raise WireError("malformed value")
        ((tag, v),) = x.items()
        if tag == "i":
            return int(str(v))
        if tag == "f":
            return float.fromhex(str(v))
        if tag == "s":
            return str(v)
        if tag == "c":
            return complex(float.fromhex(v[0]), float.fromhex(v[1]))
        if tag == "b":
            return bytes.fromhex(str(v))
        if tag in "ltFS" and type(v) is list:
            items = [dec(e, depth + 1) for e in v]
            return {"l": list, "t": tuple, "F": frozenset, "S": set}[tag](items)
        if tag == "d" and type(v) is list:
            return {dec(k, depth + 1): dec(val, depth + 1) for k, val in v}
        if tag == "r" and type(v) is int and make_ref is not None:
            return make_ref(v)
        raise WireError(f"malformed value tag {tag!r}")

    return dec(data, 0)


def send(fd: int, message: dict[str, Any]) -> None:
    data = json.dumps(message, ensure_ascii=True, allow_nan=False).encode()
    if len(data) > MAX_MESSAGE:
        raise WireError("message too large")
    data = struct.pack(">I", len(data)) + data
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv(fd: int) -> dict[str, Any] | None:
    """The next message, or None at end of stream."""
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">I", head)
    if size > MAX_MESSAGE:
        raise WireError("message too large")
    body = _read_exact(fd, size)
    if body is None:
        return None
    msg = json.loads(body)
    if type(msg) is not dict:
        raise WireError("malformed message")
    return msg
