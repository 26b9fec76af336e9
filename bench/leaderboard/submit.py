"""Turn a run directory (or a results file) into a validated results document and file it.

    sdbench leaderboard submit runs/default --name my-run      # -> leaderboard/results/my-run.json
    sdbench leaderboard submit their-results.json              # a results file from elsewhere

Validation refuses, each with one line: a wrong schema version, a non-finite number, a document the
schema rejects, failed or missing cells, inconsistent config hashes, a summary that differs from the
one recomputed from the per-problem counts, and a duplicate (same name, or the same run's counts
already filed under another name: checked and written under an flock on the results directory, so two
submitters at once cannot both file). A run directory's records and samples are checked against their
hashes, and its per-problem counts against its stored samples. Results and run directories of schema 1 (endpoint-only
evaluation) are refused with one line naming the fix: re-run with this sdbench.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sdbench.errors import UserError
from sdbench.leaderboard.schema import RESULTS_SCHEMA_VERSION, Results

TOLERANCE = 1e-6   # summaries are rounded to 6 decimals; allow a last-digit difference across platforms


# A results file is NAME.json.gz (what submit writes: compact JSON, gzip without a timestamp, so the same results
# give the same bytes; a full 22-arm x 5-seed run is 110 MB as indented JSON, 17 MB so) or NAME.json (read too).
RESULTS_SUFFIXES = (".json.gz", ".json")


def results_paths(results_dir: Path) -> list[Path]:
    """The results files of a results directory, by name."""
    return sorted(p for p in results_dir.iterdir() if p.is_file() and p.name.endswith(RESULTS_SUFFIXES)) \
        if results_dir.is_dir() else []


def results_stem(path: Path) -> str:
    """The results name a file is named for: NAME of NAME.json or NAME.json.gz."""
    return next(path.name[: -len(s)] for s in RESULTS_SUFFIXES if path.name.endswith(s))


def _read_json(path: Path) -> Any:
    try:
        raw = path.read_bytes()
        return json.loads(gzip.decompress(raw) if path.name.endswith(".gz") else raw.decode())
    except FileNotFoundError as exc:
        raise UserError(f"{path} does not exist", "check the path") from exc
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:  # BadGzipFile is an OSError
        raise UserError(f"{path} is not readable JSON ({type(exc).__name__})", "check the file") from exc


def _nonfinite(obj: Any, path: str = "") -> str | None:
    """The location of the first NaN / Infinity in a JSON value, or None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return path or "<root>"
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list):
        items = ((f"[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for key, value in items:
        found = _nonfinite(value, f"{path}{key}" if str(key).startswith("[") else f"{path}.{key}".lstrip("."))
        if found:
            return found
    return None


def _task_plugins(tasks: list[str]) -> list[dict[str, str]]:
    """Distributions providing the run's tasks, looked up here (provenance.json does not record them)."""
    from sdbench.task import TASKS

    out = []
    for name in tasks:
        try:
            entry = TASKS.entry(name)
        except Exception:  # a task not installed here: its data hash in provenance still pins it
            continue
        out.append({"distribution": entry.distribution, "version": entry.version})
    return out


def _old_schema(doc: Any, where: str) -> None:
    """One line for a schema-1 document (see sdbench.results.record.refuse_old_schema)."""
    if isinstance(doc, dict) and doc.get("schema_version") == 1:
        raise UserError(f"{where} is schema 1 (endpoint-only evaluation); this sdbench reads schema "
                        f"{RESULTS_SCHEMA_VERSION}",
                        "re-run the suite with this sdbench (`sdbench run`, same config) and submit the new run "
                        "directory")


def _fill_gates(prov: dict[str, Any], config: dict[str, Any]) -> None:
    """Runs recorded before provenance carried the testbed gate get it at submission: the committed
    gate entry of each task, marked stale unless its weights hash is the base model's the run used."""
    from sdbench.config import RunConfig
    from sdbench.runs.provenance import gate_summary

    tasks = prov.get("tasks") or {}
    if all("gate" in entry for entry in tasks.values()):
        return
    run_config = RunConfig.model_validate(config)
    for name, entry in tasks.items():
        if "gate" not in entry:
            entry["gate"] = gate_summary(name, run_config)


def results_from_run(run_dir: Path, name: str | None = None) -> dict[str, Any]:
    """The results document (unvalidated) of a finished run directory."""
    from sdbench.runs.store import RunStore

    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir} is not an sdbench run directory (no config.json)",
                        "pass the --out directory of `sdbench run`")
    for needed in ("provenance.json", "summary.json"):
        if not (run_dir / needed).is_file():
            raise UserError(f"run {run_dir} has no {needed}", "finish the run: re-run the same `sdbench run` command")
    config = _read_json(run_dir / "config.json")
    prov = _read_json(run_dir / "provenance.json")
    summary = _read_json(run_dir / "summary.json")
    _old_schema(summary, str(run_dir / "summary.json"))
    cells = []
    store = RunStore(run_dir)
    for rec in store.records():     # each record checked against its hash as it is read
        if (store.samples / f"{rec.key}.jsonl.gz").is_file():
            _check_counts(rec, store.read_samples(rec.key, rec), store.record_path(rec.key))
        cell = dict(rec) if isinstance(rec, dict) else rec.model_dump(mode="json")
        _old_schema(cell, str(run_dir / "cells" / f"{cell.get('key')}.json"))
        if isinstance(cell.get("train"), dict):   # the per-step log stays in the run directory
            cell["train"] = {**cell["train"], "log": []}
        cells.append(cell)
    models: dict[str, Any] = {}
    for cell in cells:
        if cell.get("model"):
            models.setdefault(cell.get("task"), cell["model"])
    plugins = {(s.get("distribution"), s.get("version")) for s in prov.get("strategies", [])}
    plugins |= {(p["distribution"], p["version"]) for p in _task_plugins(sorted(prov.get("tasks", {})))}
    _fill_gates(prov, config.get("config", config))
    provenance = {
        **{k: v for k, v in prov.items() if k != "time"},
        "plugins": [{"distribution": d, "version": v} for d, v in sorted(plugins, key=str)],
        "models": models,
        "run_time": prov.get("time"),
        "submitted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return {
        "schema_version": RESULTS_SCHEMA_VERSION, "kind": "sdbench.leaderboard.results",
        "name": name or run_dir.resolve().name,
        "config": config.get("config", config), "provenance": provenance,
        "summary": summary, "cells": cells,
    }


