"""`arith_target`: reach a target number from given numbers with + - * (the embedded math task).

    from sdbench.task import load_task
    task = load_task("arith_target")
    problem = task.problems("test", 4)[0]
    problem.prompt      # "numbers 7 2 6 5 3 target 10 :"
    problem.reference   # "5 * 2"
    task.verify(problem, ["5 * 2", "3 + 7", "2 * 6 + 5 - 7", "9 + 1"])   # right, right, right, wrong

An instance is NUM_COUNT (5) distinct numbers from 2..9 and a target in TARGET_RANGE. A solution is any
expression of the grammar `expr := term (('+'|'-') term)*, term := factor ('*' factor)*,
factor := NUMBER | '(' expr ')'` (words separated by spaces) using each given number at most once and
evaluating to the target; `verify` parses it with a small recursive-descent parser (never eval).
Instances are made so that the *family* of short expressions (`SHAPES`: two to four operands) holds
MIN_SOLUTIONS..MAX_SOLUTIONS distinct solutions of at least two shapes.

Pretraining corpus (`pretraining_texts`, mixed as `corpus_text` mixes every embedded task's). The *dominant
decomposition* of an instance is its family solution that comes first in the preference order (fewest
operands, then the shape order of `SHAPES`, then larger operands). An attempt is, with probability WRONG_P,
a near miss (one number or operator of a correct solution changed: real corpora hold wrong solutions too),
else a correct solution: the dominant one with probability DOMINANT_P, else a uniformly drawn other. Demos
are correct solutions drawn the same way. A demo-conditioned text that does not copy a demo writes
`informed_solution`: always correct — a demo after all with REUSE_P, else the preferred solution of a class
no demo has (INFORMED_PREF_P), else one leaning on the demos' numbers and products (AFFINITY per shared
piece). So the corpus's errors sit where no demo was shown, and a demo informs what comes after it.
The `ood` split replaces one number of the dominant decomposition by a fresh one (keeping at least
MIN_OOD_SOLUTIONS family solutions), so only minority decompositions remain.

Why (version 3; version 2 had four numbers, seven shapes of at most three operands, DOMINANT_P 0.6, WRONG_P
0.35, and attempts as the non-copying answers after demos): version 2's 4 x 128 model solved nearly every
instance (pass@1 0.70, GRPO quick 0.996: no headroom), and since its answers after demos were attempts
(wrong 35% of the time, and the demo's class taken out), the teacher's non-copies were right less often than
the student (0.545 vs 0.683) and Δ told correct from incorrect poorly (AUC 0.686). Five numbers and a
four-operand shape make it hard enough (pass@1 0.32, GRPO quick 0.64), the informed non-copies make the
teacher right for a reason a demo gives (non-copy pass@1 0.34 vs 0.32; Δ-AUC 0.79), and the lower
DOMINANT_P keeps more than 4 distinct correct solutions per problem (`sdbench tasks check arith_target`;
README "The embedded testbed"). In the runs tried, two four-operand shapes left the model too weak (pass@1
0.20), no four-operand shape left GRPO too strong (0.93), and drawing the informed answer by piece affinity
alone (no preferred solution) left the teacher's non-copies below the student (0.27 vs 0.30).
The shipped base model (tasks/assets/arith_target) is `sdbench pretrain arith_target --seed 0`.

Functional class = the canonical expression: + and - chains are flattened into signed terms (signs
pushed through parentheses: a - (b - c) -> +a -b +c), * chains into factors, and operands are sorted,
so `3 * 7 + 2`, `2 + 7 * 3` and `(2 + (3 * 7))` are one class, `sum[+2,+mul[3,7]]`.
Semantic class = the operator structure: the same form with numbers replaced by `n`, `sum[+n,+mul[n,n]]`.
Run the tests with `pytest tests/test_arith_target.py`.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from sdbench.task import Problem, Verdict, register_task
from sdbench.tasks._embedded import EmbeddedTask, biased_choice, corpus_text, draw_in_split

NUM_COUNT = 5
NUMBER_POOL = tuple(range(2, 10))  # no 1: `* 1` would make trivial extra solutions
TARGET_RANGE = (10, 50)
MIN_SOLUTIONS, MAX_SOLUTIONS = 5, 16
MIN_OOD_SOLUTIONS = 2
DOMINANT_P = 0.35          # pretraining mass of the dominant decomposition
WRONG_P = 0.4              # pretraining mass of near-miss (wrong) attempts in the solution slot
# A demo-conditioned text that does not copy a demo (`informed_solution`): with REUSE_P it reuses a demo after
# all; else the preferred family solution no demo has with INFORMED_PREF_P, else another such solution
# weighted AFFINITY ** (pieces it shares with a demo: numbers and products).
REUSE_P = 0.2
INFORMED_PREF_P = DOMINANT_P
AFFINITY = 2.0
MAX_TOKENS = 31            # longer completions are rejected before parsing
# Family shapes in preference order (earlier = preferred by the pretraining bias); a, b, c, d are
# distinct given numbers. Commutative operands are written larger first.
SHAPES: tuple[str, ...] = ("a * b", "a + b", "a - b", "a * b + c", "a * b - c", "a + b + c", "( a + b ) * c",
                           "( a - b ) * c", "a * b + c - d")
ASSETS = Path(__file__).parent / "assets" / "arith_target"

Node = tuple  # ("n", int) | ("sum", ((sign, Node), ...)) | ("mul", (Node, ...))


class ParseError(ValueError):
    pass


# ---------------------------------------------------------------- parsing and canonical forms
def parse(text: str) -> Node:
    """The flattened expression tree of `text` (words separated by spaces); ParseError if malformed."""
    words = text.split()
    if not words or len(words) > MAX_TOKENS:
        raise ParseError("empty or too long")
    pos = 0

    def peek() -> str | None:
        return words[pos] if pos < len(words) else None

    def expr(depth: int) -> Node:
        nonlocal pos
        terms: list[tuple[int, Node]] = [(1, term(depth))]
        while peek() in ("+", "-"):
            sign = 1 if words[pos] == "+" else -1
            pos += 1
            terms.append((sign, term(depth)))
        flat: list[tuple[int, Node]] = []
        for sign, node in terms:  # push signs through parenthesized sums: a - (b - c) = a - b + c
            if node[0] == "sum":
                flat.extend((sign * s, n) for s, n in node[1])
            else:
                flat.append((sign, node))
        return flat[0][1] if len(flat) == 1 and flat[0][0] == 1 else ("sum", tuple(flat))

    def term(depth: int) -> Node:
        nonlocal pos
        factors = [factor(depth)]
        while peek() == "*":
            pos += 1
            factors.append(factor(depth))
        flat: list[Node] = []
        for node in factors:
            flat.extend(node[1] if node[0] == "mul" else (node,))
        return flat[0] if len(flat) == 1 else ("mul", tuple(flat))

    def factor(depth: int) -> Node:
        nonlocal pos
        word = peek()
        if word == "(":
            if depth > 8:
                raise ParseError("too deep")
            pos += 1
            node = expr(depth + 1)
            if peek() != ")":
                raise ParseError("missing )")
            pos += 1
            return node
        if word is not None and word.isascii() and word.isdigit() and (word == "0" or not word.startswith("0")):
            pos += 1
            return ("n", int(word))
        raise ParseError(f"unexpected {word!r}")

    node = expr(0)
    if pos != len(words):
        raise ParseError(f"trailing {words[pos]!r}")
    return node


def value(node: Node) -> int:
    if node[0] == "n":
        return node[1]
    if node[0] == "sum":
        return sum(sign * value(child) for sign, child in node[1])
    out = 1
    for child in node[1]:
        out *= value(child)
    return out


def operands(node: Node) -> list[int]:
    if node[0] == "n":
        return [node[1]]
    children = [c for _, c in node[1]] if node[0] == "sum" else list(node[1])
    return [v for c in children for v in operands(c)]


def canonical(node: Node, shape: bool = False) -> str:
    """`sum[+2,+mul[3,7]]`: flattened, operands sorted; with shape=True numbers become `n`."""
    if node[0] == "n":
        return "n" if shape else str(node[1])
    if node[0] == "sum":
        parts = sorted(("+" if s > 0 else "-") + canonical(c, shape) for s, c in node[1])
        return "sum[" + ",".join(parts) + "]"
    return "mul[" + ",".join(sorted(canonical(c, shape) for c in node[1])) + "]"


# ---------------------------------------------------------------- instances
@dataclass(frozen=True)
class Instance:
    numbers: tuple[int, ...]   # in prompt order
    target: int

    def prompt(self) -> str:
        return f"numbers {' '.join(map(str, self.numbers))} target {self.target} :"

    def solutions(self) -> list[str]:
        """The family's distinct solutions (one surface form per canonical class), preferred first."""
        return list(_family(tuple(sorted(self.numbers))).get(self.target, ()))


