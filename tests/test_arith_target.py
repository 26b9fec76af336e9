"""Tests of the `arith_target` task: generator, splits, OOD cut, parser/verifier, classes, shipped model.

Run: pytest tests/test_arith_target.py        (the shipped-model check is marked slow: ~15 s)

The thresholds on the shipped model are the measured values with margins for sampling noise
(full measurement in the comments: 100 test problems, n = 32, seed 0, temperature 1).
"""

from __future__ import annotations

import random

import pytest

from sdbench.task import Problem
from sdbench.tasks._embedded import COMPLETION_SEP
from sdbench.tasks.arith_target import (
    AFFINITY,
    DOMINANT_P,
    INFORMED_PREF_P,
    MIN_SOLUTIONS,
    NUM_COUNT,
    REUSE_P,
    SHAPES,
    WRONG_P,
    ArithTarget,
    Instance,
    ParseError,
    canonical,
    informed_solution,
    parse,
    pieces,
    random_instance,
)

# The testbed's requirements on the base model. Measured on the shipped model (task version 3, seed 0, n = 32):
# full test sample (100 problems) pass@1 0.289, pass@32 - pass@1 0.711, 3.73 distinct correct; the reduced
# sample of the test below (40 problems) 0.289 / 0.711 / 3.90, i.e. margins 0.09 / 0.11 (pass@1 bounds), 0.21
# and 0.9. (The gate's thresholds on the train split are tests/test_gate.py's.)
ARITH_LIMITS = {"pass@1": (0.20, 0.40), "gain": 0.5, "distinct": 3.0}


@pytest.fixture(scope="module")
def task() -> ArithTarget:
    return ArithTarget()


# The Task contract (determinism, disjoint splits, references grade correct, a clean corpus) is checked for
# every built-in in tests/test_task.py; this file tests what is particular to arith_target.
def test_settings(task: ArithTarget) -> None:
    assert (task.splits, task.max_new_tokens, task.version) == (("train", "val", "test", "ood"), 12, "3")


def test_instances_have_several_solutions_and_references_verify(task: ArithTarget) -> None:
    for split in task.splits:
        for problem in task.problems(split, 40):
            sols = problem.data["solutions"]
            assert len(sols) >= (2 if split == "ood" else MIN_SOLUTIONS)
            assert len(problem.data["numbers"]) == NUM_COUNT
            verdicts = task.verify(problem, sols)
            assert all(v.correct for v in verdicts)
            assert len({v.functional_class for v in verdicts}) == len(sols)  # one surface per class
            assert task.verify(problem, [problem.reference])[0].correct
            if split != "ood":
                assert problem.reference == problem.data["dominant"]
                assert len({v.semantic_class for v in verdicts}) >= 2


def test_ood_removes_the_dominant_decomposition(task: ArithTarget) -> None:
    for problem in task.problems("ood", 60):
        dominant = problem.data["dominant"]
        assert not problem.data["dominant_valid"]
        assert not task.verify(problem, [dominant])[0].correct
        used = {int(w) for w in dominant.split() if w.isdigit()}
        assert not used <= set(problem.data["numbers"])  # one of its numbers is gone
        # no other surface form of the dominant decomposition survives either
        cls = canonical(parse(dominant))
        assert cls not in {v.functional_class for v in task.verify(problem, problem.data["solutions"])}


def test_dominant_is_the_preferred_family_solution() -> None:
    inst = Instance((3, 5, 4, 2), 10)
    sols = inst.solutions()
    assert sols[0] == "5 * 2"                          # two operands, '*' first in SHAPES
    assert sols == ["5 * 2", "3 * 2 + 4", "4 * 3 - 2", "5 + 3 + 2", "( 4 - 2 ) * 5", "4 * 2 + 5 - 3"]
    assert SHAPES[0] == "a * b"
    for seed in range(20):  # in general: fewest operands first, then the order of SHAPES
        sols = random_instance(random.Random(seed)).solutions()
        arity = [sum(w.isdigit() for w in s.split()) for s in sols]
        assert arity == sorted(arity)


def test_verifier_valid_invalid_malformed(task: ArithTarget) -> None:
    problem = Problem("x", "numbers 3 4 2 6 target 14 :", "4 * 3 + 2", {"numbers": [3, 4, 2, 6], "target": 14})
    nums = problem.data["numbers"]
    good = ["4 * 3 + 2", "2 + 3 * 4", "( 2 + ( 3 * 4 ) )", "  4  *  3 +  2 "]
    verdicts = task.verify(problem, good)
    assert all(v.correct for v in verdicts)
    assert len({v.functional_class for v in verdicts}) == 1 and verdicts[0].functional_class == "sum[+2,+mul[3,4]]"
    assert verdicts[0].semantic_class == "sum[+mul[n,n],+n]"
    unused = next(n for n in range(2, 10) if n not in nums)
    wrong = ["4 * 3", "4 * 3 + 3 - 3 + 2",            # wrong value; 3 used twice
             f"4 * 3 + {unused} - {unused} + 2",      # a number that is not given
             "4 * 3 + 2 + 0",                         # 0 is not given either
             "( 4 * 3 ) + 2 + ( 3 - 3 )"]
    malformed = ["", "4 * 3 +", "4 3 + 2", "( 4 * 3 + 2", "4 * 3 + 2 )", "4 ** 3", "-2 + 16", "4 * 3 + 02",
                 "__import__('os').system('true')", "4*3+2", "4 × 3 + 2", "2 " * 40, "( " * 20 + "2" + " )" * 20,
                 "14 / 1", "4 * 3 + 2 ;", "<unk>", "١٤"]
    vs = task.verify(problem, wrong + malformed)
    assert not any(v.correct for v in vs)
    assert all(v.status == "malformed" for v in vs[len(wrong):])
    assert all(v.functional_class is None for v in vs)


