"""Seeds derived from values: the one place every random choice of a run gets its seed from.

    rng = stable_rng("train-step", seed, step)     # a random.Random
    torch.Generator().manual_seed(hash_seed(seed, "val"))

Identical across processes, machines and Python versions (sha256 of the repr, not `hash()`), so
a resumed or re-run cell draws exactly what it drew before.
"""

from __future__ import annotations

import hashlib
import random


def stable_rng(*parts: object) -> random.Random:
    """An rng seeded from a tuple of values, identical across processes and Python versions."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def hash_seed(*parts: object) -> int:
    """A 63-bit seed (for torch generators) derived from a tuple of values."""
    return stable_rng(*parts).getrandbits(63)
