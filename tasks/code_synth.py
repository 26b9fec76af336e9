"""`code_synth`: write a one-line Python function body matching input/output examples (the embedded code task).

    from sdbench.task import load_task
    task = load_task("code_synth")
    problem = task.problems("test", 4)[0]
    problem.prompt      # "f [ 9 7 4 ] = [ 4 7 9 ] ; f [ 8 5 1 0 ] = [ 0 1 5 8 ] ; def f ( x ) :"
    problem.reference   # "return sorted ( x )"
    task.verify(problem, ["return sorted ( x )", "return x [ : : -1 ]"])

A problem shows SHOWN examples of a hidden function on lists of small ints; HIDDEN more examples of
the same input *regime* (ascending, descending, consecutive runs, even values, ...) are the hidden
tests. The regimes make several functions of the `LIBRARY` agree on every test (on descending lists
`sorted(x)`, `x[::-1]` and `sorted(set(x))` coincide), so there are several correct solutions that
behave differently elsewhere. Instances keep only problems with at least MIN_CLASSES such behaviours.

Surface form: words separated by spaces (`return sorted ( x , reverse = True )`), which is valid
Python as written; the verifier joins the words with single spaces into `def f(x):\\n    return ...`.
The body must be a single `return` statement (else status "malformed"); the program then runs ONLY
in the sandbox: `grade_many` (`_code_synth_grading.py`) sends every distinct (program, tests) of a batch of problems to
`sdbench.sandbox.calls.call_each`, one forked process each inside one shared sandbox, and compares
the returned plain values with the expected outputs here (printing "PASS", `sys.exit(0)` or
always-equal objects cannot pass). Per process a program's pass/fail verdict and behaviour class are
computed once (the tests and probes are deterministic), so the repeats that on-policy training
samples cost nothing.

Pretraining bias: library entries are ranked; the *dominant* solution of a problem is its first
correct entry. The corpus writes it with probability DOMINANT_P, else another correct entry, each in
one of its surface forms; with probability WRONG_P it writes a plausible wrong function of the same
output kind (pretraining code has bugs too, which leaves room for training to raise pass@1). A
demo-conditioned text that does not copy a demo is written by someone who has read the demos
(`informed`): w.p. REWRITE_P the function of a demo in another of its surface forms, else another
correct behaviour in a form the demos do not show. The `ood` split swaps the hidden function for a
minority one and adds an example the dominant one fails, so only minority solutions remain.

Why the informed answers (version 3; version 2 wrote a fresh attempt, wrong WRONG_P of the time, after
demos too): with them a demo teaches *what to compute*, so the demo-conditioned teacher is right when
it does not copy (non-copy pass@1 0.85 against the student's 0.53), and its log-ratio separates correct
from incorrect rollouts (Δ-AUC 0.97); version 2's teacher was worse than the student whenever it did
not copy (0.39 vs 0.55). Version 3's model is 3 x 64 (version 2: 4 x 128, 39 min to pretrain): it
passes the gate, pretrains in about 5 minutes and makes a cell 2-3x cheaper (README "The embedded testbed").

Functional class = behaviour on the fixed `_code_synth_grading.PROBES` inputs (unsorted, duplicates, empty, ...), run in
the same sandboxed process as the program's tests (its outputs, repr cut to 200 chars, hashed).
Semantic class = the normalized AST shape of the returned expression: node types with builtin names
kept, variables as `v`, constants as `c`, e.g. `Subscript(Call(sorted,v),Slice(_,_,c))`.
Run the tests with `pytest tests/test_code_synth.py`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from sdbench.task import Problem, Verdict, register_task
from sdbench.tasks._code_synth_grading import grade_many
from sdbench.tasks._embedded import EmbeddedTask, biased_choice, corpus_text, draw_in_split

SHOWN, HIDDEN = 2, 3       # examples in the prompt; further hidden tests
MIN_CLASSES, MAX_CLASSES = 3, 5
MIN_OOD_CLASSES = 2
DOMINANT_P = 0.55
WRONG_P = 0.35
REWRITE_P = 0.5         # a demo-informed answer rewrites a demo's function (else another behaviour)
ASSETS = Path(__file__).parent / "assets" / "code_synth"


@dataclass(frozen=True)
class Entry:
    """One behaviour of the library: its surface forms (first = preferred) and a trusted implementation.

    `fn` runs here only on inputs the task itself generates, to make examples; generated code never
    runs outside the sandbox."""

    name: str
    bodies: tuple[str, ...]
    fn: Callable[[list[int]], Any]


def _e(name: str, bodies: str, fn: Callable[[list[int]], Any]) -> Entry:
    return Entry(name, tuple(b.strip() for b in bodies.split("|")), fn)


# In rank order: earlier entries are the pretraining bias's preference.
LIBRARY: tuple[Entry, ...] = (
    _e("sort", "return sorted ( x )", sorted),
    _e("max", "return max ( x ) | return sorted ( x ) [ -1 ]", max),
    _e("min", "return min ( x ) | return sorted ( x ) [ 0 ]", min),
    _e("len", "return len ( x )", len),
    _e("identity", "return x | return list ( x ) | return x [ : ]", list),
    _e("reverse", "return x [ : : -1 ] | return list ( reversed ( x ) )", lambda x: x[::-1]),
    _e("sort_desc", "return sorted ( x , reverse = True ) | return sorted ( x ) [ : : -1 ]",
       lambda x: sorted(x, reverse=True)),
    _e("first", "return x [ 0 ]", lambda x: x[0]),
    _e("last", "return x [ -1 ] | return x [ len ( x ) - 1 ]", lambda x: x[-1]),
    _e("dedup_sort", "return sorted ( set ( x ) )", lambda x: sorted(set(x))),
    _e("distinct", "return len ( set ( x ) )", lambda x: len(set(x))),
    _e("positives", "return [ v for v in x if v > 0 ]", lambda x: [v for v in x if v > 0]),
    _e("evens", "return [ v for v in x if v % 2 == 0 ] | return list ( filter ( lambda v : v % 2 == 0 , x ) )",
       lambda x: [v for v in x if v % 2 == 0]),
    _e("round_even", "return [ v // 2 * 2 for v in x ]", lambda x: [v // 2 * 2 for v in x]),
    _e("first_plus_len", "return x [ 0 ] + len ( x ) - 1", lambda x: x[0] + len(x) - 1),
    _e("last_minus_len", "return x [ -1 ] - len ( x ) + 1", lambda x: x[-1] - len(x) + 1),
    _e("span_plus_one", "return x [ -1 ] - x [ 0 ] + 1", lambda x: x[-1] - x[0] + 1),
    _e("sum", "return sum ( x )", sum),
    _e("double", "return [ v * 2 for v in x ] | return [ v + v for v in x ]", lambda x: [2 * v for v in x]),
    _e("square", "return [ v * v for v in x ] | return [ v ** 2 for v in x ]", lambda x: [v * v for v in x]),
)
BY_NAME = {e.name: e for e in LIBRARY}


def _asc(rng: random.Random) -> list[int]:
    return sorted(rng.sample(range(1, 10), rng.randint(3, 5)))


def _consecutive(rng: random.Random) -> list[int]:
    n = rng.randint(3, 5)
    start = rng.randint(0, 9 - n)
    return list(range(start, start + n))


# Input regimes: each makes some library entries coincide on every input it generates.
REGIMES: dict[str, Callable[[random.Random], list[int]]] = {
    "ascending": _asc,
    "descending": lambda rng: _asc(rng)[::-1],
    "consecutive": _consecutive,
    "even": lambda rng: rng.sample([2, 4, 6, 8], rng.randint(2, 4)),
    "zero_two": lambda rng: [rng.choice([0, 2]) for _ in range(rng.randint(3, 5))],
    "mixed": lambda rng: [rng.randint(0, 9) for _ in range(rng.randint(3, 5))],
}


def _safe(entry: Entry, x: list[int]) -> Any:
    try:
        return entry.fn(list(x))
    except (ValueError, IndexError):
        return ("raises",)


def correct_entries(tests: Sequence[tuple[list[int], Any]]) -> list[Entry]:
    """Library entries (in rank order) that agree with every test."""
    return [e for e in LIBRARY if all(_safe(e, x) == y for x, y in tests)]


@dataclass(frozen=True)
class Instance:
    tests: tuple[tuple[tuple[int, ...], Any], ...]   # the first SHOWN are in the prompt

    def pairs(self) -> list[tuple[list[int], Any]]:
        return [(list(x), y) for x, y in self.tests]

    def prompt(self) -> str:
        return " ; ".join(f"f {_show(x)} = {_show(y)}" for x, y in self.pairs()[:SHOWN]) + " ; def f ( x ) :"

    def correct(self) -> list[Entry]:
        return correct_entries(self.pairs())


def _show(value: Any) -> str:
    return "[ " + " ".join(map(str, value)) + " ]" if isinstance(value, list) else str(value)


def random_instance(rng: random.Random) -> Instance:
    """A hidden function and SHOWN + HIDDEN inputs of one regime with MIN..MAX_CLASSES correct entries."""
    while True:
        regime = REGIMES[rng.choice(sorted(REGIMES))]
        target = rng.choice(LIBRARY)
        inputs = [regime(rng) for _ in range(SHOWN + HIDDEN)]
        if len({tuple(x) for x in inputs[:SHOWN]}) < SHOWN:
            continue
        inst = Instance(tuple((tuple(x), target.fn(list(x))) for x in inputs))
        if MIN_CLASSES <= len(inst.correct()) <= MAX_CLASSES:
            return inst


def cut_dominant(rng: random.Random, inst: Instance) -> Instance | None:
    """`inst` with a minority entry as hidden function and a first example its dominant entry fails."""
    correct = inst.correct()
    dominant = correct[0]
    for minority in rng.sample(correct[1:], len(correct) - 1):
        for _ in range(30):
            x = REGIMES["mixed"](rng)
            y = minority.fn(list(x))
            if _safe(dominant, x) == y:
                continue
            cut = Instance(((tuple(x), y), *inst.tests[1:]))
            if len(cut.correct()) >= MIN_OOD_CLASSES:
                return cut
    return None


def _make(rng: random.Random, split: str) -> tuple[Instance, Entry]:
    """(instance, dominant entry of the uncut instance) for `split`."""
    return draw_in_split(rng, split, random_instance, lambda inst: inst.correct()[0], cut_dominant)


def wrong_entries(inst: Instance) -> list[Entry]:
    """Entries of the hidden function's output kind (list or int) that fail some test."""
    kind = isinstance(inst.tests[0][1], list)
    ok = {e.name for e in inst.correct()}
    return [e for e in LIBRARY if e.name not in ok and isinstance(_safe(e, [3, 1, 2]), list) == kind]


