"""Tests of the `code_synth` task: generator, splits, OOD cut, sandboxed verifier (adversarial too), classes.

Run: pytest tests/test_code_synth.py          (the shipped-model check is marked slow)

Generated code runs only in the sandbox (`sdbench.sandbox`); the library's trusted implementations
make the examples. The thresholds on the shipped model are the measured values with margins for
sampling noise (full measurement in the comments: 100 test problems, n = 32, seed 0, temperature 1).
"""

from __future__ import annotations

import random

import pytest

from sdbench.task import Problem
from sdbench.tasks._code_synth_grading import PROBES, behaviours, expression_shape, program_of
from sdbench.tasks._embedded import COMPLETION_SEP
from sdbench.tasks.code_synth import BY_NAME, LIBRARY, REWRITE_P, CodeSynth, correct_entries, informed

# The testbed's requirements on the base model. Measured on the shipped model (task version 3, seed 0, n = 32):
# full test sample (100 problems) pass@1 0.518, pass@32 - pass@1 0.482, 3.14 distinct correct; the reduced
# sample of the test below (20 problems) 0.544 / 0.456 / 3.35, i.e. margins 0.21 (upper pass@1
# bound), 0.31 and 0.85.
CODE_LIMITS = {"pass@1": (0.25, 0.75), "gain": 0.15, "distinct": 2.5}


@pytest.fixture(scope="module")
def task() -> CodeSynth:
    return CodeSynth()


def _problem(tests: list, prompt: str = "p") -> Problem:
    return Problem("x", prompt, "", {"tests": tests})


SORT_DESC_INPUTS = [[[7, 6, 4], [4, 6, 7]], [[9, 8, 7, 1], [1, 7, 8, 9]], [[6, 4, 3, 2, 1], [1, 2, 3, 4, 6]]]


# The Task contract (determinism, disjoint splits, references grade correct, a clean corpus) is checked for
# every built-in in tests/test_task.py; this file tests what is particular to code_synth.
def test_settings(task: CodeSynth) -> None:
    assert (task.splits, task.max_new_tokens, task.version) == (("train", "val", "test", "ood"), 24, "3")


def test_library_surfaces_match_implementations_in_the_sandbox() -> None:
    """Every surface form of an entry behaves like its trusted implementation; entries differ on PROBES."""
    programs = [program_of(body) for e in LIBRARY for body in e.bodies]
    assert all(p is not None for p in programs)
    classes = behaviours([p for p in programs if p is not None])
    by_entry: dict[str, set[str]] = {}
    for (entry, _), cls in zip(((e, b) for e in LIBRARY for b in e.bodies), classes, strict=True):
        by_entry.setdefault(entry.name, set()).add(cls)
    assert all(len(c) == 1 for c in by_entry.values())          # surfaces of one entry: one behaviour
    assert len({next(iter(c)) for c in by_entry.values()}) == len(LIBRARY)  # entries: all different
    assert all(v is not None for v in [program_of("return sorted ( x )")]) and len(PROBES) >= 6


def test_references_and_solutions_verify(task: CodeSynth) -> None:
    for split in task.splits:
        problems = task.problems(split, 6)
        for problem in problems:
            verdicts = task.verify(problem, [*problem.data["solutions"], problem.reference])
            assert all(v.correct for v in verdicts), problem
            assert len({v.functional_class for v in verdicts[:-1]}) == len(problem.data["solutions"])
            assert len(problem.data["solutions"]) >= (2 if split == "ood" else 3)
            if split != "ood":
                assert problem.reference == problem.data["dominant"]


def test_ood_removes_the_dominant_solution(task: CodeSynth) -> None:
    problems = task.problems("ood", 40)
    for problem in problems:  # checked with the trusted implementations ...
        assert not problem.data["dominant_valid"]
        assert problem.data["dominant"] not in problem.data["solutions"]
        tests = [(x, y) for x, y in problem.data["tests"]]
        assert len(correct_entries(tests)) >= 2
    for problem in problems[:4]:  # ... and in the sandbox
        assert not task.verify(problem, [problem.data["dominant"]])[0].correct


def test_verifier_valid_invalid_and_classes(task: CodeSynth) -> None:
    problem = _problem(SORT_DESC_INPUTS)
    good = ["return sorted ( x )", "return x [ : : -1 ]", "return list ( reversed ( x ) )",
            "return sorted ( set ( x ) )", "  return   sorted(x)  "]
    bad = ["return x", "return sorted ( x ) [ : : -1 ]", "return max ( x )", "return [ v * 2 for v in x ]"]
    verdicts = task.verify(problem, good + bad)
    assert all(v.correct for v in verdicts[:len(good)]) and not any(v.correct for v in verdicts[len(good):])
    cls = [v.functional_class for v in verdicts[:len(good)]]
    assert cls[1] == cls[2] and len({cls[0], cls[1], cls[3]}) == 3 and cls[4] == cls[0]  # behaviour merges
    assert verdicts[1].semantic_class != verdicts[2].semantic_class                # ... AST shape separates
    assert verdicts[0].semantic_class == verdicts[4].semantic_class == "Call(sorted,v)"
    assert expression_shape(program_of("return sorted ( y )") or "") == "Call(sorted,v)"  # names normalized


def test_malformed_completions(task: CodeSynth) -> None:
    problem = _problem(SORT_DESC_INPUTS)
    malformed = ["", "sorted ( x )", "return", "return ( (", "return x ; import os", "pass",
                 "return sorted(x)\ndef g(): pass", "return x\nreturn sorted(x)", "<unk> <unk>", "return sorted ( x"]
    verdicts = task.verify(problem, malformed)
    assert all(not v.correct and v.status == "malformed" for v in verdicts)


