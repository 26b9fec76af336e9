"""Grade generations made elsewhere: samples files (sdbench's or lm-eval's) -> per-problem counts and pass@k.

    from sdbench.eval.verify import grade, read_samples, summarize
    samples = read_samples(path.read_text(), path, "gsm8k")      # [(problem_id, completion), ...]
    counts, rows = grade(load_task("gsm8k"), samples)            # ProblemCounts per problem, a row per sample
    summarize("gsm8k", counts)["metrics"]["pass@1"]

What `sdbench verify` (sdbench.cli.verify, which only reads the file and prints) computes. Each line
of a samples file is `{"problem_id": ..., "completion": ...}`: the completion is what the model wrote
after the task's prompt (see `sdbench tasks sample TASK --json` for prompts and ids). lm-eval's own
sample logs (`lm_eval --log_samples` on a task from `sdbench export lm-eval`) are read too, the format
told by the file's first record: one record per problem (and filter), its doc's `id` the problem id
and every completion in its `filtered_resps` one sample (the repeats); lm-eval writes them in
lm_eval/evaluator.py and `save_results_samples` (lm_eval/loggers/evaluation_tracker.py). A problem id
is the sdbench id (`gsm8k/test/17`, `humaneval/HumanEval/0`) or the dataset's own id (`HumanEval/0`,
an MBPP task_id, a MATH-500 unique_id) where that is unambiguous. Grading is the task's `verify`
(code tasks run every completion in the sandbox), counted by `sdbench.results.counts`; pass@k is
reported for k = 1, 2, 4, ... up to the smallest per-problem sample count; diversity is the number
of distinct correct solutions (functional classes) and of semantic classes per problem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sdbench.results.counts import counts_from_verdicts
from sdbench.results.record import ProblemCounts

INDEX_SIZES = (64, 1024)   # tasks without all_problems(): problems indexed per split, growing
FILTER = "keep-all"        # the filter an export's lm-eval task keeps every completion under

OWN_HINT = 'write one object per line: {"problem_id": ..., "completion": ...}'
LOGGED_HINT = ("an lm-eval samples file (samples_<task>_<time>.jsonl from --log_samples on a task from "
               "`sdbench export lm-eval`) holds one record per line with 'doc' and 'filtered_resps'")


def completions_of(results: Any) -> list[str]:
    """The completions of lm-eval's per-request responses, flattened.

    lm-eval holds one entry per request: a list of the kept completions (`take_first_k`, ours: one
    request of n) or a single string (`take_first`). A ValueError says what else it found.
    """
    if not isinstance(results, (list, tuple)):
        raise ValueError(f"responses are a {type(results).__name__}, not a list")
    out: list[str] = []
    for entry in results:
        items = entry if isinstance(entry, (list, tuple)) else [entry]
        if not all(isinstance(item, str) for item in items):
            raise ValueError("a response is not a string")
        out.extend(items)
    return out


def is_logged_sample(row: Any) -> bool:
    """Whether a JSON row is one of lm-eval's `--log_samples` records (else sdbench's own line format)."""
    return isinstance(row, dict) and "doc" in row and ("filtered_resps" in row or "resps" in row)


def logged_sample(record: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the exported doc, its completions) of one lm-eval sample record; a ValueError says what is wrong.

    `filtered_resps` are what lm-eval's process_results graded (ours keep every completion, so they
    equal `resps`); `resps` stand in where a record has no filtered ones.
    """
    doc = record.get("doc")
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not isinstance(doc.get("sdbench_task"), str):
        raise ValueError("its doc has no sdbench 'id' and 'sdbench_task' (not a task from `sdbench export lm-eval`)")
    completions = completions_of(record["filtered_resps"] if "filtered_resps" in record else record["resps"])
    if not completions:
        raise ValueError("it holds no completions")
    return doc, completions


