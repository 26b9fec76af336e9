"""`run_tests_remembered` and code_synth's behaviour classes: repeats skip the sandbox, flaky verdicts do not stick.

Run: pytest tests/sandbox/test_sandbox_remembered.py
"""

from __future__ import annotations

import pytest

from sdbench.sandbox import grading, run_tests_remembered

TESTS = "assert f(2) == 4\nassert f(0) == 0"


@pytest.fixture(autouse=True)
def empty_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grading, "_REMEMBERED", type(grading._REMEMBERED)())


def _no_sandbox(*args: object, **kwargs: object) -> grading.Verdict:
    raise AssertionError("the sandbox ran again for a remembered verdict")


def test_pass_and_fail_are_graded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    good, bad = "def f(x): return 2 * x", "def f(x): return x + 2"
    first_good, first_bad = run_tests_remembered(good, TESTS), run_tests_remembered(bad, TESTS)
    assert (first_good.status, first_bad.status) == ("pass", "fail")
    monkeypatch.setattr(grading, "run_tests", _no_sandbox)
    assert run_tests_remembered(good, TESTS) == first_good
    assert run_tests_remembered(bad, TESTS) == first_bad
    with pytest.raises(AssertionError, match="ran again"):   # other tests or limits: a different key
        run_tests_remembered(good, TESTS + "\nassert f(1) == 2")
    with pytest.raises(AssertionError, match="ran again"):
        run_tests_remembered(good, TESTS, timeout=3.0)


def test_timeouts_are_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    slow = "def f(x):\n    while True:\n        pass"
    verdict = run_tests_remembered(slow, TESTS, timeout=1.0)
    assert verdict.status == "timeout" and not verdict.passed
    monkeypatch.setattr(grading, "run_tests", _no_sandbox)
    with pytest.raises(AssertionError, match="ran again"):
        run_tests_remembered(slow, TESTS, timeout=1.0)


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grading, "REMEMBER_AT_MOST", 2)
    calls: list[str] = []

    def fake(program: str, tests: str, **kw: object) -> grading.Verdict:
        calls.append(program)
        return grading.Verdict(passed=True, status="pass", detail="", duration_s=0.0, stdout_tail="",
                               stderr_tail="", layers=())

    monkeypatch.setattr(grading, "run_tests", fake)
    for program in ("a", "b", "c", "c", "a"):
        run_tests_remembered(program, TESTS)
    assert calls == ["a", "b", "c", "a"]   # "a" was the least recently used when "c" came in


def test_code_synth_behaviour_classes_are_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from sdbench.tasks import code_synth

    monkeypatch.setattr(code_synth, "_BEHAVIOUR", {})
    programs = ["def f(x):\n    return sorted(x)", "def f(x):\n    return sorted(x, reverse=True)"]
    first = code_synth.behaviours(programs)
    assert first[0] != first[1] and all(c.startswith("io:") for c in first)
    probed: list[list[str]] = []
    real = code_synth._probe_rows
    monkeypatch.setattr(code_synth, "_probe_rows", lambda ps: probed.append(list(ps)) or real(ps))
    third = "def f(x):\n    return list(reversed(sorted(x)))"   # same behaviour as the second
    again = code_synth.behaviours([programs[1], third, programs[0]])
    assert probed == [[third]]                      # only the new program went to the sandbox
    assert again == [first[1], first[1], first[0]]
    monkeypatch.setattr(code_synth, "_probe_rows", lambda ps: None)   # a failed probe run is not remembered
    broken = "def f(x):\n    return x[::-1]"
    assert code_synth.behaviours([broken])[0].startswith("io:") and broken not in code_synth._BEHAVIOUR
