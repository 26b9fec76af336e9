"""The task interface: problems, a verifier, and the teacher's demonstration templates.

A task is the only component that knows what a problem looks like. The core sees text: a
problem's `prompt` (the student's context, which a completion continues), teacher prompts built by
`teacher_prompt` / `demo_only_prompt`, and completions it hands back to `verify`. A task that can
grade many problems more cheaply at once (one sandbox for a whole training step) also defines
`verify_many` (`BatchVerifiable`); the trainer and evaluator call `verify_groups`, which uses it.

Register a task with `@register_task("name")` or the entry-point group `sdbench.tasks`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from sdbench.registry import Registry
from sdbench.seeding import stable_rng as stable_rng  # re-exported: tasks seed their problems with it

SPLITS = ("train", "val", "test", "ood")   # val: only for choosing checkpoints (protocol v2)


@dataclass(frozen=True)
class Problem:
    """One problem. `prompt` is what the student sees; a completion continues it verbatim."""

    id: str
    prompt: str
    reference: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """The grade of one completion.

    functional_class identifies *what* the solution is (two completions with the same class are
    the same solution); semantic_class is a coarser grouping (the route, the operator shape).
    status is "ok" for a gradable completion, else why it was not (error, timeout, memory, ...).
    reward is what RL strategies optimize, in [0, 1]: by default float(correct); a task may grade
    partial credit (e.g. the share of tests passed). pass@k and diversity always use `correct`.
    """

    correct: bool
    functional_class: str | None = None
    semantic_class: str | None = None
    status: str = "ok"
    reward: float = None  # type: ignore[assignment]   # None -> float(correct), set in __post_init__

    def __post_init__(self) -> None:
        if self.reward is None:
            object.__setattr__(self, "reward", float(self.correct))
        elif not 0.0 <= float(self.reward) <= 1.0:
            raise ValueError(f"Verdict.reward must lie in [0, 1], got {self.reward}")


@runtime_checkable
class Task(Protocol):
    """What every task provides. Optional class attributes the core also reads: `reads_data = True`
    when the constructor takes `data_path` (see `load_task`)."""

    name: ClassVar[str]
    splits: ClassVar[tuple[str, ...]]
    max_new_tokens: ClassVar[int]

    def problems(self, split: str, count: int, seed: int = 0) -> list[Problem]:
        """`count` problems of `split`, the same list for the same (split, count, seed)."""
        ...

    def verify(self, problem: Problem, completions: Sequence[str]) -> list[Verdict]:
        """Grade completions of one problem. Generated code runs only in the sandbox."""
        ...

    def teacher_prompt(self, problem: Problem, demos: Sequence[str]) -> str:
        """The teacher's context: demonstrations, then the question; completions continue it."""
        ...

    def demo_only_prompt(self, problem: Problem, demos: Sequence[str]) -> str:
        """The demonstrations without the question (the reference-only context)."""
        ...

    def base_model(self) -> str:
        """Path (or hub id) of this task's default base model."""
        ...


@runtime_checkable
class Pretrainable(Protocol):
    """An embedded task that can make the pretraining corpus of its own base model.

    Each text is `PROMPT\tCOMPLETION`: `sdbench pretrain` trains on the completion (plus EOS) given
    the prompt, exactly the shape of a student (problem.prompt) or teacher (teacher_prompt) context.
    """

    def pretraining_texts(self, rng: random.Random, count: int) -> list[str]:
        ...


@runtime_checkable
class BatchVerifiable(Protocol):
    """A task that grades many problems at once more cheaply than one by one (e.g. one sandbox for all)."""

    def verify_many(self, problems: Sequence[Problem], completions: Sequence[Sequence[str]]) -> list[list[Verdict]]:
        """`[task.verify(p, c) for p, c in zip(problems, completions)]`, the same verdicts."""
        ...


def verify_groups(task: Task, problems: Sequence[Problem], completions: Sequence[Sequence[str]]) -> list[list[Verdict]]:
    """Grade each problem's completions: through `verify_many` when the task has it, else one by one."""
    if isinstance(task, BatchVerifiable):
        return task.verify_many(problems, completions)
    return [task.verify(p, texts) for p, texts in zip(problems, completions, strict=True)]


TASKS: Registry[type] = Registry(kind="task", group="sdbench.tasks")

TaskT = TypeVar("TaskT", bound=type)


def register_task(name: str) -> Callable[[TaskT], TaskT]:
    """Class decorator: make a task available to `sdbench run --tasks NAME`."""
    return TASKS.decorator(name)  # type: ignore[return-value]


def load_task(name: str, data_path: str | None = None) -> Task:
    """Instantiate the task registered as `name`, reading `data_path` when given.

    Only a task whose class says `reads_data = True` (the real-data tasks: a local copy of their
    dataset instead of the hub) takes a data path; for any other task a data path is a user error."""
    cls = TASKS.get(name)
    if data_path is None:
        return cls()
    if not getattr(cls, "reads_data", False):
        from sdbench.errors import UserError
        raise UserError(f"task {name!r} does not read data files", "drop --data-path for it")
    return cls(data_path=data_path)


_PROBLEM_SETS: dict[tuple, list[Problem]] = {}


def problem_set(task: Task, split: str, count: int, seed: int = 0) -> list[Problem]:
    """`task.problems(split, count, seed)`, computed once per process: every cell of a worker draws the
    same training pool and evaluation problems, and `problems` is deterministic by contract. Keyed by
    the task's class and its data path (tasks reading files), so two tasks never share an entry."""
    key = (type(task).__module__, type(task).__qualname__, str(getattr(task, "data_path", None)), split, count, seed)
    if key not in _PROBLEM_SETS:
        _PROBLEM_SETS[key] = task.problems(split, count, seed=seed)
    return list(_PROBLEM_SETS[key])


def check_split(task: Task, split: str) -> None:
    if split not in task.splits:
        from sdbench.errors import unknown_name
        raise unknown_name(f"split of task {task.name}", split, task.splits)
