"""Grading a program against assert-style tests, with the verdict decided outside the program.

`run_tests(program, tests)` starts two sandboxes connected by two pipes:

- the *program* sandbox (`serve` mode) runs the program, then answers requests: "give me global
  `f`", "call reference 3 with these arguments", "read attribute `x`". Answers are plain data
  (exact-type checked, see `_wire.py`) or opaque references;
- the *judge* sandbox runs the trusted tests, where every name the tests use but do not define
  (and that is no builtin and no stdlib module) forwards to the program. No program code runs in
  the judge, so ``==``, ``assert`` and builtins there are the real ones; the judge's report goes
  to a file only the parent can read.

So `os._exit(0)`, `sys.exit(0)`, always-equal objects (they arrive as references or as their base
value), patched ``assert``/builtins and printed "PASSED" lines all fail: the only way to pass is
to return values equal to what the tests expect. No nonce is needed because the program never
holds the channel the verdict travels on. Example:
``run_tests("def f(x): return 2 * x", "assert f(2) == 4").passed``.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import os
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

from sdbench.sandbox.probe import sandbox_info
from sdbench.sandbox.spawn import Child, Limits, classify, start


@dataclass(frozen=True)
class SandboxRun:
    """One program run against its tests in the sandbox (the task turns it into a `sdbench.task.Verdict`).

    `status`: pass | fail | error (program crashed before serving) | timeout | memory | killed.

    `passed` is the verdict; `tests_passed`/`tests_total` count top-level test statements for partial
    credit (0 passed when the run timed out, since the judge is killed before it reports)."""

    passed: bool
    status: str
    detail: str
    duration_s: float
    stdout_tail: str
    stderr_tail: str
    layers: tuple[str, ...]
    exit_code: int | None = None
    tests_passed: int = 0     # top-level asserts / bare calls (e.g. `check(f)`) that ran clean
    tests_total: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = list(self.layers)
        return d


def free_names(tests: str) -> list[str]:
    """Names the tests read but never bind and that are not builtins: the program must supply them."""
    return sorted(_scan(ast.parse(tests))[0])


def _scan(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(free names, free names used other than as the base of an attribute access)."""
    loaded: set[str] = set()
    bound: set[str] = set()
    attr_bases = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
    plain: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and id(node) not in attr_bases:
            plain.add(node.id)
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
    free = loaded - bound - set(dir(builtins))
    return free, plain & free


def run_tests(program: str, tests: str, *, timeout: float = 10.0, memory_mb: int = 512) -> SandboxRun:
    """Run `program`, then the assert-style `tests` against it; passes only if every test statement runs.

    `tests` is trusted Python (asserts, imports, helper functions, ``check(candidate)`` patterns,
    ``from solution import f``); it raises `SyntaxError` if it does not parse. The program runs as
    module ``solution`` (its ``if __name__ == "__main__"`` block stays quiet). Values cross as plain
    data: results that are other objects (class instances, generators) arrive as references that
    can be called, iterated, indexed, ``len``/``str``/``bool``-ed and read, but compare equal only to
    themselves; list/dict/set arguments changed in place are synced back. The deadline covers
    program start-up and all tests.
    """
    tree = ast.parse(tests)
    free, plain = _scan(tree)
    # Stdlib modules the tests use only as `name.attr` without importing them (`math.isclose` when
    # the tests rely on the program's `import math`): the judge imports its own copy, or the
    # program could answer with a `math.isclose` that always says yes.
    modules = sorted(n for n in free - plain if n in sys.stdlib_module_names)
    names = sorted(free)
    limits = Limits(timeout=timeout, memory_mb=memory_mb)
    t0 = time.monotonic()
    req_r, req_w = os.pipe2(os.O_CLOEXEC)
    resp_r, resp_w = os.pipe2(os.O_CLOEXEC)
    prog: Child | None = None
    judge: Child | None = None
    try:
        prog = start("serve", {"prog.py": program}, limits, info=sandbox_info(), fds={"req": req_r, "resp": resp_w},
                     extra={"program": "prog.py"})
        os.close(req_r)
        os.close(resp_w)
        req_r = resp_w = -1
        judge = start("judge", {"tests.py": tests}, limits, info=sandbox_info(), fds={"req": req_w, "resp": resp_r},
                      extra={"tests": "tests.py", "names": names, "modules": modules})
        os.close(req_w)
        os.close(resp_r)
        req_w = resp_r = -1
        deadline = t0 + timeout
        judge_done = judge.wait(deadline)
        prog_done = judge_done and prog.wait(min(deadline, time.monotonic() + 0.2))
        if not prog_done:
            prog.kill()
            prog.proc.wait()
        duration = time.monotonic() - t0
        report = judge.report() if judge_done else None
        total = sum(isinstance(stmt, (ast.Assert, ast.Expr)) for stmt in tree.body)
        return _verdict(prog, judge, report, judge_done, prog_done, round(duration, 4), total)
    finally:
        for fd in (req_r, req_w, resp_r, resp_w):
            if fd >= 0:
                os.close(fd)
        for child in (judge, prog):
            if child is not None:
                child.cleanup()


