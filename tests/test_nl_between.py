"""nl_between: problems, splits and the verifier against hand-written and adversarial completions.

Run: pytest tests/test_nl_between.py   (no model: the gate on SmolLM2 is measured in the README)
"""

from __future__ import annotations

import pytest

from sdbench.core.model import PromptFormat, prompt_format
from sdbench.task import Problem, load_task
from sdbench.tasks.nl_between import EXAMPLES, OOD_TEMPLATE, TEMPLATES, grade, multiples, stated_numbers


@pytest.fixture(scope="module")
def task():
    return load_task("nl_between")


def _problem(k: int, lo: int, hi: int) -> Problem:
    return Problem(id="t", prompt="q", reference="", data={"k": k, "lo": lo, "hi": hi, "question": "q",
                                                          "answers": multiples(k, lo, hi)})


@pytest.mark.parametrize(("text", "correct", "cls", "status"), [
    ("15", True, "15", "ok"),
    ("The answer is 20.", True, "20", "ok"),
    ("15 is a multiple of 5 between 11 and 34.", True, "15", "ok"),   # the ends restated are not answers
    ("15, because 5 x 3 = 15", True, "15", "ok"),                     # 5 and 3 lie outside (11, 34)
    ("fifteen", True, "15", "words"),                                 # a written-out answer is an answer
    ("Twenty-five.", True, "25", "words"),
    ("It is twenty five", True, "25", "words"),
    ("15 (fifteen)", True, "15", "ok"),                               # one answer, stated twice
    ("15 or 20", False, None, "ok"),                                  # two different answers: a hedge
    ("15, 20, 25, 30", False, None, "ok"),
    ("15. Also twenty works.", False, None, "ok"),
    ("16", False, None, "ok"),                                        # not a multiple
    ("15.5", False, None, "ok"),                                      # not an integer
    ("35", False, None, "no_answer"),                                 # outside the interval: no answer in it
    ("10", False, None, "no_answer"),
    ("I don't know.", False, None, "no_answer"),
    ("", False, None, "no_answer"),
    ("5", False, None, "no_answer"),                                  # k itself
    ("x15y", False, None, "no_answer"),                               # digits glued into a word are no number
])
def test_grade_adversarial_completions(text: str, correct: bool, cls: str | None, status: str) -> None:
    v = grade(5, 11, 34, text)
    assert v.correct is correct
    assert v.functional_class == cls
    if correct:
        assert v.semantic_class == ("words" if status == "words" else "digits")
    else:
        assert v.status == status


def test_stated_numbers_reads_digits_and_words() -> None:
    assert stated_numbers("twelve, 7 and forty-two; -3 and 2.5") == [
        (12.0, "words"), (7.0, "digits"), (42.0, "words"), (-3.0, "digits"), (2.5, "digits")]
    assert stated_numbers("someone tenth") == []                       # 'one' inside a word is not 1


def test_problems_are_deterministic_split_disjoint_and_well_formed(task) -> None:
    triples = {}
    for split in task.splits:
        for p in task.problems(split, 60):
            k, lo, hi = p.data["k"], p.data["lo"], p.data["hi"]
            answers = multiples(k, lo, hi)
            assert 7 <= len(answers) <= 29 and k == 1 and lo >= 1
            assert p.data["answers"] == answers and p.reference == str(answers[0])
            # every listed answer grades correct, with its own class: several distinct correct answers
            verdicts = task.verify(p, [str(a) for a in answers])
            assert all(v.correct for v in verdicts) and len({v.functional_class for v in verdicts}) == len(answers)
            templates = (OOD_TEMPLATE["one"],) if split == "ood" else TEMPLATES["one"]
            assert any(p.data["question"] == t.format(k=k, lo=lo, hi=hi) for t in templates)
            triples.setdefault((k, lo, hi), set()).add(split)
    assert all(len(s) == 1 for s in triples.values())                   # no triple in two splits


RULE_8_31 = ("Every whole number from 9 to 30 is correct; a number of 8 or less, of 31 or more, or two numbers, "
             "is wrong.")


def test_teacher_prompt_shows_each_demo_checked_then_the_rule(task) -> None:
    """Version 2's teacher context: the demo as a checked worked example, the rule, the question (exact text)."""
    p = _problem(1, 8, 31)
    assert task.teacher_prompt(p, ["  The number\n 24 "]) == (
        "Example of a correct answer: The number 24. Check: 24 is greater than 8 and less than 31, so 24 is "
        "correct. " + RULE_8_31 + "\n\nq")
    # a written-out demo is checked by its value
    assert "Check: 15 is greater than 8" in task.teacher_prompt(p, ["fifteen"])
    # demos that grade wrong (a contrastive strategy's negatives) are never called correct: two answers, none,
    # an end restated, out of range
    for wrong in ("12 or 20", "I don't know", "31", "6"):
        assert task.teacher_prompt(p, [wrong]) == (
            f"Example of an answer: {wrong}. Check: it is not one whole number greater than 8 and less than 31, so "
            "it is wrong. " + RULE_8_31 + "\n\nq")
    two = task.teacher_prompt(p, ["12", "6"])
    assert two.index("Check: 12 is greater") < two.index("Example of an answer: 6.") < two.index(RULE_8_31)
    assert task.teacher_prompt(p, []) == RULE_8_31 + "\n\nq"        # no demo: the rule and the question
    # the general form names the multiples
    assert task.teacher_prompt(_problem(5, 11, 34), ["20"]) == (
        "Example of a correct answer: 20. Check: 20 is greater than 11 and less than 34 and a multiple of 5, so 20 "
        "is correct. Every multiple of 5 from 15 to 30 is correct; a number of 11 or less, of 34 or more, or two "
        "numbers, is wrong.\n\nq")


def test_teacher_prompts_and_prompt_format(task) -> None:
    p = task.problems("test", 1)[0]
    assert task.teacher_prompt(p, ["24"]).endswith("\n\n" + p.prompt)
    assert task.demo_only_prompt(p, ["24"]) == "Example of a correct answer: 24. Answer with the number only."
    assert p.data["question"] not in task.demo_only_prompt(p, ["24"])
    assert prompt_format(task) == PromptFormat(chat=True, system=None, examples=EXAMPLES)
    assert task.reads_data is False and task.version == "2" and task.gate == "real_model"


def test_multiples_of_k_grade_too() -> None:
    """The general form (k > 1, not in version 1's distribution) grades multiples only."""
    assert [grade(5, 11, 34, t).correct for t in ("15", "16", "30", "35")] == [True, False, True, False]
