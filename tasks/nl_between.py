"""`nl_between`: "name a number between lo and hi", in English, for a real chat model (SmolLM2-135M-Instruct).

    sdbench models prepare smollm2-135m-instruct
    sdbench tasks check nl_between --model smollm2-135m-instruct
    task = load_task("nl_between"); problem = task.problems("test", 1)[0]
    task.verify(problem, ["15", "It is 20.", "15 or 20", "fifteen", "I don't know"])

Why this task (issue 30): it is a natural-language task on which SmolLM2-135M-Instruct has a pass@1 in reach
and pass@k headroom, and every problem has several distinct correct ANSWERS (not surface variants of one), so
answer diversity and its collapse are measurable on a real pretrained model. Problems are generated
(`reads_data = False`): an open interval (lo, hi), lo in LO_RANGE, holding MIN..MAX_ANSWERS integers; the
general form asks for a multiple of k in it (k in K_VALUES; k = 1: any number). Measured on SmolLM2 (24 train
problems x 8 samples, T = 1, 2-shot chat turns): multiples of k in {2, 3, 5, 10} score pass@1 0.02-0.05 in
every prompt form tried (zero-shot, 2-shot in the user turn, 2-shot turns, plain Question/Answer, T = 0.5-0.7),
"an even number" 0.03, while any number in the interval scores 0.16 (lo 10-60) — so version 1 asks for any
number (K_VALUES = (1,)), with lower bounds and wider intervals (README "Real models and real data" has the
gate table). The prompt is the chat template with two worked turns (`prompt_format`: EXAMPLES) and SmolLM2's
own default system turn; both end ranges are never answers (the interval is open).

Splits: the triple (k, lo, hi) hashes to train / val / test / ood (`split_of_prompt` of the embedded tasks on
"k lo hi": no triple is in two splits). train / val / test word the question with one of TEMPLATES; ood uses
OOD_TEMPLATE, a wording held out of training.

Teacher context (`teacher_prompt`, version 2): each demonstration as a checked worked example ("Example of a
correct answer: 18. Check: 18 is greater than 8 and less than 31, so 18 is correct."), then the rule that makes an
answer right ("Every whole number from 9 to 30 is correct; a number of 8 or less, of 31 or more, or two numbers, is
wrong."), then the question. Why: version 1 showed the bare demo ("Example of a correct answer: 18."), which lifts
the demo's own answer but says nothing about what makes the others right or wrong, so on SmolLM2 the gate's
Δ = log p(y | demo, x) - log p(y | x) told correct from incorrect rollouts too weakly (Δ-AUC 0.571 < 0.60, below
the student's own log-likelihood AUC 0.617; 16 train problems x 32). The student's wrong answers are
mostly single numbers outside the interval (below lo, above hi, an end restated), hedges and non-answers; a teacher
told the rule pushes those down. Rescoring the same 416 rollouts with other contexts (gate train split only):
bare demo 0.570, "18 is between 8 and 31, so 18 is a correct answer." 0.617, demo + rule 0.644, demo + "Check:
8 < 18 < 31" 0.633, rule only, no demo 0.617, statement + range 0.652, this checked demo + full rule 0.675 (README
"A real pretrained model, offline" has the gate table). A demo that grades wrong (a contrastive strategy's
negative) is shown as wrong, never as correct. Problems, prompt and verifier are version 1's: lower bounds in
1-20 instead of 1-40 (fewer answers below lo, 16 other train problems x 32) lifted pass@1 to 0.387 but not Δ-AUC
(bare demo 0.572, this context 0.656), so the distribution was kept.

Grading (`grade`): the completion's answers are the numbers it states strictly inside (lo, hi) — digits
(integers or decimals) or English number words up to ninety-nine ("fifteen", "twenty-five": written-out
answers are answers, deliberately); numbers outside the interval (the ends restated, "5 x 3") are not
answers. No answer is wrong (status "no_answer"); two different answers are wrong ("15 or 20": a hedge);
exactly one is correct when it is an integer multiple of k. Functional class: the answer ("15"); semantic
class: its form ("digits" / "words"). Tests: pytest tests/test_nl_between.py (hand-written and adversarial
completions).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from sdbench.task import Problem, Verdict, check_split, register_task, stable_rng
from sdbench.tasks._embedded import split_of_prompt

K_VALUES = (1,)                # 1: any number (multiples of 2..10 are out of SmolLM2-135M's reach; see above)
LO_RANGE = (1, 40)             # lo drawn here; hi = lo + a span
MIN_ANSWERS, MAX_ANSWERS = 7, 29
TEMPLATES = {
    "one": ("Name a number between {lo} and {hi}.",
            "Give one number that is greater than {lo} and less than {hi}.",
            "Which number lies between {lo} and {hi}? Name one."),
    "many": ("Name a number between {lo} and {hi} that is a multiple of {k}.",
             "Give one multiple of {k} that is greater than {lo} and less than {hi}.",
             "Which number between {lo} and {hi} is divisible by {k}? Name one."),
}
OOD_TEMPLATE = {"one": "Pick a whole number larger than {lo} but smaller than {hi}.",
                "many": "Pick a whole number larger than {lo} but smaller than {hi} that {k} divides evenly."}
INSTRUCTION = " Answer with the number only."
# Two worked chat turns before every question, student and teacher alike (the same in every split).
EXAMPLES = (("Name a number between 4 and 20." + INSTRUCTION, "12"),
            ("Give one number that is greater than 41 and less than 65." + INSTRUCTION, "50"))
DEMO_HEAD = "Example of a correct answer: {demo}."
# Version 2's teacher context (`teacher_prompt`): each demo as a checked worked example, then the rule that makes an
# answer right, then the question. Chosen by the gate's Δ-AUC on its train split (module docstring).
CHECKED = "Example of a correct answer: {demo}. Check: {value} is greater than {lo} and less than {hi}{mult}, so " \
          "{value} is correct."
UNCHECKED = "Example of an answer: {demo}. Check: it is not one {what} greater than {lo} and less than {hi}, so it " \
            "is wrong."
RULE = "Every {what} from {first} to {last} is correct; a number of {lo} or less, of {hi} or more, or two numbers, " \
       "is wrong."

_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)}
_TOKEN = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w)|[A-Za-z]+")


def stated_numbers(text: str) -> list[tuple[float, str]]:
    """(value, form) of every number the text states, in order: digits ('digits') or English number words up to
    ninety-nine ('words'; 'twenty-five' and 'twenty five' are one number). Digits glued to letters are none."""
    out: list[tuple[float, str]] = []
    tokens = list(_TOKEN.finditer(text))
    i = 0
    while i < len(tokens):
        token = tokens[i].group(0)
        if not token[0].isalpha():
            out.append((float(token), "digits"))
            i += 1
            continue
        word = token.lower()
        value = _UNITS.get(word, _TENS.get(word))
        if value is not None and word in _TENS and i + 1 < len(tokens):   # tens, a unit after one hyphen or space
            nxt = tokens[i + 1]
            unit = _UNITS.get(nxt.group(0).lower())
            if text[tokens[i].end():nxt.start()] in ("-", " ") and unit is not None and 0 < unit < 10:
                value += unit
                i += 1
        if value is not None:
            out.append((float(value), "words"))
        i += 1
    return out


def grade(k: int, lo: int, hi: int, text: str) -> Verdict:
    answers = {(v, form) for v, form in stated_numbers(text) if lo < v < hi}
    values = {v for v, _ in answers}
    if not values:
        return Verdict(correct=False, status="no_answer")
    if len(values) > 1:
        return Verdict(correct=False)
    value = values.pop()
    if value != int(value) or int(value) % k:
        return Verdict(correct=False)
    form = "digits" if any(f == "digits" for _, f in answers) else "words"
    return Verdict(correct=True, functional_class=str(int(value)), semantic_class=form)


def multiples(k: int, lo: int, hi: int) -> list[int]:
    return [n for n in range(lo + 1, hi) if n % k == 0]


def draw_triple(rng: random.Random) -> tuple[int, int, int]:
    """(k, lo, hi): for k > 1 neither end a multiple of k (and k < lo); MIN..MAX_ANSWERS answers strictly between."""
    while True:
        k = rng.choice(K_VALUES)
        lo = rng.randint(*LO_RANGE)
        hi = lo + rng.randint(k * MIN_ANSWERS, k * (MAX_ANSWERS + 1))
        if k > 1 and (lo % k == 0 or hi % k == 0 or k >= lo):
            continue
        if MIN_ANSWERS <= len(multiples(k, lo, hi)) <= MAX_ANSWERS:
            return k, lo, hi


@register_task("nl_between")
class NLBetween:
    """Name a number (a multiple of k) between lo and hi: several correct answers per problem, graded from English."""

    name: ClassVar[str] = "nl_between"
    version: ClassVar[str] = "2"          # 2: the teacher sees each demo checked and the rule (module docstring)
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test", "ood")
    max_new_tokens: ClassVar[int] = 16      # "The number 12" is 4 tokens; room for a short sentence
    reads_data: ClassVar[bool] = False
    temperature: ClassVar[float] = 1.0      # sampling temperature of every arm and of the gate (chosen by the gate)
    gate: ClassVar[str] = "real_model"      # issue 30's thresholds (sdbench.gate)
    # The chat template (SmolLM2's ChatML) with two worked turns and no system turn of our own: SmolLM2's
    # template then writes its default system prompt.
    prompt_format: ClassVar[dict[str, Any]] = {"chat": True, "system": None, "examples": EXAMPLES}
    default_model: ClassVar[str] = "smollm2-135m-instruct"

    def problems(self, split: str, count: int, seed: int = 0) -> list[Problem]:
        check_split(self, split)  # type: ignore[arg-type]
        return [self._problem(f"{self.name}/{split}/{seed}/{i}", stable_rng(self.name, split, seed, i), split)
                for i in range(count)]

    def _problem(self, problem_id: str, rng: random.Random, split: str) -> Problem:
        while True:
            k, lo, hi = draw_triple(rng)
            if split_of_prompt(f"{k} {lo} {hi}") == split:
                break
        form = "one" if k == 1 else "many"
        template = OOD_TEMPLATE[form] if split == "ood" else rng.choice(TEMPLATES[form])
        question = template.format(k=k, lo=lo, hi=hi)
        answers = multiples(k, lo, hi)
        return Problem(id=problem_id, prompt=question + INSTRUCTION, reference=str(answers[0]),
                       data={"k": k, "lo": lo, "hi": hi, "question": question, "answers": answers})

    def verify(self, problem: Problem, completions: Sequence[str]) -> list[Verdict]:
        d = problem.data
        return [grade(d["k"], d["lo"], d["hi"], text) for text in completions]

    def teacher_prompt(self, problem: Problem, demos: Sequence[str]) -> str:
        """Each demonstration (whitespace normalized) as a checked worked example, the rule that makes an answer
        right, then the question, in the user turn. A demo that grades wrong (a contrastive strategy's negative)
        is said to be wrong; with no demo only the rule precedes the question."""
        d = problem.data
        k, lo, hi = d["k"], d["lo"], d["hi"]
        what = "whole number" if k == 1 else f"multiple of {k}"
        lines = []
        for demo in demos:
            shown, verdict = " ".join(demo.split()), grade(k, lo, hi, demo)
            lines.append(CHECKED.format(demo=shown, value=verdict.functional_class, lo=lo, hi=hi,
                                        mult="" if k == 1 else f" and a multiple of {k}") if verdict.correct
                         else UNCHECKED.format(demo=shown, what=what, lo=lo, hi=hi))
        answers = multiples(k, lo, hi)
        lines.append(RULE.format(what=what, first=answers[0], last=answers[-1], lo=lo, hi=hi))
        return " ".join(lines) + "\n\n" + problem.prompt

    def demo_only_prompt(self, problem: Problem, demos: Sequence[str]) -> str:
        shown = "; ".join(" ".join(d.split()) for d in demos)
        return DEMO_HEAD.format(demo=shown) + INSTRUCTION

    def base_model(self) -> str:
        return self.default_model
