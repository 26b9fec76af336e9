"""`sdbench verify`: grade generations made elsewhere and print pass@k and diversity.

    sdbench verify --task gsm8k --samples gens.jsonl --data-path data/gsm8k --out graded.jsonl
    sdbench verify --task humaneval --samples gens.jsonl --json
    sdbench verify --task graph_paths --samples out/MODEL/samples_sdbench_graph_paths_<time>.jsonl

Each line of the samples file is `{"problem_id": ..., "completion": ...}`: the completion is what
the model wrote after the task's prompt (see `sdbench tasks sample TASK --json` for prompts and
ids). lm-eval's own sample logs (`lm_eval --log_samples` on a task from `sdbench export lm-eval`)
are read too, the format told by the file's first record: one record per problem, its doc's `id`
the problem id and every completion in its `filtered_resps` one sample (the repeats). A problem
id is the sdbench id (`gsm8k/test/17`, `humaneval/HumanEval/0`) or the dataset's own id
(`HumanEval/0`, an MBPP task_id, a MATH-500 unique_id) where that is unambiguous. Grading is the
task's `verify` (code tasks run every completion in the sandbox). pass@k is reported for
k = 1, 2, 4, ... up to the smallest per-problem sample count; diversity is the number of distinct
correct solutions (functional classes) and of semantic classes per problem. `--out` writes one
JSON line per sample: problem_id, correct, status, functional_class.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

INDEX_SIZES = (64, 1024)   # tasks without all_problems(): problems indexed per split, growing


OWN_HINT = 'write one object per line: {"problem_id": ..., "completion": ...}'
LOGGED_HINT = ("an lm-eval samples file (samples_<task>_<time>.jsonl from --log_samples on a task from "
               "`sdbench export lm-eval`) holds one record per line with 'doc' and 'filtered_resps'")


def read_samples(path: Path, task: str | None = None) -> list[tuple[str, str]]:
    """(problem_id, completion) per sample, from sdbench's line format or lm-eval's sample log.

    The format is the first record's; any line not of it, or malformed, is a UserError naming the
    line. `task`: lm-eval records of another sdbench task are an error too.
    """
    from sdbench.cli.paths import read_text_file
    from sdbench.errors import UserError
    from sdbench.lmeval_bridge import FILTER, is_logged_sample, logged_sample

    text = read_text_file(path, "samples file",
                          'pass a JSONL file to --samples: {"problem_id": ..., "completion": ...} per line, '
                          "or lm-eval's samples_<task>_<time>.jsonl", empty_ok=True)   # "holds no samples" below
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


def grade(task: Any, samples: list[tuple[str, str]]) -> tuple[list[Any], list[dict[str, Any]]]:
    """Per-problem results (sdbench.eval ProblemResult) and one graded row per sample, in input order."""
    from sdbench.runs.record import ProblemCounts as ProblemResult

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
        correct = [v for v in verdicts if v.correct]
        results.append(ProblemResult(id=canonical, n=len(verdicts), c=len(correct),
                                     distinct_correct=len({v.functional_class for v in correct}),
                                     semantic_classes=len({v.semantic_class for v in correct}),
                                     entropy=None))   # unknown: no policy to score
    return results, rows


def summarize(task_name: str, results: list[Any]) -> dict[str, Any]:
    from sdbench.eval.metrics import problem_metrics

    metrics = problem_metrics(results)
    metrics.pop("entropy", None)
    ns = [r.n for r in results]
    return {"task": task_name, "problems": len(results), "samples": sum(ns),
            "samples_per_problem": {"min": min(ns), "max": max(ns)},
            "metrics": {k: float(v.mean()) for k, v in metrics.items()}}


def verify_command(
    task: str = typer.Option(..., "--task", help="task name, e.g. gsm8k"),
    samples: Path = typer.Option(..., "--samples", help='JSONL: {"problem_id": ..., "completion": ...} per line, '
                                                        "or lm-eval's samples_<task>_<time>.jsonl"),
    out: Path | None = typer.Option(None, "--out", help="write one graded JSON line per sample here"),
    data_path: str | None = typer.Option(None, "--data-path", help="local data for real-data tasks"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Grade existing generations: pass@k (k up to the per-problem sample count) and diversity."""
    from sdbench.cli.paths import check_output_file
    from sdbench.task import load_task

    if out is not None:
        check_output_file(out, "--out")      # before grading: a bad --out must not cost the grading
    rows_in = read_samples(samples, task)
    instance = load_task(task, data_path=data_path)
    results, graded = grade(instance, rows_in)
    summary = summarize(task, results)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r) + "\n" for r in graded))
    if as_json:
        print(json.dumps(summary, indent=1))
        return
    _print_table(summary)


def _print_table(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    spp = summary["samples_per_problem"]
    table = Table(title=f"{summary['task']}: {summary['problems']} problems, {summary['samples']} samples "
                        f"({spp['min']}..{spp['max']} per problem)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary["metrics"].items():
        table.add_row(key, f"{value:.4f}")
    Console().print(table)
