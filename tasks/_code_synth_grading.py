"""Grading of `code_synth` completions: one-`return` programs, sandboxed batch grading, behaviour classes.

Used by `sdbench.tasks.code_synth` (its docstring says what is graded and why); run the tests with
`pytest tests/test_code_synth.py tests/sandbox/test_sandbox_remembered.py`.
`grade_many` sends every distinct (program, tests) of a batch of problems to
`sdbench.sandbox.calls.call_each`: one forked process each inside one shared sandbox, which calls
`f` on the tests' inputs (and on PROBES while the program's behaviour class is unknown). Return
values come back as plain data and are compared with the expected outputs here, so a program passes
only by returning them. Per process, pass/fail and classes are remembered; timeouts are not.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sdbench.task import Verdict

if TYPE_CHECKING:
    from sdbench.sandbox.calls import JobResult

TIMEOUT_S, MEMORY_MB = 4.0, 256
PROBES: tuple[list[int], ...] = ([3, 1, 2], [5, 5, 1, 0], [7], [2, 9, 4, 4, 6], [8, 6, 3, 2], [0, 1, 2, 3],
                                 [1, 3, 3, 8], [])
PROBE_INPUTS = [(list(x),) for x in PROBES]   # argument tuples of f


def program_of(text: str) -> str | None:
    """`def f(x):` plus the completion's words joined by single spaces, or None unless one `return`."""
    body = " ".join(text.split())
    source = f"def f(x):\n    {body}\n"
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    fn = tree.body[0] if len(tree.body) == 1 else None
    if not (isinstance(fn, ast.FunctionDef) and len(fn.body) == 1 and isinstance(fn.body[0], ast.Return)
            and fn.body[0].value is not None):
        return None
    return source


def tests_source(inst_tests: Sequence[tuple[Sequence[int], Any]]) -> str:
    return "".join(f"assert f({list(x)!r}) == {y!r}\n" for x, y in inst_tests)


_BUILTINS = frozenset(dir(builtins))


def expression_shape(source: str) -> str:
    """Normalized AST shape of the returned expression (builtin names kept, variables `v`, constants `c`)."""
    node = ast.parse(source).body[0].body[0].value  # type: ignore[attr-defined]

    def walk(n: Any) -> str:
        if isinstance(n, ast.Name):
            return n.id if n.id in _BUILTINS else "v"
        if isinstance(n, ast.Constant):
            return "c"
        if n is None:
            return "_"
        if isinstance(n, (ast.operator, ast.cmpop, ast.unaryop, ast.boolop)):
            return type(n).__name__
        if isinstance(n, list):
            return ",".join(walk(c) for c in n)
        if not isinstance(n, ast.AST):
            return "c"
        parts = [walk(getattr(n, f)) for f in n._fields if f not in ("ctx", "type_comment", "is_async")]
        return f"{type(n).__name__}({','.join(p for p in parts if p)})"

    return walk(node)


_PASSED: dict[str, bool] = {}     # sha256(tests, program) -> passed, per process (the tests are deterministic)
_BEHAVIOUR: dict[str, str] = {}   # program -> io class, per process (so are the probes)
REMEMBER_AT_MOST = 1 << 16


def _remember(table: dict[str, Any], key: str, value: Any) -> None:
    table[key] = value
    if len(table) > REMEMBER_AT_MOST:
        del table[next(iter(table))]   # the oldest entry


def _test_key(tests_text: str, program: str) -> str:
    return hashlib.sha256(f"{tests_text}\0{program}".encode()).hexdigest()


def _class_of(program: str) -> str:
    """The remembered behaviour class, or one class of its own when the probes gave no output."""
    return _BEHAVIOUR.get(program) or _io_class("no probe output " + program)


def _learn_behaviour(program: str, result: JobResult, skip: int) -> None:
    row = _probe_row(result, skip)
    if row is not None:
        _remember(_BEHAVIOUR, program, _io_class(row))


