"""`sdbench run --reuse DIR`: take finished cells from other run directories instead of recomputing them.

    sdbench run --config five_arms.yaml --out runs/five --reuse runs/four_arms --reuse runs/fifth_arm

A cell's result depends on its task, arm and seed and on the run's settings, not on which other arms or seeds
the run lists (`RunConfig.cell_hash`; tests/test_reuse.py holds it on a real run). So a run that adds an arm,
a seed or a task to an earlier run, or joins two runs of the same settings, may take their finished cells:
only when the source's cell hash equals this run's, only cells this run plans, only `ok` records (their
integrity hashes checked as they are read), samples first and each file atomically, as a cell of its own
would be written. Every reused cell keeps its own record, config hash included; `reused.json` in the run
directory (and provenance's `reused`) names each source's config, its hash and the cells taken from it, which
is what lets `sdbench leaderboard submit` accept cells whose config hash is a source's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sdbench.config import RunConfig
from sdbench.errors import UserError
from sdbench.runs.store import RunStore, atomic_write_bytes, atomic_write_json

REUSED_FILE = "reused.json"
KEPT = ("run", "git_commit", "config_hash", "config")    # what reused.json says of each source


def _git_commit(path: Path) -> str | None:
    """The commit the source run's provenance names (the code that computed its cells)."""
    try:
        return json.loads((path / "provenance.json").read_text()).get("git_commit")
    except (OSError, ValueError, AttributeError):
        return None


def read_reused(root: Path) -> list[dict[str, Any]]:
    """The sources this run took cells from (empty when none)."""
    path = root / REUSED_FILE
    if not path.is_file():
        return []
    try:
        return json.loads(path.read_text())["sources"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is corrupt", "delete the run directory, or restore that file") from exc


def _first_changed_setting(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_changed_setting(a.get(key), b.get(key), f"{path}.{key}".lstrip("."))
    return f"{path or 'config'}: {a!r} here, {b!r} there"


def _source(path: Path, config: RunConfig) -> tuple[RunConfig, str]:
    """The source run's config and its recorded hash; UserError unless its cells compute like this run's."""
    try:
        stored = json.loads((path / "config.json").read_text())
        source = RunConfig.model_validate(stored["config"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"--reuse {path} is not a readable sdbench run directory (its config.json)",
                        "pass the --out directory of an earlier `sdbench run`") from None
    if source.config_hash() != stored.get("config_hash"):
        raise UserError(f"--reuse {path}: its config.json does not hash to its recorded config_hash",
                        "that run directory was edited; do not reuse it")
    if source.cell_hash() != config.cell_hash():
        changed = _first_changed_setting(config.cell_settings(), source.cell_settings())
        raise UserError(f"--reuse {path} ran with other settings ({changed})",
                        "reuse only runs whose settings differ in tasks, strategies or seeds alone")
    return source, stored["config_hash"]


def reuse_cells(config: RunConfig, store: RunStore, sources: Sequence[Path], keys: Sequence[str]) -> int:
    """Copy the finished cells among `keys` that `store` lacks from `sources` (first source first); returns how
    many were taken. Call under the run lock."""
    taken, wanted = 0, set(keys)
    entries = {e["config_hash"]: e for e in read_reused(store.root)}
    for path in sources:
        if path.resolve() == store.root.resolve():
            raise UserError(f"--reuse {path} is this run's own directory", "pass another run's --out directory")
        source_config, source_hash = _source(path, config)
        # a cell the source itself reused carries its origin's hash: vouched for by the source's reused.json
        commit = _git_commit(path)
        origins = {source_hash: {"run": str(path.resolve()), "git_commit": commit, "config_hash": source_hash,
                                 "config": source_config.model_dump(mode="json")},
                   **{e["config_hash"]: e for e in read_reused(path)}}
        src = RunStore(path)
        for rec in src.records():           # each record checked against its integrity hash as it is read
            if rec.key not in wanted or rec.status != "ok" or store.has_record(rec.key):
                continue
            origin = origins.get(rec.config_hash)
            if origin is None:
                continue
            # vouch first, then copy: a run killed in between has a listed cell it lacks (harmless, taken again
            # on resume), never a copied record whose foreign config hash nothing vouches for
            entry = entries.setdefault(rec.config_hash, {**{k: origin.get(k) for k in KEPT}, "cells": []})
            entry["cells"] = sorted({*entry["cells"], rec.key})
            atomic_write_json(store.root / REUSED_FILE, {"sources": list(entries.values())})
            samples = src.samples / f"{rec.key}.jsonl.gz"
            if samples.is_file():
                src.read_samples(rec.key, rec)      # checked against the record's hash before it is copied
                atomic_write_bytes(store.samples / samples.name, samples.read_bytes())
            atomic_write_bytes(store.record_path(rec.key), src.record_path(rec.key).read_bytes())
            taken += 1
    return taken
