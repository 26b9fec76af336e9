"""Evaluation along training (protocol v2): val every K steps, the best-val checkpoint, test / ood at both.

    hook = ValEvaluator(model, tokenizer, task, config.evaluation, seed=0, backend="hf", cache_key=...)
    train(..., hook=hook)                      # calls hook(0), hook(K), hook(2K), ..., hook(steps)
    evals, samples = evaluate_checkpoints(model, tokenizer, task, config.evaluation, hook, seed=0, backend="hf")

At each point the val split gets `val_samples` samples per problem: per-problem counts, the policy's
entropy and its exact KL from the base model (`kl_from_base`). The best-val checkpoint is the
highest val pass@1, ties going to the earliest step; its weights are kept (in memory and in the
training checkpoint) so that test and ood can be evaluated at it as well as at the final step.
Nothing here looks at test or ood to choose anything.

Seeds: every val point uses the same sampling seed (common random numbers: differences between
steps are the policy's, not the sampler's), and test / ood use the same seeds at both checkpoints.
Step 0 is the base model for every strategy of a (task, model, seed), so its val evaluation is
computed once per worker process and reused (`STEP0_CACHE`, keyed by everything that determines it).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch

from sdbench.config import EvalConfig
from sdbench.core.timing import NO_TIMER, StageTimer
from sdbench.eval.evaluate import evaluate_split
from sdbench.runs.record import EvalPoint
from sdbench.seeding import hash_seed
from sdbench.task import Task, problem_set

VAL = "val"
STEP0_CACHE: dict[tuple, EvalPoint] = {}


def select_best(trajectory: list[EvalPoint]) -> int:
    """The step of the highest val pass@1; ties go to the earliest step (less distance from the base)."""
    best = max(p.pass1 for p in trajectory)
    return next(p.step for p in trajectory if p.pass1 == best)


class ValEvaluator:
    """The trainer's `EvalHook`: evaluates val at a step, keeps the trajectory and the best weights."""

    def __init__(self, model, tokenizer, task: Task, evaluation: EvalConfig, *, seed: int, backend: str,
                 cache_key: tuple, timer: StageTimer = NO_TIMER, board: Any = None) -> None:
        self.tokenizer, self.task, self.evaluation = tokenizer, task, evaluation
        self.every = evaluation.every
        self.seed, self.backend, self.timer, self.board = seed, backend, timer, board
        self.active = VAL in task.splits
        # the base weights: the reference of kl_from_base (the trainer changes `model` in place)
        self.base = copy.deepcopy(model).requires_grad_(False) if self.active else None
        self.key = (*cache_key, seed, evaluation.val_problems, evaluation.val_samples, backend)
        self.trajectory: list[EvalPoint] = []
        self.best_step: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def __call__(self, step: int, model) -> None:
        point = STEP0_CACHE.get(self.key) if step == 0 else None
        if point is None:
            with self.timer("val"):
                problems = problem_set(self.task, VAL, self.evaluation.val_problems)
                out = evaluate_split(model, self.tokenizer, self.task, problems, n=self.evaluation.val_samples,
                                     seed=hash_seed(self.seed, VAL), backend=self.backend,
                                     base_model=self.base if step else model)
            point = EvalPoint(step=step, n=self.evaluation.val_samples, problems=out.problems)
            if step == 0:
                STEP0_CACHE[self.key] = point
        self.trajectory.append(point)
        if select_best(self.trajectory) == step:     # the new point is the best so far: keep its weights
            self.best_step = step
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if self.board is not None:
            self.board.point(point)

    def state_dict(self) -> dict[str, Any]:
        return {"trajectory": [p.model_dump(mode="json") for p in self.trajectory], "best_step": self.best_step,
                "best_state": self.best_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trajectory = [EvalPoint.model_validate(p) for p in state["trajectory"]]
        self.best_step = state["best_step"]
        self.best_state = state["best_state"]


def evaluate_checkpoints(model, tokenizer, task: Task, evaluation: EvalConfig, hook: ValEvaluator, *, seed: int,
                         backend: str, on_problem: Callable[[str, int, int], None] | None = None,
                         ) -> tuple[dict[str, dict[str, Any]], list[dict]]:
    """{"final": {split: SplitEval}, "best_val": {...}} and the samples of both (with their checkpoint).

    `model` holds the final weights; when the best-val step is not the last point, the best weights are
    loaded into it for the second evaluation (the cell is over, nothing trains it afterwards). Without
    a val split there is no best-val checkpoint: only "final".
    """
    final_step = hook.trajectory[-1].step if hook.trajectory else None
    checkpoints = ["final"]
    if hook.best_step is not None:
        checkpoints.append("best_val")
    total = evaluation.problems * len(evaluation.splits) * (1 if hook.best_step == final_step else len(checkpoints))
    done = 0

    def tick(k: int) -> None:
        nonlocal done
        done += k
        if on_problem is not None:
            on_problem("evaluate", done, total)

    evals: dict[str, dict[str, Any]] = {}
    samples: list[dict] = []
    for checkpoint in checkpoints:
        if checkpoint == "best_val" and hook.best_step == final_step:
            evals["best_val"] = evals["final"]           # the same weights: the same evaluation
            continue
        if checkpoint == "best_val":
            assert hook.best_state is not None
            model.load_state_dict(hook.best_state)
        evals[checkpoint] = {}
        for split in evaluation.splits:
            problems = problem_set(task, split, evaluation.problems)
            out = evaluate_split(model, tokenizer, task, problems, n=evaluation.samples,
                                 seed=hash_seed(seed, split), on_problem=tick, backend=backend)
            evals[checkpoint][split] = {"n": evaluation.samples, "problems": [p.model_dump() for p in out.problems]}
            samples.extend({"checkpoint": checkpoint, "split": split, **s.__dict__} for s in out.samples)
    return evals, samples
