"""The Task contract (sdbench.task), checked once for every registered built-in task.

Each built-in (the embedded testbeds, the real-data tasks on their shipped fixtures, nl_between) must: be a
`Task` registered under its own name; give the same problems for the same (split, count, seed), a count's
problems being a prefix of a larger count's; keep its splits disjoint; grade its references correct with a
functional class, and an empty completion incorrect; build teacher contexts that hold the demo and end with
the question, and demo-only contexts that hold the demo without the question; refuse an unknown split; and,
when it makes its own pretraining corpus, make it deterministically, as PROMPT TAB COMPLETION texts, with no
test or OOD prompt in it. What is particular to one task (its grading rules, its generators, its settings)
is tested in that task's own file (tests/test_graph_paths.py, test_arith_target.py, ...).
Run: pytest tests/test_task.py   (a few seconds)
"""

from __future__ import annotations

import random

import pytest

from sdbench.errors import UserError
from sdbench.pretrain import COMPLETION_SEP
from sdbench.registry import HOME_DISTRIBUTION
from sdbench.task import TASKS, Pretrainable, Task, check_split, load_task, verify_groups
from sdbench.tasks._realdata import FIXTURES

# Every task the sdbench distribution registers (plugins and the tests' toy task are not built-ins); the first
# test holds this list to the registry, so a new built-in joins the contract.
BUILTIN = ["arith_target", "code_synth", "graph_paths", "gsm8k", "humaneval", "math500", "mbpp", "nl_between"]
COUNT = 40          # problems per split drawn by the checks; the real-data fixtures hold fewer (2-5), all taken


def builtin(name: str) -> Task:
    """The task, reading its shipped fixture when it reads data files (nothing is downloaded)."""
    reads_data = getattr(TASKS.get(name), "reads_data", False)
    return load_task(name, data_path=str(FIXTURES / name) if reads_data else None)


def test_every_builtin_is_covered() -> None:
    assert sorted(n for n in TASKS.names() if TASKS.entry(n).distribution == HOME_DISTRIBUTION) == BUILTIN


@pytest.fixture(scope="module", params=BUILTIN)
def task(request: pytest.FixtureRequest) -> Task:
    return builtin(request.param)


def test_registered_under_its_name_with_the_protocol(task: Task) -> None:
    assert isinstance(task, Task) and type(task) is TASKS.get(task.name)
    assert task.splits and len(set(task.splits)) == len(task.splits) and all(isinstance(s, str) for s in task.splits)
    assert isinstance(task.max_new_tokens, int) and task.max_new_tokens > 0
    assert isinstance(task.base_model(), str) and task.base_model()


def test_problems_are_deterministic_prefixes_with_unique_ids(task: Task) -> None:
    for split in task.splits:
        full = task.problems(split, COUNT, seed=3)
        assert full and full == task.problems(split, COUNT, seed=3)
        assert task.problems(split, 2, seed=3) == full[:2]       # a problem depends on its index, not on count
        assert len({p.id for p in full}) == len(full)
        if len(full) == COUNT:                                   # a generated split: another seed, other problems
            assert [p.prompt for p in task.problems(split, COUNT, seed=4)] != [p.prompt for p in full]


def test_splits_are_disjoint(task: Task) -> None:
    prompts = {split: {p.prompt for p in task.problems(split, COUNT)} for split in task.splits}
    for a in task.splits:
        for b in task.splits:
            assert a == b or not prompts[a] & prompts[b], (a, b)


def test_references_grade_correct_and_an_empty_completion_incorrect(task: Task) -> None:
    for split in task.splits:
        problems = task.problems(split, 8)
        graded = verify_groups(task, problems, [[p.reference, ""] for p in problems])
        for problem, (ok, empty) in zip(problems, graded, strict=True):
            assert ok.correct and ok.functional_class is not None and ok.reward == 1.0, (problem.id, ok)
            assert not empty.correct and empty.reward == 0.0, (problem.id, empty)


def test_teacher_and_demo_only_contexts(task: Task) -> None:
    problem, other = task.problems(task.splits[0], 2)
    demo = other.reference if other.reference.strip() != problem.reference.strip() else problem.reference
    teacher = task.teacher_prompt(problem, [demo])
    assert teacher.endswith(problem.prompt) and demo.strip() in teacher and teacher != problem.prompt
    demo_only = task.demo_only_prompt(problem, [demo])
    assert demo.strip() in demo_only and problem.prompt not in demo_only


def test_an_unknown_split_is_a_user_error(task: Task) -> None:
    with pytest.raises(UserError):
        task.problems("no_such_split", 1)
    with pytest.raises(UserError):
        check_split(task, "no_such_split")


def test_a_pretraining_corpus_is_deterministic_and_holds_no_test_or_ood_prompt(task: Task) -> None:
    if not isinstance(task, Pretrainable):
        pytest.skip(f"{task.name} has no pretraining corpus of its own")
    texts = task.pretraining_texts(random.Random(0), 1000)
    assert task.pretraining_texts(random.Random(1), 30) == task.pretraining_texts(random.Random(1), 30)
    assert all(t.count(COMPLETION_SEP) == 1 for t in texts)        # PROMPT TAB COMPLETION (sdbench.pretrain)
    # A corpus context ends with the question (after any "| "-separated demos), as a student prompt does.
    corpus = {t.split(COMPLETION_SEP)[0].split("| ")[-1] for t in texts}
    for split in ("test", "ood"):
        assert not corpus & {p.prompt for p in task.problems(split, 200)}, split
