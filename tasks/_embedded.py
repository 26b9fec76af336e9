"""The embedded testbed tasks' shared base (`EmbeddedTask`) and pieces: prompts, splits, corpus mixture.

Every embedded task builds its pretraining corpus the same way (`corpus_text` below), so the mechanism that
SD exploits is the same across tasks:

- PLAIN examples: `prompt TAB solution`, the solution drawn from the task's biased distribution;
- WITH_DEMOS examples: `demo d1 | ... demo dm | prompt TAB solution` with 1..MAX_DEMOS correct
  demos; the solution copies one of the demos with probability COPY_P, else it is a fresh draw;
- the rest: demo-only contexts, `demo d1 | ... | CUE TAB solution` (the reference-only context).

Splits never share a prompt: the hash of a prompt picks the split it may belong to (`split_of_prompt`).
`val` (protocol v2: only for choosing checkpoints) is carved out of the test bucket by a second hash,
so train prompts — and with them the pretraining corpus and the shipped base models — are unchanged.
Nothing here does work at import time. Tests: pytest tests/test_arith_target.py tests/test_code_synth.py
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, Protocol, TypeVar

from sdbench.task import Problem, check_split, stable_rng

T = TypeVar("T")
InstanceT = TypeVar("InstanceT", bound="HasPrompt")

COPY_P = 0.5                  # demo-conditioned examples: chance the solution copies one of the demos
PLAIN, WITH_DEMOS = 0.5, 0.4  # corpus mixture; the remainder is demo-only contexts
MAX_DEMOS = 4
COMPLETION_SEP = "\t"         # pretraining texts: prompt TAB completion (sdbench.pretrain trains on the completion)
SPLITS = ("train", "val", "test", "ood")
VAL_SHARE = 4                 # 1 in VAL_SHARE prompts of the test bucket belong to val


def demo_block(demos: Sequence[str]) -> str:
    """'demo d1 | demo d2 | ' (whitespace inside each demo normalized to single spaces)."""
    return "".join(f"demo {' '.join(d.split())} | " for d in demos)


def split_of_prompt(text: str) -> str:
    """The only split this prompt may appear in, from a stable hash: train / test / ood by the first
    8 bytes mod 3 (as before val existed), val for 1 in VAL_SHARE of the test bucket by the next 8."""
    digest = hashlib.sha256(text.encode()).digest()
    split = ("train", "test", "ood")[int.from_bytes(digest[:8], "little") % 3]
    if split == "test" and int.from_bytes(digest[8:16], "little") % VAL_SHARE == 0:
        return "val"
    return split


def in_split(prompt: str, split: str) -> bool:
    return split_of_prompt(prompt) == split


class HasPrompt(Protocol):
    def prompt(self) -> str: ...


def draw_in_split(
    rng: random.Random,
    split: str,
    draw: Callable[[random.Random], InstanceT],
    dominant_of: Callable[[InstanceT], T],
    cut_dominant: Callable[[random.Random, InstanceT], InstanceT | None],
) -> tuple[InstanceT, T]:
    """(instance, dominant solution of the uncut instance) for `split`: draw until the prompt's hash
    falls in the split; for "ood" the dominant solution is cut first (instances that cannot be cut
    are redrawn), so out-of-distribution problems lack the mode pretraining favoured."""
    while True:
        inst = draw(rng)
        dominant = dominant_of(inst)
        if split == "ood":
            cut = cut_dominant(rng, inst)
            if cut is None:
                continue
            inst = cut
        if in_split(inst.prompt(), split):
            return inst, dominant


def corpus_text(rng: random.Random, prompt: str, cue: str, attempt: Callable[[], str],
                correct: Callable[[], str], informed: Callable[[Sequence[str]], str] | None = None) -> str:
    """One pretraining text for one train problem.

    `attempt()` draws what the corpus writes as a solution (the task's biased distribution; it may
    be wrong, as solutions in real corpora are); `correct()` draws a correct solution, used for
    demonstrations (SD's demos are correct rollouts). `cue` replaces the question in demo-only texts.
    `informed(demos)`, when given, draws the solution of a demo-conditioned text that does not copy
    a demo: a solution written by someone who has seen the demos (correct at least as often as
    `attempt`, informed by them but not a position-by-position copy); without it, `attempt()`.
    """
    kind = rng.random()
    if kind < PLAIN:
        return prompt + COMPLETION_SEP + attempt()
    demos = [correct() for _ in range(rng.randint(1, MAX_DEMOS))]
    if rng.random() < COPY_P:
        solution = rng.choice(demos)
    else:
        solution = informed(demos) if informed is not None else attempt()
    context = demo_block(demos) + (prompt if kind < PLAIN + WITH_DEMOS else cue)
    return context + COMPLETION_SEP + solution


def biased_choice(rng: random.Random, dominant: T, others: Sequence[T], dominant_p: float) -> T:
    """The dominant solution with probability `dominant_p` (always, if there is no other), else another."""
    if not others or rng.random() < dominant_p:
        return dominant
    return rng.choice(list(others))


class EmbeddedTask:
    """Base of graph_paths, arith_target and code_synth: what they share beyond their problem family.

    A subclass sets `name`, `max_new_tokens`, `demo_only_cue` (stands for the question in demo-only
    contexts) and `assets` (its shipped base model), and writes `make_problem` (one seeded problem of a
    split), `verify` and `pretraining_texts`. Teacher contexts are `demo_block(demos) + prompt`."""

    name: ClassVar[str]
    version: ClassVar[str] = "2"          # 2: protocol v2's val split (carved out of the test bucket)
    splits: ClassVar[tuple[str, ...]] = SPLITS
    max_new_tokens: ClassVar[int]
    demo_only_cue: ClassVar[str]
    assets: ClassVar[Path]

    def make_problem(self, problem_id: str, rng: random.Random, split: str) -> Problem:
        raise NotImplementedError

    def problems(self, split: str, count: int, seed: int = 0) -> list[Problem]:
        check_split(self, split)  # type: ignore[arg-type]
        return [self.make_problem(f"{self.name}/{split}/{seed}/{i}", stable_rng(self.name, split, seed, i), split)
                for i in range(count)]

    def teacher_prompt(self, problem: Problem, demos: Sequence[str]) -> str:
        return demo_block(demos) + problem.prompt

    def demo_only_prompt(self, problem: Problem, demos: Sequence[str]) -> str:
        return demo_block(demos) + self.demo_only_cue

    def base_model(self) -> str:
        return str(self.assets)