def _check_counts(record: Any, samples: list[dict[str, Any]], where: Path) -> None:
    """Every per-problem (n, c) of `record` that its stored samples cover must be what they count."""
    from collections import Counter

    drawn = Counter((s.get("checkpoint"), s.get("split"), s.get("problem_id")) for s in samples)
    right = Counter((s.get("checkpoint"), s.get("split"), s.get("problem_id")) for s in samples if s.get("correct"))
    for checkpoint, splits in record.eval.items():
        for split, evaluation in splits.items():
            for problem in evaluation.problems:
                key = (checkpoint, split, problem.id)
                if key in drawn and (problem.n, problem.c) != (drawn[key], right[key]):
                    raise UserError(f"record {where}: {checkpoint}/{split}/{problem.id} says n={problem.n}, "
                                    f"c={problem.c} but its samples count n={drawn[key]}, c={right[key]}",
                                    "delete that record and its samples, and re-run that cell")


def _first_difference(stored: Any, fresh: Any, path: str) -> str | None:
    if isinstance(stored, dict) and isinstance(fresh, dict):
        for key in sorted(set(stored) | set(fresh)):
            if key not in stored or key not in fresh:
                return f"{path}.{key} is {'missing' if key not in stored else 'extra'} in the file"
            found = _first_difference(stored[key], fresh[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(stored, list) and isinstance(fresh, list) and len(stored) == len(fresh):
        for i, (a, b) in enumerate(zip(stored, fresh, strict=True)):
            found = _first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(stored, float | int) and isinstance(fresh, float | int) and not isinstance(stored, bool):
        if abs(stored - fresh) <= TOLERANCE:
            return None
    elif stored == fresh:
        return None
    return f"{path} is {stored!r} in the file but {fresh!r} recomputed"


# summary part -> the fields that identify one of its items
KEYS = {"rows": ("strategy", "task", "split", "checkpoint"),
        "deltas": ("strategy", "baseline", "task", "split", "checkpoint"),
        "trajectories": ("strategy", "task", "step"), "frontier": ("strategy", "task", "kl_budget"),
        "iso_accuracy": ("strategy", "task", "match", "level"),
        "matched_deltas": ("strategy", "baseline", "task", "match", "level"), "checkpoint_rules": ("rule",)}


def _keyed(items: list[dict[str, Any]], fields: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    return {"/".join(str(i[f]) for f in fields): i for i in items}


def check_summary(results: Results) -> None:
    """Recompute the summary from the per-problem counts; refuse any difference."""
    from sdbench.runs.aggregate import summarize

    fresh = summarize(sorted(results.cells, key=lambda c: c.key)).model_dump(mode="json")
    stored = results.summary.model_dump(mode="json")
    for part, fields in KEYS.items():
        diff = _first_difference(_keyed(stored[part], fields), _keyed(fresh[part], fields), part)
        if diff:
            raise UserError(f"summary does not match the per-problem counts: {diff}",
                            "submit the run directory itself, or re-aggregate it with `sdbench run`")
    # the mechanism (schema 3: from the class histograms), arm by arm; not its `demo` statistics, which come from
    # the per-step train log that a results file does not carry (submit drops it)
    arms = [{key: {k: v for k, v in arm.items() if k != "demo"} for key, arm in
             _keyed((s.get("mechanism") or {}).get("arms", []), ("strategy", "task")).items()} for s in (stored, fresh)]
    diff = _first_difference(*arms, "mechanism")
    if diff:
        raise UserError(f"summary does not match the per-problem counts: {diff}",
                        "re-aggregate the run with this sdbench (`sdbench run`, same command), then submit it")


def validate(doc: Any, where: str, *, recompute: bool = True) -> Results:
    """The validated results of a raw JSON document; UserError (one line) on anything wrong.

    recompute=False skips re-aggregating the summary (bootstrap, torch import): `build` trusts files
    that `submit` has checked, and still checks their schema.
    """
    from pydantic import ValidationError

    if not isinstance(doc, dict):
        raise UserError(f"{where} is not a results document (a JSON object)", "submit a run directory")
    _old_schema(doc, where)
    version = doc.get("schema_version")
    if version != RESULTS_SCHEMA_VERSION:
        raise UserError(f"{where} has schema_version {version!r}; this sdbench reads results schema "
                        f"version {RESULTS_SCHEMA_VERSION}", "re-submit from the run directory with this sdbench")
    bad = _nonfinite(doc)
    if bad:
        raise UserError(f"{where} holds a non-finite number (NaN or Infinity) at {bad}",
                        "results must be finite; re-run the cell that produced it")
    # before the schema: a cell that failed in setup has no model or strategy version to validate
    cells = doc.get("cells") if isinstance(doc.get("cells"), list) else []
    summary = doc.get("summary") if isinstance(doc.get("summary"), dict) else {}
    failed = {str(c.get("key")) for c in cells if isinstance(c, dict) and c.get("status") != "ok"}
    failed |= {str(f.get("key")) for f in summary.get("failed") or [] if isinstance(f, dict)}
    if failed:
        raise UserError(f"{where} has {len(failed)} failed cell(s): {', '.join(sorted(failed))}",
                        "delete their records, re-run the same `sdbench run`, and submit the complete run")
    try:
        results = Results.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        raise UserError(f"{where} does not match results schema v{RESULTS_SCHEMA_VERSION}: {loc}: {err['msg']}",
                        "see leaderboard/schema.json") from exc
    prov = results.provenance
    wanted = {(t, s.label, seed) for t in prov.tasks for s in prov.strategies for seed in prov.seeds}
    have = {(c.task, c.strategy.label, c.seed) for c in results.cells}
    if have != wanted:
        missing = sorted(wanted - have)
        detail = f"missing {'/'.join(map(str, missing[0]))}" if missing else "cells outside its config"
        raise UserError(f"{where} is incomplete: {len(have & wanted)} of {len(wanted)} cells ({detail})",
                        "finish the run by re-running the same `sdbench run` command")
    vouched = _reused_sources(results, where)
    hashes = {prov.config_hash} | {c.config_hash for c in results.cells if c.key not in vouched.get(c.config_hash, ())}
    if len(hashes) != 1:
        raise UserError(f"{where} mixes cells of different configs ({', '.join(sorted(hashes))})",
                        "submit one run directory per config (or join runs with `sdbench run --reuse`)")
    if recompute:
        check_summary(results)
    return results


def _reused_sources(results: Results, where: str) -> dict[str, set[str]]:
    """config hash -> the cells a run took from a run of that config (`sdbench run --reuse`), each source checked:
    its stored config hashes to its hash, and computes cells like this run's (equal `RunConfig.cell_hash`)."""
    from sdbench.config import RunConfig

    sources = results.provenance.reused or []
    if not sources:
        return {}
    mine = RunConfig.model_validate(results.config).cell_hash()
    out: dict[str, set[str]] = {}
    for source in sources:
        try:
            config = RunConfig.model_validate(source["config"])
            ok = config.config_hash() == source["config_hash"] and config.cell_hash() == mine
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise UserError(f"{where}: a reused source's config does not compute cells like this run's "
                            f"({source.get('run', '?')})", "re-run those cells in this run instead of reusing them")
        out.setdefault(source["config_hash"], set()).update(source.get("cells") or [])
    return out


def fingerprint(results: Results) -> str:
    """Identity of a run's numbers: config hash, models and every cell's counts (not names or times)."""
    cells = [{"key": c.key, "model": c.model.weights_sha256 if c.model else None,
              "eval": {ck: {s: e.model_dump(mode="json") for s, e in splits.items()} for ck, splits in c.eval.items()},
              "trajectory": [p.model_dump(mode="json") for p in c.trajectory]}
             for c in sorted(results.cells, key=lambda c: c.key)]
    blob = json.dumps({"config_hash": results.provenance.config_hash, "cells": cells}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def load_results(path: Path) -> Results:
    return validate(_read_json(path), str(path))


def submit(source: Path, results_dir: Path, name: str | None = None) -> Path:
    """Validate a run directory or results file and write results_dir/<name>.json.gz atomically."""
    if source.is_dir():
        doc: Any = results_from_run(source, name)
    else:
        doc = _read_json(source)
        if name and isinstance(doc, dict):
            doc["name"] = name
    results = validate(doc, str(source))
    results_dir.mkdir(parents=True, exist_ok=True)
    with _locked(results_dir):      # check-then-write, one submitter at a time
        # a results file is filed as it is (a schema-2 file stays one: no nulls for fields it predates); a run
        # directory's document in the schema's own form
        return _file(results, results_dir, None if source.is_dir() else doc)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive flock on the directory itself (no lock file among the published results); a second
    submitter waits for the first, then sees its file."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _file(results: Results, results_dir: Path, raw: dict[str, Any] | None = None) -> Path:
    from sdbench.runs.store import atomic_write_bytes

    for suffix in RESULTS_SUFFIXES:
        if (results_dir / f"{results.name}{suffix}").exists():
            raise UserError(f"results named {results.name!r} are already submitted "
                            f"({results_dir / (results.name + suffix)})", "pass --name to submit under another name")
    mine = fingerprint(results)
    for other in results_paths(results_dir):
        try:
            same = fingerprint(Results.model_validate(_read_json(other))) == mine
        except (UserError, ValueError):  # an unreadable neighbour is `build`'s problem, not a duplicate
            continue
        if same:
            raise UserError(f"this run is already submitted as {results_stem(other)!r} ({other})",
                            "a run is filed once; delete that file first to replace it")
    target = results_dir / f"{results.name}{RESULTS_SUFFIXES[0]}"
    data = results.model_dump(mode="json") if raw is None else raw
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    atomic_write_bytes(target, gzip.compress(text.encode(), compresslevel=6, mtime=0))
    os.chmod(target, 0o644)   # published results, not a secret: mkstemp's 0600 would hide them
    return target