_REMEMBERED: OrderedDict[str, SandboxRun] = OrderedDict()
_REMEMBERED_LOCK = threading.Lock()
REMEMBER_AT_MOST = 1 << 16   # verdicts kept per process (programs are short; ~100 MB at most)


def run_tests_remembered(program: str, tests: str, *, timeout: float = 10.0, memory_mb: int = 512) -> SandboxRun:
    """`run_tests`, graded once per process for a given (program, tests, limits).

    For deterministic tests a program's pass/fail verdict is a function of its text: on-policy
    training samples the same programs again and again (more so as the policy collapses), so
    re-running them only costs sandbox start-ups. Only "pass" and "fail" are remembered: a
    timeout, memory or kill verdict can depend on the machine's load and is graded afresh.
    Still runs in the sandbox; this only skips the repeats."""
    key = hashlib.sha256(f"{timeout}\0{memory_mb}\0{tests}\0{program}".encode()).hexdigest()
    with _REMEMBERED_LOCK:
        if key in _REMEMBERED:
            _REMEMBERED.move_to_end(key)
            return _REMEMBERED[key]
    verdict = run_tests(program, tests, timeout=timeout, memory_mb=memory_mb)
    if verdict.status in ("pass", "fail"):
        with _REMEMBERED_LOCK:
            _REMEMBERED[key] = verdict
            while len(_REMEMBERED) > REMEMBER_AT_MOST:
                _REMEMBERED.popitem(last=False)
    return verdict


def _verdict(prog: Child, judge: Child, report: dict[str, Any] | None, judge_done: bool, prog_done: bool,
             duration: float, total: int) -> SandboxRun:
    out, _ = prog.tail("stdout")
    err, _ = prog.tail("stderr")
    npassed = report.get("tests_passed") if isinstance(report, dict) else 0
    common = {"duration_s": duration, "stdout_tail": out, "stderr_tail": err, "layers": prog.info.active(),
              "exit_code": prog.proc.returncode, "tests_total": total,
              "tests_passed": npassed if type(npassed) is int and 0 <= npassed <= total else 0}
    if judge_done and isinstance(report, dict) and report.get("passed") is True:
        return SandboxRun(passed=True, status="pass", detail="", **common)
    if not judge_done:
        return SandboxRun(passed=False, status="timeout", detail="wall-clock timeout", **common)
    error = str(report.get("error", "")) if isinstance(report, dict) else ""
    if not isinstance(report, dict):
        jstatus, _, jdetail = classify(judge, True)
        jerr = judge.tail("stderr")[0].strip().splitlines()
        return SandboxRun(passed=False, status="error",
                       detail=f"judge failed ({jstatus}: {jdetail}): {jerr[-1] if jerr else 'no report'}", **common)
    line = report.get("line") or 0
    where = f" (tests line {line})" if line else ""
    pstatus, _, pdetail = classify(prog, True) if prog_done else ("running", None, "")
    if "MemoryError" in error or pstatus == "memory":
        return SandboxRun(passed=False, status="memory", detail=error + where, **common)
    if pstatus == "timeout":
        return SandboxRun(passed=False, status="timeout", detail=pdetail, **common)
    if pstatus == "killed":
        return SandboxRun(passed=False, status="killed", detail=f"{pdetail}; {error}{where}", **common)
    if error.startswith("RemoteGone") and pstatus == "error" and "Traceback" in err:
        return SandboxRun(passed=False, status="error", detail=f"program failed: {err.strip().splitlines()[-1]}",
                       **common)
    return SandboxRun(passed=False, status="fail", detail=error + where, **common)