@functools.cache
def _family(numbers: tuple[int, ...]) -> dict[int, tuple[str, ...]]:
    """target -> the family's solutions over `numbers` in preference order (cached: instances share sets)."""
    found: dict[tuple[int, str], tuple] = {}
    for rank, shape in enumerate(SHAPES):
        arity = len({w for w in shape.split() if w in "abcd"})
        for combo in itertools.permutations(sorted(numbers, reverse=True), arity):
            text = shape
            for name, num in zip("abcd", combo, strict=False):
                text = text.replace(name, str(num))
            node = parse(text)
            key = (value(node), canonical(node))
            pref = (arity, rank, tuple(-v for v in combo))
            if key not in found or pref < found[key][0]:
                found[key] = (pref, text)
    by_target: dict[int, list[tuple]] = {}
    for (target, _), entry in found.items():
        by_target.setdefault(target, []).append(entry)
    return {t: tuple(text for _, text in sorted(entries)) for t, entries in by_target.items()}


def _family_value(rng: random.Random, numbers: Sequence[int]) -> int:
    shape = rng.choice(SHAPES)
    combo = rng.sample(list(numbers), len({w for w in shape.split() if w in "abcd"}))
    text = shape
    for name, num in zip("abcd", combo, strict=False):
        text = text.replace(name, str(num))
    return value(parse(text))