def test_canonicalization_merges_equivalents_and_separates_others() -> None:
    same = [("3 * 7 + 2", "2 + 7 * 3"), ("9 - ( 4 - 2 )", "9 + 2 - 4"), ("( 2 * 3 ) * 4", "4 * ( 3 * 2 )"),
            ("5 + ( 4 + 3 )", "3 + 4 + 5"), ("( ( 6 ) )", "6")]
    for a, b in same:
        assert canonical(parse(a)) == canonical(parse(b)), (a, b)
    different = [("( 2 + 3 ) * 4", "2 * 4 + 3 * 4"), ("9 - 4 - 2", "9 - ( 4 - 2 )"), ("6 * 2", "6 + 2"),
                 ("8 - 3", "3 - 8"), ("5 * 4 - 2", "5 * ( 4 - 2 )")]
    for a, b in different:
        assert canonical(parse(a)) != canonical(parse(b)), (a, b)
    with pytest.raises(ParseError):
        parse("1 + + 2")


def test_corpus_bias_and_demos(task: ArithTarget) -> None:
    texts = task.pretraining_texts(random.Random(2), 600)
    assert all(COMPLETION_SEP in t for t in texts)
    plain = [t for t in texts if not t.startswith("demo")]
    with_demos = [t for t in texts if t.startswith("demo") and "numbers" in t]
    demo_only = [t for t in texts if t.startswith("demo") and "solve :" in t]
    assert plain and with_demos and demo_only
    dominant = 0
    for t in plain:
        prompt, solution = t.split(COMPLETION_SEP)
        words = prompt.split()
        inst = Instance(tuple(int(w) for w in words[1:1 + NUM_COUNT]), int(words[NUM_COUNT + 2]))
        dominant += solution == inst.solutions()[0]
    assert abs(dominant / len(plain) - (1 - WRONG_P) * DOMINANT_P) < 0.1  # the bias, diluted by wrong attempts


def test_demo_conditioned_solutions_are_correct(task: ArithTarget) -> None:
    """Demos are correct and a demo-conditioned text that does not copy is `informed_solution`, also correct:
    the corpus's wrong answers are all in plain texts, where no demo could have fixed them."""
    texts = [t for t in task.pretraining_texts(random.Random(5), 800) if t.startswith("demo") and "numbers" in t]
    for t in texts:
        context, solution = t.split(COMPLETION_SEP)
        words = context.split("| ")[-1].split()
        problem_numbers, target = tuple(int(w) for w in words[1:1 + NUM_COUNT]), int(words[NUM_COUNT + 2])
        demos = [d.removeprefix("demo ").strip() for d in context.split("| ")[:-1]]
        sols = Instance(problem_numbers, target).solutions()
        assert solution in sols and all(d in sols for d in demos), t


def test_pieces() -> None:
    assert pieces(parse("7 * 3 + 2")) == {"7", "3", "2", "mul[3,7]"}
    assert pieces(parse("( 4 - 2 ) * 5")) == {"4", "2", "5", "mul[5,sum[+4,-2]]"}
    assert pieces(parse("9")) == {"9"}


def test_informed_solution_law() -> None:
    """informed_solution's distribution, exactly: a demo w.p. REUSE_P, else the preferred solution of a class no
    demo has w.p. INFORMED_PREF_P, else such a solution weighted AFFINITY ** (pieces shared with a demo)."""
    inst = Instance((3, 5, 4, 2, 7), 10)
    sols = inst.solutions()
    demos = ["5 * 2"]
    others = sols[1:]
    shared = [len(pieces(parse(s)) & pieces(parse(demos[0]))) for s in others]
    total = sum(AFFINITY ** k for k in shared)
    law = {s: (1 - REUSE_P) * (INFORMED_PREF_P * (i == 0) + (1 - INFORMED_PREF_P) * AFFINITY ** k / total)
           for i, (s, k) in enumerate(zip(others, shared, strict=True))}
    law[demos[0]] = REUSE_P
    rng, n = random.Random(0), 40000
    counts: dict[str, int] = {}
    for _ in range(n):
        s = informed_solution(rng, inst, demos)
        counts[s] = counts.get(s, 0) + 1
    assert set(counts) <= set(law)
    for s, p in law.items():
        assert abs(counts.get(s, 0) / n - p) < 4 * (p * (1 - p) / n) ** 0.5 + 1e-3, (s, p, counts.get(s, 0) / n)
    # every family class taken by a demo: a demo is all that is left
    assert informed_solution(random.Random(1), inst, sols) in sols


def test_prompts(task: ArithTarget) -> None:
    problem = task.problems("test", 1)[0]
    assert task.teacher_prompt(problem, ["5 * 2", "5 +  3 + 2"]) == "demo 5 * 2 | demo 5 + 3 + 2 | " + problem.prompt
    assert task.demo_only_prompt(problem, ["5 * 2"]) == "demo 5 * 2 | solve :"


@pytest.mark.slow
def test_shipped_model_statistics(task: ArithTarget) -> None:
    """The shipped base model on a reduced sample (40 test problems, n = 32) keeps the testbed's statistics."""
    import torch

    from sdbench.core.model import load_model
    from sdbench.pretrain import base_statistics

    torch.set_num_threads(2)
    model, tok = load_model(task.base_model())
    stats = base_statistics(model, tok, task, task.problems("test", 40), n=32, seed=0)
    assert ARITH_LIMITS["pass@1"][0] <= stats["pass@1"] <= ARITH_LIMITS["pass@1"][1], stats
    assert stats["pass@32"] - stats["pass@1"] >= ARITH_LIMITS["gain"], stats
    assert stats["distinct_correct"] >= ARITH_LIMITS["distinct"], stats
