"""Shared grading of the code tasks (humaneval, mbpp): sandboxed tests, behaviour and AST classes.

Generated code never runs in this process: correctness is `sdbench.sandbox.run_tests(program,
tests)` (a separate judge process decides, so printing "PASSED", `sys.exit(0)` or patching
`assert` cannot pass). This module only *parses* generated code (`ast.parse` runs nothing).

Functional class — behaviour on probe inputs: the trusted tests' calls of the entry function with
literal arguments are mutated (ints ±1 / 0 / negated, strings and lists reversed / shortened /
emptied, ...) into up to `MAX_PROBES` new inputs the tests do not check; a correct program then
runs on them in the sandbox (`run_program`) and its outputs (or exception types) are hashed:
`io:<hash>`. Two correct programs that agree on the tests but differ on edge cases are different
solutions. When no literal calls exist, the class is `ast:<hash>` of the program's normalized AST
(docstrings and annotations dropped, defined names renamed in order of first definition). The probe
harness runs inside the program's sandbox, so a program could forge its own class; that only
affects diversity counts, never correctness, which the judge alone decides.
Semantic class — the normalized AST shape: the set of salient constructs the program uses (loop
kinds, comprehensions, recursion, sorting, slicing, try, imports), e.g. `comprehension+sorted`.
Run the tests with `pytest tests/test_real_tasks.py`.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from sdbench.task import Problem, Verdict

MAX_PROBES = 8
TEST_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 5.0
MEMORY_MB = 512
GRADING_THREADS = 2 * (os.cpu_count() or 1)
FENCE = re.compile(r"```[ \t]*(?:python|py|Python|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
STOP_SEQUENCES = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert ", "\n```")
BUILTIN_MARKS = {"map", "filter", "zip", "enumerate", "sum", "max", "min", "any", "all", "reduce", "set", "dict",
                 "Counter", "reversed"}


def extract_code(text: str) -> str:
    """The code in a completion: the fenced block(s) of a chat answer, else the text itself, else
    (prose around unfenced code) the longest parseable run of lines from the first top-level
    `def` / `import` / `from` / `class` line."""
    blocks = FENCE.findall(text)
    if blocks:
        return "\n\n".join(b.strip("\n") for b in blocks)
    text = text.replace("[BEGIN]", "").replace("[DONE]", "")
    if parses(text) is not None:
        return text
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith(("def ", "import ", "from ", "class "))), None)
    if first is None:
        return text
    for end in range(len(lines), first, -1):
        code = "\n".join(lines[first:end])
        if parses(code) is not None:
            return code
    return text


def truncate_body(completion: str) -> str:
    """A raw function-body continuation cut where the function ends (the HumanEval stop sequences)."""
    cut = len(completion)
    for stop in STOP_SEQUENCES:
        at = completion.find(stop)
        if at >= 0:
            cut = min(cut, at)
    return completion[:cut]


def parses(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def defines(tree: ast.Module | None, name: str) -> bool:
    """Whether `tree` defines function `name` at top level."""
    return tree is not None and any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name
                                    for n in tree.body)


# ---------------------------------------------------------------- grading
def grade(problem: Problem, completions: Sequence[str], program_of: Callable[[Problem, str], str],
          tests: str, probes: list[tuple[tuple, dict]], entry: str, setup: str = "") -> list[Verdict]:
    """Verdicts of completions: tests in the sandbox; classes of the correct ones (identical programs once).

    Distinct programs are graded concurrently: each sandbox run is a child process the thread only
    waits on, so a few threads per core overlap process start-up and the judge's round trips."""
    from concurrent.futures import ThreadPoolExecutor

    programs = [program_of(problem, text) for text in completions]
    unique = list(dict.fromkeys(programs))

    def one(program: str) -> Verdict:
        return grade_program(program, tests, probes, entry, setup)

    if len(unique) == 1:
        verdicts = [one(unique[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(len(unique), GRADING_THREADS)) as pool:
            verdicts = list(pool.map(one, unique))
    by_program = dict(zip(unique, verdicts, strict=True))
    return [by_program[p] for p in programs]


def grade_program(program: str, tests: str, probes: list[tuple[tuple, dict]], entry: str, setup: str = "") -> Verdict:
    """One program: syntax check here (parsing runs nothing), tests and probes in the sandbox."""
    from sdbench.sandbox import run_tests_remembered

    tree = parses(program)
    if tree is None:
        return Verdict(correct=False, status="syntax_error")
    result = run_tests_remembered(program, tests, timeout=TEST_TIMEOUT_S, memory_mb=MEMORY_MB)
    if not result.passed:   # a failed test is a graded wrong answer ("ok"); crashes keep their status
        return Verdict(correct=False, status="ok" if result.status == "fail" else result.status)
    functional = behaviour(program, entry, probes, setup) if probes else "ast:" + ast_hash(tree, entry)
    return Verdict(correct=True, functional_class=functional, semantic_class=ast_shape(tree))


# ---------------------------------------------------------------- probes (behaviour class)
def literal_calls(tests: str, callee: str) -> list[tuple[tuple, dict]]:
    """(args, kwargs) of every call `callee(...)` in the tests whose arguments are all literals."""
    tree = parses(tests)
    found: list[tuple[tuple, dict]] = []
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == callee:
            try:
                args = tuple(ast.literal_eval(a) for a in node.args)
                kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg is not None}
            except (ValueError, TypeError, SyntaxError, RecursionError):
                continue
            if len(kwargs) == len(node.keywords) and not any(isinstance(a, ast.Starred) for a in node.args):
                found.append((args, kwargs))
    return found


def _variants(value: Any) -> list[Any]:
    """Nearby inputs of one argument value; small, so that probes stay fast."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, 0, -value] if abs(value) < 10_000 else [value + 1]
    if isinstance(value, float):
        return [value + 0.5, -value, 0.0]
    if isinstance(value, str):
        return [value[::-1], value[:-1], "", value + value[:1]]
    if isinstance(value, (list, tuple)):
        kind = type(value)
        return [kind(reversed(value)), kind(value[:-1]), kind(), kind(list(value) + list(value[:1]))]
    return []


def make_probes(calls: list[tuple[tuple, dict]], key: str) -> list[tuple[tuple, dict]]:
    """Up to MAX_PROBES mutated calls (one argument changed), none equal to a tested call; seeded by key."""
    from sdbench.task import stable_rng

    seen = {repr(c) for c in calls}
    candidates: list[tuple[tuple, dict]] = []
    for args, kwargs in calls:
        for i, arg in enumerate(args):
            for variant in _variants(arg):
                probe = (args[:i] + (variant,) + args[i + 1:], kwargs)
                if repr(probe) not in seen:
                    seen.add(repr(probe))
                    candidates.append(probe)
    rng = stable_rng("probes", key)
    return rng.sample(candidates, min(MAX_PROBES, len(candidates)))


HARNESS = '''
import json, signal, sys
def _canon(x, d=0):
    if isinstance(x, float):
        return repr(round(x, 6))
    if isinstance(x, (list, tuple)) and d < 4:
        return type(x).__name__ + "[" + ",".join(_canon(i, d + 1) for i in x) + "]"
    if isinstance(x, dict) and d < 4:
        return "dict{" + ",".join(sorted(_canon(k, d + 1) + ":" + _canon(v, d + 1) for k, v in x.items())) + "}"
    if isinstance(x, (set, frozenset)) and d < 4:
        return "set{" + ",".join(sorted(_canon(i, d + 1) for i in x)) + "}"
    return repr(x)[:300]
def _alarm(signum, frame):
    raise TimeoutError("probe")
def _main():
    g = {"__name__": "__sdbench_candidate__"}
    exec(compile(SETUP, "setup.py", "exec"), g)
    exec(compile(PROGRAM, "prog.py", "exec"), g)
    f = g[ENTRY]
    outs = []
    signal.signal(signal.SIGALRM, _alarm)
    for args, kwargs in PROBES:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.5)
            outs.append("ok " + _canon(f(*args, **kwargs)))
        except BaseException as e:
            outs.append("raises " + type(e).__name__)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    sys.stdout.write("\\n" + NONCE + " " + json.dumps(outs) + "\\n")
    sys.stdout.flush()
_main()
'''


def behaviour(program: str, entry: str, probes: list[tuple[tuple, dict]], setup: str = "") -> str:
    """`io:<hash>` of the program's outputs on the probe inputs, computed in the sandbox."""
    from sdbench.sandbox import run_program

    nonce = secrets.token_hex(16)
    source = (f"PROGRAM = {program!r}\nSETUP = {setup!r}\nENTRY = {entry!r}\nNONCE = {nonce!r}\n"
              f"PROBES = {probes!r}\n" + HARNESS)
    result = run_program(source, timeout=PROBE_TIMEOUT_S, memory_mb=MEMORY_MB)
    outputs: Any = f"no probe output ({result.status})"
    for line in reversed(result.stdout_tail.splitlines()):
        if line.startswith(nonce + " "):
            try:
                outputs = json.loads(line[len(nonce) + 1:])
            except ValueError:
                pass
            break
    return "io:" + hashlib.sha256(json.dumps(outputs).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- AST classes
class _Normalize(ast.NodeTransformer):
    """Drop docstrings and annotations; rename defined names (not `keep`) to v0, v1, ... in order."""

    def __init__(self, keep: str) -> None:
        self.names: dict[str, str] = {keep: keep}

    def _name(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names) - 1}")

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name = self._name(node.name)
        node.returns = None
        if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            node.body = node.body[1:] or [ast.Pass()]
        self.generic_visit(node)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = self._name(node.arg)
        node.annotation = None
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Store) or node.id in self.names:
            node.id = self._name(node.id)
        return node


