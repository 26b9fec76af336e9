"""Grading semantics of `run_tests` and `run_program` on honest programs, plus the value codec.

Good programs must pass with the usual test styles (MBPP asserts, HumanEval ``check(candidate)``,
``math.isclose``, exceptions, classes, generators, Counter results); wrong ones must fail with a
useful detail. Run: ``pytest tests/sandbox/test_sandbox_grading.py``.
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict

import pytest

from sdbench.sandbox import free_names, run_program, run_tests
from sdbench.sandbox._wire import WireError, decode, encode

GOOD = [
    ("mbpp", "def add(a, b):\n    return a + b\n", "assert add(1, 2) == 3\nassert add(-1, 1) == 0\n"),
    ("humaneval", "def inc(xs):\n    return [x + 1 for x in xs]\n",
     "METADATA = {}\n\ndef check(candidate):\n    assert candidate([1, 2]) == [2, 3]\n    assert candidate([]) == []\n"
     "\ncheck(inc)\n"),
    ("isclose", "import math\ndef area(r):\n    return math.pi * r * r\n",
     "assert math.isclose(area(2), 12.566, rel_tol=1e-3)\n"),
    ("program-imports-math", "import math\ndef hyp(a, b):\n    return math.hypot(a, b)\n",
     "assert math.isclose(hyp(3, 4), 5.0)\n"),
    ("raises", "def root(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x ** 0.5\n",
     "try:\n    root(-1)\n    raise AssertionError('no error')\nexcept ValueError:\n"
     "    pass\nassert root(4) == 2.0\n"),
    ("class", "class Stack:\n    def __init__(self):\n        self.items = []\n    def push(self, x):\n"
     "        self.items.append(x)\n    def top(self):\n        return self.items[-1]\n",
     "s = Stack()\ns.push(3)\nassert s.top() == 3\nassert s.items == [3]\n"),
    ("generator", "def evens(n):\n    yield from range(0, n, 2)\n", "assert list(evens(7)) == [0, 2, 4, 6]\n"),
    ("counter", "from collections import Counter\ndef freq(s):\n    return Counter(s)\n",
     "assert freq('abca') == {'a': 2, 'b': 1, 'c': 1}\n"),
    ("values", "def v():\n    return (None, True, 2**100, -0.5, 'é', b'x', {1: [2, (3,)]}, {4}, frozenset(), 1j)\n",
     "assert v() == (None, True, 2**100, -0.5, 'é', b'x', {1: [2, (3,)]}, {4}, frozenset(), 1j)\n"
     "assert type(v()[1]) is bool\n"),
    ("main-guard", "def f(x):\n    return 2 * x\n\nif __name__ == '__main__':\n    print(f(int(input())))\n",
     "assert f(2) == 4\n"),
    ("function-named-like-a-module", "def random(n):\n    return [4] * n\n", "assert random(2) == [4, 4]\n"),
    ("in-place", "def sort_in_place(xs, d):\n    xs.sort()\n    d['n'] = len(xs)\n",
     "xs = [3, 1, 2]\nd = {}\nassert sort_in_place(xs, d) is None\nassert xs == [1, 2, 3] and d == {'n': 3}\n"),
    ("import-solution", "def f(x):\n    return -x\n",
     "from solution import f as g\nimport solution\nassert g(1) == -1 and solution.f(2) == -2\n"),
    ("loops-in-tests", "def sq(x):\n    return x * x\n", "for i in range(20):\n    assert sq(i) == i * i\n"),
    ("len-contains", "class Bag:\n    def __init__(self):\n        self.xs = [1, 2]\n    def __len__(self):\n"
     "        return len(self.xs)\n    def __contains__(self, x):\n        return x in self.xs\n"
     "def make():\n    return Bag()\n", "assert len(make()) == 2\nassert 2 in make()\nassert 5 not in make()\n"),
]

BAD = [
    ("wrong", "def add(a, b):\n    return a - b\n", "assert add(1, 2) == 3\n", "fail", "AssertionError"),
    ("missing", "def other():\n    pass\n", "assert add(1, 2) == 3\n", "fail", "NameError"),
    ("syntax", "def add(a, b)\n    return a + b\n", "assert add(1, 2) == 3\n", "error", "SyntaxError"),
    ("crash-at-import", "raise RuntimeError('boom')\n", "assert add(1, 2) == 3\n", "error", "RuntimeError"),
    ("slow", "def add(a, b):\n    while True:\n        pass\n", "assert add(1, 2) == 3\n", "timeout", "timeout"),
    ("memory", "def add(a, b):\n    return bytearray(1 << 33)\n", "assert add(1, 2) == 3\n", "memory", "Memory"),
    ("stopiteration", "def ok(x):\n    raise StopIteration\n", "assert all(map(ok, [1, 2]))\n", "fail", "Stop"),
    ("fake-stdlib-module", "import types\nmath = types.SimpleNamespace(isclose=lambda *a, **k: True)\n"
     "def area(r):\n    return 0\n", "assert math.isclose(area(1), 3.14159)\n", "fail", "AssertionError"),
    ("nan-is-not-equal", "def f():\n    return float('nan')\n", "assert f() == f()\n", "fail", "AssertionError"),
]


@pytest.mark.parametrize(("name", "program", "tests"), GOOD, ids=[g[0] for g in GOOD])
def test_good_programs_pass(name: str, program: str, tests: str) -> None:
    verdict = run_tests(program, tests, timeout=5)
    assert verdict.passed, verdict
    assert verdict.status == "pass"


@pytest.mark.parametrize(("name", "program", "tests", "status", "detail"), BAD, ids=[b[0] for b in BAD])
def test_bad_programs_fail(name: str, program: str, tests: str, status: str, detail: str) -> None:
    verdict = run_tests(program, tests, timeout=2, memory_mb=256)
    assert not verdict.passed
    assert verdict.status == status, verdict
    assert detail in verdict.detail + verdict.stderr_tail, verdict


def test_partial_credit() -> None:
    program = "def f(x):\n    return 2 * x if x < 5 else 0\n"
    tests = "import math\nassert f(1) == 2\nassert f(9) == 18\nassert f(2) == 4\nK = 3\nassert f(K) == 6\n"
    verdict = run_tests(program, tests)
    assert not verdict.passed and verdict.status == "fail"
    assert (verdict.tests_passed, verdict.tests_total) == (3, 4)
    assert "line 3" in verdict.detail
    good = run_tests("def f(x):\n    return 2 * x\n", tests)
    assert good.passed and (good.tests_passed, good.tests_total) == (4, 4)
    dead = run_tests("import os\ndef f(x):\n    os._exit(0)\n", tests)
    assert (dead.passed, dead.tests_passed) == (False, 0)


def test_tests_must_parse() -> None:
    with pytest.raises(SyntaxError):
        run_tests("def f(): pass", "assert f( ==")


def test_free_names() -> None:
    tests = "import math\nfrom os import path as p\ndef check(c):\n    assert c(1) == K\n[x for x in y]\ncheck(f)\n"
    assert free_names(tests) == ["K", "f", "y"]


def test_run_program_results() -> None:
    ok = run_program("import sys\nprint(sys.stdin.read().upper())\nprint('e', file=sys.stderr)", stdin="hi")
    assert (ok.status, ok.exit_code, ok.stdout_tail, ok.stderr_tail) == ("ok", 0, "HI\n", "e\n")
    assert "seccomp" in ok.layers or ok.layers
    assert run_program("import sys; sys.exit(3)").exit_code == 3
    err = run_program("1/0")
    assert err.status == "error" and "ZeroDivisionError" in err.stderr_tail
    assert run_program("x = bytearray(1 << 32)", memory_mb=256).status == "memory"
    slow = run_program("while True: pass", timeout=1)
    assert slow.status == "timeout" and 0.9 < slow.duration_s < 3
    big = run_program("print('y' * 100000)")
    assert big.stdout_bytes == 100001 and len(big.stdout_tail) <= 4096


def test_layer_failure_fails_closed() -> None:
    from sdbench.sandbox.probe import sandbox_info
    from sdbench.sandbox.spawn import Limits, classify, start

    child = start("run", {"prog.py": "print('ran')"}, Limits(nofile=10**9), info=sandbox_info(),
                  extra={"program": "prog.py"})
    try:
        child.wait(time.monotonic() + 10)
        status, rc, detail = classify(child, True)
        assert (status, rc) == ("error", 121) and "rlimits" in detail
        assert child.tail("stdout")[0] == ""
    finally:
        child.cleanup()


class EqInt(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


class EqList(list):  # type: ignore[type-arg]
    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter([99])


def test_codec_roundtrip() -> None:
    values = [None, True, False, 0, -(2**80), 1.5, math.inf, -0.0, "s\udcff", b"\x00", [1, [2]], (1,),
              {1: "a", (2, 3): None}, {1, 2}, frozenset({3}), 2 + 3j]
    for value in values:
        out = decode(encode(value))
        assert out == value and type(out) is type(value)
    assert math.isnan(decode(encode(math.nan)))


def test_codec_strips_subclasses() -> None:
    out = decode(encode(EqInt(5)))
    assert type(out) is int and out == 5 and out != 4
    assert decode(encode(EqList([1, 2]))) == [1, 2]  # the base type's iterator, not the override
    assert decode(encode(Counter("aab"))) == {"a": 2, "b": 1}
    assert type(decode(encode(OrderedDict(a=1)))) is dict


def test_codec_refuses_objects_and_garbage() -> None:
    with pytest.raises(WireError):
        encode(object())
    deep: list[object] = []
    deep.append(deep)
    with pytest.raises(WireError):
        encode(deep)
    assert decode(encode(object(), refs=lambda o: 7), make_ref=lambda i: ("ref", i)) == ("ref", 7)
    for bad in [1.5, [1], {"x": 1, "y": 2}, {"r": 1}, {"zz": 1}]:
        with pytest.raises(WireError):
            decode(bad)