def test_adversarial_completions_fail_in_the_sandbox(task: CodeSynth) -> None:
    """Single-return bodies that reach the sandbox and try to fake a pass."""
    problem = _problem(SORT_DESC_INPUTS)
    always_equal = ('return type ( "E" , ( list , ) , { "__eq__" : lambda s , o : True , '
                    '"__ne__" : lambda s , o : False } ) ( )')
    attacks = [
        "return __import__ ( 'sys' ) . exit ( 0 )",                       # exit 0 from inside the call
        "return __import__ ( 'os' ) . _exit ( 0 )",
        "return print ( 'PASSED all tests' ) or x",                       # a fake pass line
        always_equal,                                                      # an always-equal object
        'return type ( "L" , ( list , ) , { "__eq__" : lambda s , o : True } ) ( [ 0 ] )',  # ... a lying list
        "return exec ( 'import builtins; builtins.AssertionError = type(\"N\", (Exception,), {})' ) or x",
        "return [ __import__ ( 'os' ) . kill ( __import__ ( 'os' ) . getppid ( ) , 9 ) , x ] [ 1 ]",
        "return [ v for v in iter ( int , 1 ) ]",                          # never returns: timeout
    ]
    assert all(program_of(a) is not None for a in attacks)  # they pass the one-`return` check ...
    verdicts = task.verify(problem, attacks)
    assert not any(v.correct for v in verdicts)             # ... and the judge fails them
    # escaping the function is impossible: the words are joined on one line
    escape = "return x\n\nimport sys\nprint('PASS')\nsys.exit(0)"
    assert program_of(escape) is None and not task.verify(problem, [escape])[0].correct


def test_verify_many_is_verify_of_each_in_one_sandbox(task: CodeSynth, monkeypatch: pytest.MonkeyPatch) -> None:
    from sdbench.sandbox import calls
    from sdbench.tasks import _code_synth_grading as code_synth

    problems = task.problems("test", 5, seed=7) + task.problems("ood", 3, seed=7)
    completions = [[*p.data["solutions"], p.data["dominant"], "return x", "return len ( x )", "return ("]
                   for p in problems]
    one_by_one = [task.verify(p, c) for p, c in zip(problems, completions, strict=True)]
    monkeypatch.setattr(code_synth, "_PASSED", {})
    monkeypatch.setattr(code_synth, "_BEHAVIOUR", {})
    batches: list[int] = []
    real = calls.call_each
    monkeypatch.setattr(calls, "call_each", lambda jobs, **kw: batches.append(len(jobs)) or real(jobs, **kw))
    assert task.verify_many(problems, completions) == one_by_one
    assert len(batches) == 1 and batches[0] >= len(problems) * 3


def test_corpus_and_prompts(task: CodeSynth) -> None:
    texts = task.pretraining_texts(random.Random(2), 400)
    assert all(COMPLETION_SEP in t for t in texts)
    assert any(t.startswith("demo") and t.split(COMPLETION_SEP)[0].endswith("| def f ( x ) :") for t in texts)
    completions = {t.split(COMPLETION_SEP)[1] for t in texts}
    assert all(program_of(c) is not None for c in completions)  # every corpus body is a valid program
    problem = task.problems("test", 1)[0]
    assert task.teacher_prompt(problem, ["return  x"]) == "demo return x | " + problem.prompt
    assert task.demo_only_prompt(problem, ["return x"]) == "demo return x | def f ( x ) :"


def test_informed_answers_rewrite_a_demo_or_give_another_behaviour() -> None:
    """A demo-conditioned answer that does not copy: always correct, never a demo; a rewrite of a demo's function
    w.p. REWRITE_P where both kinds exist (3 sd of a binomial over 4000 draws: 0.024), else the kind there is."""
    correct = [BY_NAME["sort"], BY_NAME["max"], BY_NAME["sort_desc"]]    # max, sort_desc have two forms each
    rng = random.Random(0)
    demos = ["return max ( x )"]
    out = [informed(rng, correct, demos) for _ in range(4000)]
    bodies = {b for e in correct for b in e.bodies}
    assert set(out) <= bodies - set(demos)
    assert abs(sum(o == "return sorted ( x ) [ -1 ]" for o in out) / len(out) - REWRITE_P) < 0.024
    # another behaviour: one the demos do not show, in any of its forms
    others = {o for o in out if o != "return sorted ( x ) [ -1 ]"}
    assert others == {"return sorted ( x )", *BY_NAME["sort_desc"].bodies}
    # no rewrite possible (sort has one form): always another behaviour
    assert {informed(rng, correct, ["return sorted ( x )"]) for _ in range(200)} <= {*BY_NAME["max"].bodies,
                                                                                  *BY_NAME["sort_desc"].bodies}
    # every behaviour shown: only rewrites are left
    shown = ["return sorted ( x )", "return max ( x )", "return sorted ( x , reverse = True )"]
    assert {informed(rng, correct, shown) for _ in range(200)} == {"return sorted ( x ) [ -1 ]",
                                                                    "return sorted ( x ) [ : : -1 ]"}


@pytest.mark.slow
def test_shipped_model_statistics(task: CodeSynth) -> None:
    """The shipped base model on a reduced sample (20 test problems, n = 32) keeps the testbed's statistics."""
    import torch

    from sdbench.core.model import load_model
    from sdbench.pretrain import base_statistics

    torch.set_num_threads(2)
    model, tok = load_model(task.base_model())
    stats = base_statistics(model, tok, task, task.problems("test", 20), n=32, seed=0)
    assert CODE_LIMITS["pass@1"][0] <= stats["pass@1"] <= CODE_LIMITS["pass@1"][1], stats
    assert stats["pass@32"] - stats["pass@1"] >= CODE_LIMITS["gain"], stats
    assert stats["distinct_correct"] >= CODE_LIMITS["distinct"], stats