def random_instance(rng: random.Random) -> Instance:
    """Numbers and a target whose family holds MIN..MAX_SOLUTIONS solutions of at least two shapes."""
    while True:
        numbers = tuple(rng.sample(NUMBER_POOL, NUM_COUNT))
        target = _family_value(rng, numbers)
        if not TARGET_RANGE[0] <= target <= TARGET_RANGE[1]:
            continue
        inst = Instance(numbers, target)
        sols = inst.solutions()
        if MIN_SOLUTIONS <= len(sols) <= MAX_SOLUTIONS and len({canonical(parse(s), True) for s in sols}) >= 2:
            return inst


def cut_dominant(rng: random.Random, inst: Instance) -> Instance | None:
    """`inst` with one number of its dominant decomposition replaced by a fresh one, or None."""
    dominant = inst.solutions()[0]
    used = sorted(set(operands(parse(dominant))))
    fresh = [n for n in NUMBER_POOL if n not in inst.numbers]
    rng.shuffle(used)
    rng.shuffle(fresh)
    for old in used:
        for new in fresh:
            cut = Instance(tuple(new if n == old else n for n in inst.numbers), inst.target)
            if len(cut.solutions()) >= MIN_OOD_SOLUTIONS:
                return cut
    return None


def _make(rng: random.Random, split: str) -> tuple[Instance, str]:
    """(instance, dominant decomposition of the uncut instance) for `split`."""
    return draw_in_split(rng, split, random_instance, lambda inst: inst.solutions()[0], cut_dominant)


def near_miss(rng: random.Random, inst: Instance, solution: str) -> str:
    """A wrong attempt close to `solution`: one number swapped for an unused one, or one operator changed."""
    words = solution.split()
    for _ in range(20):
        out = list(words)
        spots = [i for i, w in enumerate(out) if w.isdigit()]
        unused = [n for n in inst.numbers if str(n) not in out]
        if unused and rng.random() < 0.6:
            out[rng.choice(spots)] = str(rng.choice(unused))
        else:
            ops = [i for i, w in enumerate(out) if w in "+-*"]
            i = rng.choice(ops)
            out[i] = rng.choice([o for o in "+-*" if o != out[i]])
        if value(parse(" ".join(out))) != inst.target:
            return " ".join(out)
    return solution