def grade_many(groups: Sequence[tuple[Sequence[tuple[Sequence[int], Any]], Sequence[str]]]) -> list[list[Verdict]]:
    """Verdicts for each (hidden tests, completions) group, with every program run in one sandbox.

    Each distinct (program, tests) not graded before in this process is one job of
    `sdbench.sandbox.calls.call_each`: its own forked process inside one shared sandbox, which calls
    `f` on the tests' inputs (and on PROBES, for a program whose behaviour class is not known yet).
    The return values come back as plain data and are compared with the expected outputs here, so a
    program can pass only by returning them. Pass/fail and classes are remembered; a timeout is not.
    """
    from sdbench.sandbox.calls import Job, call_each

    parsed = [(list(tests), [program_of(t) for t in texts]) for tests, texts in groups]
    jobs: list[Job] = []
    plans: list[tuple[str | None, list[Any], str | None]] = []   # (test key, expected outputs, probed program)
    probing: set[str] = set()
    for tests, programs in parsed:
        source = tests_source(tests)
        for program in dict.fromkeys(p for p in programs if p is not None):
            key = _test_key(source, program)
            test_key = None if key in _PASSED else key
            probe = program not in _BEHAVIOUR and program not in probing
            if test_key is None and not probe:
                continue
            probing.update([program] if probe else [])
            inputs = [(list(x),) for x, _ in tests] if test_key else []
            inputs += PROBE_INPUTS if probe else []
            jobs.append(Job(program, "f", tuple(inputs)))
            plans.append((test_key, [y for _, y in tests] if test_key else [], program if probe else None))
    unsettled: dict[str, str] = {}   # test key -> timeout / died / ... (graded afresh next time)
    results = call_each(jobs, timeout=TIMEOUT_S, memory_mb=MEMORY_MB)
    for (test_key, expected, probed), result in zip(plans, results, strict=True):
        if test_key is not None:
            status = _test_status(result, expected)
            if status in ("pass", "fail"):
                _remember(_PASSED, test_key, status == "pass")
            else:
                unsettled[test_key] = status
        if probed is not None:
            _learn_behaviour(probed, result, len(expected))
    return [_verdicts(tests, programs, unsettled) for tests, programs in parsed]


def behaviours(programs: Sequence[str]) -> list[str]:
    """`io:<hash>` of each program's outputs on PROBES; the programs not seen before in one sandbox."""
    from sdbench.sandbox.calls import Job, call_each

    new = [p for p in dict.fromkeys(programs) if p not in _BEHAVIOUR]
    results = call_each([Job(p, "f", tuple(PROBE_INPUTS)) for p in new], timeout=TIMEOUT_S, memory_mb=MEMORY_MB)
    for program, result in zip(new, results, strict=True):
        _learn_behaviour(program, result, 0)
    return [_class_of(p) for p in programs]


def _test_status(result: JobResult, expected: list[Any]) -> str:
    """pass | fail | the job's failure (timeout, died, ...): passes only by returning the expected values."""
    if result.status == "broken":
        return "fail"
    if result.status != "ok":
        return result.status
    calls = result.calls[:len(expected)]
    return "pass" if all(c.kind == "ok" and c.value == y for c, y in zip(calls, expected, strict=True)) else "fail"


def _probe_row(result: JobResult, skip: int) -> list[str] | None:
    """The program's outputs on PROBES (a repr cut to 200 chars, or "raises"); None if the job failed."""
    if result.status == "broken":
        return ["broken " + result.detail]
    if result.status != "ok":
        return None
    return ["raises" if c.kind == "raises" else "ok " + c.text for c in result.calls[skip:]]


def _io_class(row: Any) -> str:
    return "io:" + hashlib.sha256(json.dumps(row).encode()).hexdigest()[:16]


def _verdicts(tests: list[Any], programs: list[str | None], unsettled: dict[str, str]) -> list[Verdict]:
    source = tests_source(tests)
    out = []
    for program in programs:
        if program is None:
            out.append(Verdict(correct=False, status="malformed"))
            continue
        key = _test_key(source, program)
        if key in unsettled or key not in _PASSED:
            out.append(Verdict(correct=False, status=unsettled.get(key, "error")))
        elif not _PASSED[key]:
            out.append(Verdict(correct=False, status="ok"))
        else:
            out.append(Verdict(correct=True, functional_class=_class_of(program),
                               semantic_class=expression_shape(program)))
    return out
