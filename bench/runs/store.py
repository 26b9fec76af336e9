"""The run directory: resolved config, one record per finished cell, samples, summary — all atomic.

    runs/<name>/
      config.json                      the resolved RunConfig (+ its hash)
      cells/<task>__<strategy>__seed<k>.json          one record per finished cell (sdbench.results.record.CellRecord)
      samples/<task>__<strategy>__seed<k>.jsonl.gz    every evaluation sample of that cell
      summary.json  summary.md          aggregated over seeds, rewritten at the end of each run

Every file is written to a temporary file in the same directory, fsynced, and renamed over its
name, so a killed run never leaves half a record; re-running the same command skips finished cells.
A record carries the sha256 of its own content and of its samples file (`integrity`), checked on
every read: an edited count or a damaged samples file is one error line, not a different result.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sdbench.atomic import atomic_write_bytes, atomic_write_json
from sdbench.errors import UserError
from sdbench.results.record import RECORD_SCHEMA_VERSION, CellRecord, refuse_old_schema

__all__ = ["RECORD_SCHEMA_VERSION", "RunStore", "atomic_write_bytes", "atomic_write_json", "cell_key"]


def record_digest(data: dict[str, Any]) -> str:
    """sha256 of a record's JSON data (without its `integrity` field), canonical: sorted keys, no spaces."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def cell_key(task: str, strategy_label: str, seed: int) -> str:
    safe = strategy_label.replace("/", "--").replace(" ", "")
    return f"{task}__{safe}__seed{seed}"


class RunStore:
    """Reads and writes one run directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cells = root / "cells"
        self.samples = root / "samples"
        self._hashes: dict[str, dict[str, str]] = {}    # key -> the `integrity` of its record file

    def record_path(self, key: str) -> Path:
        return self.cells / f"{key}.json"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive use of the run directory; a second process gets a clear error, not a race."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
                raise UserError(f"run directory {self.root} is in use by another sdbench process (pid {holder})",
                                "wait for it to finish, or pass another --out") from None
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            yield
        finally:
            os.close(fd)   # closing releases the lock

    def clear_dead_writes(self) -> list[Path]:
        """Remove the temp files of writes that a killed writer left (records, samples, checkpoints, any
        depth). Call it only under `lock()`: the lock proves no other writer is alive, so every temp file
        here belongs to a write whose rename never happened."""
        dead = sorted(self.root.rglob(".*.tmp"))
        for tmp in dead:
            tmp.unlink(missing_ok=True)
        return dead

    def validate(self) -> int:
        """Read every record and check it and its samples file against their hashes (a corrupt, edited or
        foreign one is a UserError); returns how many there are."""
        count = 0
        for record in self.records():
            if self._hashes.get(record.key, {}).get("samples") is not None:
                try:
                    self._samples_bytes(record)
                except FileNotFoundError:
                    raise UserError(f"samples file of record {self.record_path(record.key)} is missing",
                                    "delete that record to re-run its cell") from None
            count += 1
        return count

    def checkpoint_path(self, key: str) -> Path:
        return self.root / "checkpoints" / f"{key}.pt"

    def has_record(self, key: str) -> bool:
        return self.record_path(key).is_file()

    def write_record(self, key: str, record: dict[str, Any] | CellRecord,
                     samples: list[dict[str, Any]] | None = None) -> None:
        """Validate the record against the schema, then write samples and record (samples first: a
        record on disk always has its samples beside it)."""
        model = record if isinstance(record, CellRecord) else CellRecord.model_validate(record)
        data = model.model_dump(mode="json", exclude_none=True)
        integrity = {}
        if samples is not None:
            lines = "".join(json.dumps(s, sort_keys=True) + "\n" for s in samples).encode()
            packed = gzip.compress(lines, mtime=0)
            atomic_write_bytes(self.samples / f"{key}.jsonl.gz", packed)
            integrity["samples"] = hashlib.sha256(packed).hexdigest()
        integrity["record"] = record_digest(data)
        atomic_write_json(self.record_path(key), {**data, "integrity": integrity})

    def read_record(self, key: str) -> CellRecord:
        return self._read(self.record_path(key))

    def records(self) -> Iterator[CellRecord]:
        for path in sorted(self.cells.glob("*.json")):
            yield self._read(path)

    def read_samples(self, key: str, record: CellRecord | None = None) -> list[dict[str, Any]]:
        """A cell's samples, checked against the hash its record holds (`record`, or read here)."""
        packed = self._samples_bytes(record or self.read_record(key))
        return [json.loads(line) for line in gzip.decompress(packed).splitlines()]

    def _samples_bytes(self, record: CellRecord) -> bytes:
        path = self.samples / f"{record.key}.jsonl.gz"
        packed = path.read_bytes()
        if record.key not in self._hashes:
            self.read_record(record.key)
        expected = self._hashes.get(record.key, {}).get("samples")
        if expected is not None and hashlib.sha256(packed).hexdigest() != expected:
            raise UserError(f"samples file {path} fails its integrity check (its sha256 differs from the one "
                            "its record holds)", "delete it and its record to re-run that cell")
        return packed

    def _read(self, path: Path) -> CellRecord:
        from pydantic import ValidationError

        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"record {path} is corrupt ({type(exc).__name__})",
                            "delete that file to re-run its cell") from exc
        if not isinstance(data, dict) or data.get("kind") != "cell":
            raise UserError(f"{path} is not an sdbench cell record", "delete it, or use another --out directory")
        refuse_old_schema(data, f"record {path}")
        stored = data.pop("integrity", None)      # kept beside the record model (not part of the schema)
        if isinstance(stored, dict) and stored.get("record") != record_digest(data):
            raise UserError(f"record {path} fails its integrity check (its content changed after it was written)",
                            "delete that file to re-run its cell")
        try:
            record = CellRecord.model_validate(data)
        except ValidationError as exc:
            raise UserError(f"{path} is not an sdbench cell record of schema {RECORD_SCHEMA_VERSION}",
                            "delete it, or use another --out directory") from exc
        self._hashes[record.key] = stored if isinstance(stored, dict) else {}
        return record