def pieces(node: Node) -> set[str]:
    """The operand numbers and product sub-terms of `node`, as canonical strings: `7 * 3 + 2` ->
    {"7", "3", "2", "mul[3,7]"}."""
    if node[0] == "n":
        return {str(node[1])}
    out: set[str] = set()
    children = [c for _, c in node[1]] if node[0] == "sum" else list(node[1])
    if node[0] == "mul":
        out.add(canonical(node))
    for c in children:
        out |= pieces(c)
    return out


def informed_solution(rng: random.Random, inst: Instance, demos: Sequence[str]) -> str:
    """What someone who has seen `demos` writes when not copying one: always a correct family solution. With
    REUSE_P (or when every family class is a demo's) a demo after all; else, among the family solutions of
    classes no demo has, the preferred one with INFORMED_PREF_P, otherwise one drawn with weight
    AFFINITY ** (pieces it shares with the closest demo), `pieces` being its numbers and products: the demo
    shows which numbers and products reach the target, and the answer builds on them."""
    demo_nodes = [parse(d) for d in demos]
    demo_classes = {canonical(n) for n in demo_nodes}
    others = [s for s in inst.solutions() if canonical(parse(s)) not in demo_classes]
    if not others or rng.random() < REUSE_P:
        return rng.choice(list(demos))
    if rng.random() < INFORMED_PREF_P:
        return others[0]
    demo_pieces = [pieces(n) for n in demo_nodes]
    weights = [AFFINITY ** max(len(pieces(parse(s)) & p) for p in demo_pieces) for s in others]
    return rng.choices(others, weights)[0]


def grade(numbers: Sequence[int], target: int, text: str) -> Verdict:
    try:
        node = parse(text)
    except ParseError:
        return Verdict(correct=False, status="malformed")
    used = operands(node)
    available = list(numbers)
    for n in used:
        if n not in available:
            return Verdict(correct=False)
        available.remove(n)
    if value(node) != target:
        return Verdict(correct=False)
    return Verdict(correct=True, functional_class=canonical(node), semantic_class=canonical(node, shape=True))


@register_task("arith_target")
class ArithTarget(EmbeddedTask):
    """Reach the target with + - * over given numbers: one dominant decomposition, several minority ones."""

    name: ClassVar[str] = "arith_target"
    version: ClassVar[str] = "3"         # 3: five numbers, nine shapes, the informed corpus (2: four numbers, 7 shapes)
    max_new_tokens: ClassVar[int] = 12   # the longest family shapes are 7 words; EOS and slack
    demo_only_cue: ClassVar[str] = "solve :"
    assets: ClassVar[Path] = ASSETS
    # The shipped model's recipe (its pretrain.json): `sdbench pretrain NAME --seed 0` reproduces it.
    pretrain_defaults: ClassVar[dict[str, Any]] = {"steps": 3000, "lr": 2e-3, "hidden": 128, "layers": 4}
    # Why the gate has no positional-copying check here (sdbench.gate.TokenValidity):
    no_token_validity: ClassVar[str] = "graded by the value of the whole expression, not token by token"

    def make_problem(self, problem_id: str, rng: random.Random, split: str) -> Problem:
        inst, dominant = _make(rng, split)
        sols = inst.solutions()
        data = {"numbers": list(inst.numbers), "target": inst.target, "solutions": sols,
                "dominant": dominant, "dominant_valid": grade(inst.numbers, inst.target, dominant).correct}
        return Problem(id=problem_id, prompt=inst.prompt(), reference=sols[0], data=data)

    def verify(self, problem: Problem, completions: Sequence[str]) -> list[Verdict]:
        numbers, target = problem.data["numbers"], problem.data["target"]
        return [grade(numbers, target, text) for text in completions]

    def pretraining_texts(self, rng: random.Random, count: int) -> list[str]:
        """'prompt TAB completion' texts from train-split instances: plain, demo-conditioned, demo-only."""
        out = []
        for _ in range(count):
            inst, _ = _make(rng, "train")
            sols = inst.solutions()

            def correct(sols: list[str] = sols) -> str:
                return biased_choice(rng, sols[0], sols[1:], DOMINANT_P)

            def attempt(inst: Instance = inst, correct=correct) -> str:
                return near_miss(rng, inst, correct()) if rng.random() < WRONG_P else correct()

            out.append(corpus_text(rng, inst.prompt(), "solve :", attempt, correct,
                                   lambda demos, inst=inst: informed_solution(rng, inst, demos)))
        return out
