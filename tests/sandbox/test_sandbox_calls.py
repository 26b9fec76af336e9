"""`call_each`: many programs in one sandbox, each in its own process; values come back as exact plain data.

Run: pytest tests/sandbox/test_sandbox_calls.py

What must hold: one sandbox start-up per batch; a job's program cannot change another job's result
(not through shared state, not by writing to inherited fds, not by killing the harness inside);
return values cross by exact type, so always-equal objects can equal nothing; a hanging or
flooding job fails alone, within its own deadline.
"""

from __future__ import annotations

import time

import pytest

from sdbench.sandbox import calls
from sdbench.sandbox.calls import Job, call_each

SORT = "def f(x):\n    return sorted(x)\n"
ARGS = (([3, 1, 2],), ([],))


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many sandboxes `call_each` started, and with how many jobs each."""
    seen: list[int] = []
    real = calls.start

    def counting(mode: str, inputs: dict[str, str], *args: object, **kwargs: object):  # noqa: ANN202
        seen.append(inputs["jobs.json"].count('"program"'))
        return real(mode, inputs, *args, **kwargs)

    monkeypatch.setattr(calls, "start", counting)
    return seen


def test_values_cross_by_exact_type_and_exceptions_by_name(starts: list[int]) -> None:
    programs = {
        "sorted": (SORT, [[1, 2, 3], []]),
        "tuple": ("def f(x):\n    return tuple(x)\n", [(3, 1, 2), ()]),
        "nested": ("def f(x):\n    return {'n': len(x), 's': set(x), 'b': bool(x), 'z': None, 'h': 2**70}\n",
                   [{"n": 3, "s": {1, 2, 3}, "b": True, "z": None, "h": 2**70},
                    {"n": 0, "s": set(), "b": False, "z": None, "h": 2**70}]),
    }
    jobs = [Job(src, "f", ARGS) for src, _ in programs.values()]
    jobs.append(Job("def f(x):\n    return max(x)\n", "f", ARGS))
    results = call_each(jobs, timeout=5.0, memory_mb=256)
    assert starts == [len(jobs)]                                  # one sandbox for the whole batch
    for result, (_, expected) in zip(results, programs.values(), strict=False):
        assert result.status == "ok"
        values = [c.value for c in result.calls]
        assert values == expected and [type(v) for v in values] == [type(v) for v in expected]
    assert [c.kind for c in results[3].calls] == ["ok", "raises"] and results[3].calls[1].text == "ValueError"
    assert results[1].calls[0].value != [3, 1, 2]                 # a tuple is not the list it looks like


def test_objects_that_claim_equality_equal_nothing() -> None:
    always_equal = "class E:\n    def __eq__(self, other):\n        return True\ndef f(x):\n    return E()\n"
    # a list subclass crosses as the plain list it holds: its own __eq__ never runs on this side
    liar_list = "class L(list):\n    def __eq__(self, other):\n        return True\ndef f(x):\n    return L([0])\n"
    eq, lst = call_each([Job(always_equal, "f", ARGS[:1]), Job(liar_list, "f", ARGS[:1])], timeout=5.0)
    assert eq.calls[0].kind == "opaque" and eq.calls[0].value is None and eq.calls[0].value != [1, 2, 3]
    assert lst.calls[0].kind == "ok" and type(lst.calls[0].value) is list and lst.calls[0].value != [1, 2, 3]


def test_jobs_do_not_share_state() -> None:
    patcher = ("import builtins\nbuiltins.sorted = lambda x: 'patched'\n"
               "def f(x):\n    globals()['seen'] = 1\n    return sorted(x)\n")
    reader = "def f(x):\n    return [sorted(x), 'seen' in globals()]\n"
    first, second = call_each([Job(patcher, "f", ARGS[:1]), Job(reader, "f", ARGS[:1])], timeout=5.0)
    assert first.calls[0].value == "patched"
    assert second.calls[0].value == [[1, 2, 3], False]


def test_a_job_cannot_forge_results_through_inherited_fds() -> None:
    """Write fake messages (a whole forged report) to every fd a job might have inherited."""
    forger = ("import json, os, struct\n"
              "def f(x):\n"
              "    one = {'status': 'ok', 'message': json.dumps({'outputs': [{'ok': 42, 'repr': '42'}]})}\n"
              "    fake = json.dumps({'results': [one] * 3}).encode()\n"
              "    for fd in range(3, 64):\n"
              "        try:\n"
              "            os.write(fd, struct.pack('>I', len(fake)) + fake)\n"
              "        except OSError:\n"
              "            pass\n"
              "    return 0\n")
    results = call_each([Job(SORT, "f", ARGS[:1]), Job(forger, "f", ARGS[:1]), Job(SORT, "f", ARGS[:1])],
                        timeout=5.0)
    assert results[0].calls[0].value == results[2].calls[0].value == [1, 2, 3]
    assert results[1].status != "ok" or results[1].calls[0].value == 0   # it garbled at most its own pipe


def test_killing_the_harness_fails_only_the_killer(starts: list[int]) -> None:
    killer = "import os, signal\ndef f(x):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return x\n"
    results = call_each([Job(SORT, "f", ARGS), Job(killer, "f", ARGS), Job(SORT, "f", ARGS)], timeout=5.0)
    assert [r.status for r in results] == ["ok", "error", "ok"]
    assert results[0].calls[0].value == results[2].calls[0].value == [1, 2, 3]
    assert starts == [3, 1, 1, 1]              # the batch, then each job alone


def test_hanging_and_flooding_jobs_fail_alone_within_their_deadline() -> None:
    hang = "def f(x):\n    while True:\n        pass\n"
    flood = "def f(x):\n    return 'x' * (8 << 20)\n"      # more than a job may send back
    exits = "import sys\ndef f(x):\n    sys.exit(0)\n"
    dies = "import os\ndef f(x):\n    os._exit(0)\n"
    t0 = time.monotonic()
    results = call_each([Job(hang, "f", ARGS[:1]), Job(flood, "f", ARGS[:1]), Job(exits, "f", ARGS[:1]),
                         Job(dies, "f", ARGS[:1]), Job("def f(x) return", "f", ARGS[:1]), Job(SORT, "f", ARGS[:1])],
                        timeout=1.0, memory_mb=256)
    elapsed = time.monotonic() - t0
    assert [r.status for r in results] == ["timeout", "too_large", "ok", "died", "broken", "ok"]
    assert results[2].calls[0].kind == "raises" and results[2].calls[0].text == "SystemExit"
    assert results[4].detail == "SyntaxError" and results[5].calls[0].value == [1, 2, 3]
    assert elapsed < 1.0 + 4.0                 # the hang cost its own deadline, not the batch's


def test_empty_batch_starts_nothing(starts: list[int]) -> None:
    assert call_each([]) == [] and starts == []