@register_task("code_synth")
class CodeSynth(EmbeddedTask):
    """One-line list functions from examples: one dominant implementation, several minority behaviours."""

    name: ClassVar[str] = "code_synth"
    max_new_tokens: ClassVar[int] = 24   # the longest library body is 19 words; EOS and slack
    demo_only_cue: ClassVar[str] = "def f ( x ) :"
    assets: ClassVar[Path] = ASSETS
    version: ClassVar[str] = "3"          # 3: the demo-informed corpus and the 3 x 64 model (2: 4 x 128)
    # The shipped model's recipe (3 x 64, 4 heads, batch 32, lr 4e-3 from DEFAULTS; its pretrain.json):
    # `sdbench pretrain code_synth --seed 0` reproduces it.
    pretrain_defaults: ClassVar[dict[str, Any]] = {"steps": 3000}
    # Why the gate has no positional-copying check here (sdbench.gate.TokenValidity):
    no_token_validity: ClassVar[str] = ("graded by execution in the sandbox: no per-token notion of a first "
                                        "invalid token")

    def make_problem(self, problem_id: str, rng: random.Random, split: str) -> Problem:
        inst, dominant = _make(rng, split)
        correct = inst.correct()
        data = {"tests": [[list(x), y] for x, y in inst.tests], "correct": [e.name for e in correct],
                "solutions": [e.bodies[0] for e in correct],
                "dominant": dominant.bodies[0], "dominant_valid": dominant in correct}
        return Problem(id=problem_id, prompt=inst.prompt(), reference=correct[0].bodies[0], data=data)

    def verify(self, problem: Problem, completions: Sequence[str]) -> list[Verdict]:
        return self.verify_many([problem], [completions])[0]

    def verify_many(self, problems: Sequence[Problem], completions: Sequence[Sequence[str]]) -> list[list[Verdict]]:
        """`verify` of many problems at once: one sandbox for all of their programs."""
        return grade_many([([(x, y) for x, y in p.data["tests"]], texts)
                           for p, texts in zip(problems, completions, strict=True)])

    def pretraining_texts(self, rng: random.Random, count: int) -> list[str]:
        """'prompt TAB completion' texts from train-split instances: plain, demo-conditioned, demo-only."""
        out = []
        for _ in range(count):
            inst, _ = _make(rng, "train")
            correct, wrong = inst.correct(), wrong_entries(inst)

            def good(correct: list[Entry] = correct) -> str:
                return rng.choice(biased_choice(rng, correct[0], correct[1:], DOMINANT_P).bodies)

            def attempt(wrong: list[Entry] = wrong, good=good) -> str:
                return rng.choice(rng.choice(wrong).bodies) if wrong and rng.random() < WRONG_P else good()

            out.append(corpus_text(rng, inst.prompt(), "def f ( x ) :", attempt, good,
                                   informed=lambda demos, correct=correct: informed(rng, correct, demos)))
        return out


def informed(rng: random.Random, correct: Sequence[Entry], demos: Sequence[str]) -> str:
    """What someone who has read `demos` writes when not copying one: w.p. REWRITE_P the function of a demo
    in another of its surface forms (the demo tells what to compute, not how to spell it), else another
    correct behaviour (drawn with the corpus bias) in one of its forms; where only one kind exists, that
    kind, and a demo only when every correct form is shown. Never wrong: a reader of correct demos knows
    what the function computes (tests/test_code_synth.py checks the law)."""
    shown = {" ".join(d.split()) for d in demos}
    of_demo = [e for e in correct if shown & set(e.bodies)]
    rewrites = [b for e in of_demo for b in e.bodies if b not in shown]
    if rewrites and rng.random() < REWRITE_P:
        return rng.choice(rewrites)
    others = [e for e in correct if not shown & set(e.bodies)]
    if others:
        entry = biased_choice(rng, others[0], others[1:], DOMINANT_P)
        return rng.choice(entry.bodies)
    if rewrites:
        return rng.choice(rewrites)
    return rng.choice(sorted(shown))