def read_samples(text: str, path: Path, task: str | None = None) -> list[tuple[str, str]]:
    """(problem_id, completion) per sample of a samples file's `text`, in sdbench's line format or lm-eval's
    sample log.

    The format is the first record's; any line not of it, or malformed, is a UserError naming the
    line of `path`. `task`: lm-eval records of another sdbench task are an error too.
    """
    from sdbench.errors import UserError

    out: list[tuple[str, str]] = []
    logged: dict[str, list[tuple[str, str]]] | None = None   # lm-eval's: samples by filter name
    first = 0                                                # the line number of the first record
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path.name} line {number} is not JSON: {exc.msg}",
                            OWN_HINT if logged is None else LOGGED_HINT) from exc
        if not first:
            first = number
            logged = {} if is_logged_sample(row) else None
        if logged is None:
            if not isinstance(row, dict) or not isinstance(row.get("problem_id"), (str, int)) \
                    or not isinstance(row.get("completion"), str):
                raise UserError(f"{path.name} line {number} lacks a string 'problem_id' or 'completion'", OWN_HINT)
            out.append((str(row["problem_id"]), row["completion"]))
            continue
        try:
            if not is_logged_sample(row):
                raise ValueError(f"it has no 'doc' and 'filtered_resps' (line {first} has)")
            doc, completions = logged_sample(row)
        except ValueError as exc:
            raise UserError(f"{path.name} line {number} is not an lm-eval sample record: {exc}", LOGGED_HINT) \
                from None
        if task is not None and doc["sdbench_task"] != task:
            raise UserError(f"{path.name} line {number} is a sample of sdbench task {doc['sdbench_task']!r}, "
                            f"not {task!r}", f"pass --task {doc['sdbench_task']}")
        logged.setdefault(str(row.get("filter", FILTER)), []).extend((doc["id"], c) for c in completions)
    if logged:
        # lm-eval logs each document once per filter: with several, sdbench's keep-all is the one to grade
        if len(logged) > 1 and FILTER not in logged:
            raise UserError(f"{path.name} holds lm-eval records of filters {', '.join(sorted(logged))}",
                            f"keep one filter's records (an export's task has one: {FILTER!r})")
        out = logged.get(FILTER) or next(iter(logged.values()))
    if not out:
        raise UserError(f"samples file {str(path)!r} holds no samples", "write one JSON object per line")
    return out


def index_problems(task: Any, wanted: set[str]) -> dict[str, Any]:
    """problem id → Problem for every id in `wanted`; sdbench ids and unambiguous dataset ids both work."""
    from sdbench.errors import UserError, did_you_mean

    index: dict[str, Any] = {}
    native: dict[str, list[Any]] = {}

    def add(problems: list[Any]) -> None:
        for problem in problems:
            index[problem.id] = problem
            if "native_id" in problem.data:
                native.setdefault(str(problem.data["native_id"]), []).append(problem)

    if hasattr(task, "all_problems"):
        for split in task.splits:
            add(task.all_problems(split))
    else:   # generated tasks: ids of seed-0 problems, indexed until every wanted id is found
        for size in INDEX_SIZES:
            for split in task.splits:
                add(task.problems(split, size, seed=0))
            if wanted <= index.keys():
                break
    found: dict[str, Any] = {}
    for pid in sorted(wanted):
        if pid in index:
            found[pid] = index[pid]
        elif len(native.get(pid, ())) == 1:
            found[pid] = native[pid][0]
        else:
            why = "is ambiguous across splits" if pid in native else "is unknown"
            hint = did_you_mean(pid, list(index)) or "ids look like " + ", ".join(list(index)[:3])
            raise UserError(f"problem id {pid!r} of task {task.name} {why}", hint)
    return found


def grade(task: Any, samples: list[tuple[str, str]]) -> tuple[list[ProblemCounts], list[dict[str, Any]]]:
    """Per-problem counts and one graded row per sample, in input order."""
    problems = index_problems(task, {pid for pid, _ in samples})
    by_problem: dict[str, list[int]] = {}
    for i, (pid, _) in enumerate(samples):
        by_problem.setdefault(problems[pid].id, []).append(i)
    rows: list[dict[str, Any]] = [{} for _ in samples]
    results = []
    for canonical, positions in by_problem.items():
        problem = problems[samples[positions[0]][0]]
        verdicts = task.verify(problem, [samples[i][1] for i in positions])
        for i, verdict in zip(positions, verdicts, strict=True):
            rows[i] = {"problem_id": canonical, "correct": bool(verdict.correct), "status": verdict.status,
                       "functional_class": verdict.functional_class}
        results.append(counts_from_verdicts(canonical, verdicts))   # entropy None: no policy scored them
    return results, rows


def summarize(task_name: str, results: list[ProblemCounts]) -> dict[str, Any]:
    """pass@k (k up to the smallest per-problem sample count), distinct correct and semantic classes, as JSON."""
    from sdbench.eval.metrics import problem_metrics

    metrics = problem_metrics(results)
    metrics.pop("entropy", None)
    ns = [r.n for r in results]
    return {"task": task_name, "problems": len(results), "samples": sum(ns),
            "samples_per_problem": {"min": min(ns), "max": max(ns)},
            "metrics": {k: float(v.mean()) for k, v in metrics.items()}}
