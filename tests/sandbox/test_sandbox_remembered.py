"""Remembered verdicts (`run_tests_remembered`, code_synth's): repeats skip the sandbox, flaky ones do not stick.

Run: pytest tests/sandbox/test_sandbox_remembered.py
"""

from __future__ import annotations

import pytest

from sdbench.sandbox import grading, run_tests_remembered

TESTS = "assert f(2) == 4\nassert f(0) == 0"


@pytest.fixture(autouse=True)
def empty_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grading, "_REMEMBERED", type(grading._REMEMBERED)())


def _no_sandbox(*args: object, **kwargs: object) -> grading.SandboxRun:
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

    def fake(program: str, tests: str, **kw: object) -> grading.SandboxRun:
        calls.append(program)
        return grading.SandboxRun(passed=True, status="pass", detail="", duration_s=0.0, stdout_tail="",
                               stderr_tail="", layers=())

    monkeypatch.setattr(grading, "run_tests", fake)
    for program in ("a", "b", "c", "c", "a"):
        run_tests_remembered(program, TESTS)
    assert calls == ["a", "b", "c", "a"]   # "a" was the least recently used when "c" came in


def _counting_call_each(monkeypatch: pytest.MonkeyPatch, fail: str | None = None) -> list[list[str]]:
    """Record the programs of every `call_each` batch; jobs whose program contains `fail` time out."""
    from sdbench.sandbox import calls

    batches: list[list[str]] = []
    real = calls.call_each

    def counting(jobs, **kw):  # noqa: ANN001, ANN003, ANN202
        batches.append([j.program for j in jobs])
        results = real(jobs, **kw)
        return [calls.JobResult("timeout") if fail and fail in j.program else r
                for j, r in zip(jobs, results, strict=True)]

    monkeypatch.setattr(calls, "call_each", counting)
    return batches


def test_code_synth_grades_each_program_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from sdbench.tasks import _code_synth_grading as code_synth

    monkeypatch.setattr(code_synth, "_PASSED", {})
    monkeypatch.setattr(code_synth, "_BEHAVIOUR", {})
    batches = _counting_call_each(monkeypatch, fail="reversed")
    tests_a = [([3, 1, 2], [1, 2, 3]), ([5, 4], [4, 5])]
    tests_b = [([2, 1], [1, 2])]
    group_a = ["return sorted ( x )", "return x", "return sorted ( x )", "return list ( reversed ( x ) )"]
    group_b = ["return sorted ( x )", "return x [ : : -1 ]"]
    first = code_synth.grade_many([(tests_a, group_a), (tests_b, group_b)])
    assert len(batches) == 1 and len(batches[0]) == 5             # one sandbox; each (program, tests) once
    assert [v.correct for v in first[0]] == [True, False, True, False]
    assert first[0][3].status == "timeout" and [v.correct for v in first[1]] == [True, True]
    again = code_synth.grade_many([(tests_a, group_a), (tests_b, group_b)])
    assert batches[1] == [code_synth.program_of("return list ( reversed ( x ) )")]   # only the timeout again
    assert again[0][:3] == first[0][:3] and again[1] == first[1]
    # the same program on other tests is graded again, but its behaviour class is not probed again
    code_synth.grade_many([([([1, 1], [1, 1])], ["return sorted ( x )"])])
    assert batches[2] == [code_synth.program_of("return sorted ( x )")]
    sort = code_synth.program_of("return sorted ( x )") or ""
    assert code_synth.behaviours([sort])[0] == first[0][0].functional_class
    assert len(batches) == 4 and batches[3] == []                  # behaviours: already known, nothing to run


def test_code_synth_behaviour_classes_are_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from sdbench.tasks import _code_synth_grading as code_synth

    monkeypatch.setattr(code_synth, "_BEHAVIOUR", {})
    batches = _counting_call_each(monkeypatch, fail="[::-1]")
    programs = ["def f(x):\n    return sorted(x)", "def f(x):\n    return sorted(x, reverse=True)"]
    first = code_synth.behaviours(programs)
    assert first[0] != first[1] and all(c.startswith("io:") for c in first)
    third = "def f(x):\n    return list(reversed(sorted(x)))"   # same behaviour as the second
    again = code_synth.behaviours([programs[1], third, programs[0]])
    assert batches[1] == [third]                      # only the new program went to the sandbox
    assert again == [first[1], first[1], first[0]]
    broken = "def f(x):\n    return x[::-1]"             # a failed probe run is not remembered
    assert code_synth.behaviours([broken])[0].startswith("io:") and broken not in code_synth._BEHAVIOUR