def ast_hash(tree: ast.Module, keep: str) -> str:
    """Hash of the normalized AST: same code up to names, docstrings, annotations and layout."""
    copy = ast.parse(ast.unparse(tree))
    normalized = _Normalize(keep).visit(copy)
    return hashlib.sha256(ast.dump(normalized, annotate_fields=False).encode()).hexdigest()[:16]


def ast_shape(tree: ast.Module) -> str:
    """The set of salient constructs a program uses, e.g. 'for+if+sorted' (its semantic class)."""
    marks: set[str] = set()
    functions = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.AsyncFor)):
            marks.add("for")
        elif isinstance(node, ast.While):
            marks.add("while")
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            marks.add("comprehension")
        elif isinstance(node, ast.Lambda):
            marks.add("lambda")
        elif isinstance(node, ast.Try):
            marks.add("try")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            marks.update("import:" + m.split(".")[0] for m in mods)
        elif isinstance(node, ast.Slice):
            marks.add("slice")
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if called in ("sorted", "sort"):
                marks.add("sorted")
            elif called in functions and _inside_function_named(tree, node, called):
                marks.add("recursion")
            elif called in BUILTIN_MARKS:
                marks.add(called)
    return "+".join(sorted(marks)) or "straight-line"


def _inside_function_named(tree: ast.Module, call: ast.Call, name: str) -> bool:
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name == name:
            if any(n is call for n in ast.walk(fn)):
                return True
    return False
