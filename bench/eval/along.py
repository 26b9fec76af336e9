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

With an evaluation lane (`sdbench.eval.lane`, a cell with an idle core) a val point is a snapshot of the
weights sent to the helper; points are added to the trajectory in step order as they come back, travel
in the training checkpoint as weights while pending, and are evaluated here if the lane fails.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable
from typing import Any

import torch

from sdbench.core.timing import NO_TIMER, StageTimer
from sdbench.eval.lane import EvalLane, LaneFailed
from sdbench.eval.protocol import VAL, EvalConfig, evaluate_at_seed, select_best
from sdbench.results.record import EvalPoint
from sdbench.task import Task

STEP0_CACHE: dict[tuple, EvalPoint] = {}


class ValEvaluator:
    """The trainer's `EvalHook`: evaluates val at a step, keeps the trajectory and the best weights."""

    def __init__(self, model, tokenizer, task: Task, evaluation: EvalConfig, *, seed: int, backend: str,
                 cache_key: tuple, timer: StageTimer = NO_TIMER, board: Any = None, lane: EvalLane | None = None,
                 ) -> None:
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
        self.lane = lane                                     # sdbench.eval.lane: val on an idle core
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}   # steps in the lane: their weights

    def __call__(self, step: int, model) -> None:
        point = STEP0_CACHE.get(self.key) if step == 0 else None
        if point is not None:
            self._add(point, model.state_dict())
            return
        with self.timer("val"):
            if self.lane is not None:            # evaluated on the idle core; resolved in step order
                snapshot = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if self.offload(("val", step), snapshot, split=VAL, step=step):
                    self.snapshots[step] = snapshot
                    self._collect(block=False)
                    return
            self._collect(block=True)            # (points a failed lane left: evaluated here, in order)
            point = self._evaluate(step, model)
        self._add(point, model.state_dict())

    def _evaluate(self, step: int, model) -> EvalPoint:
        out = evaluate_at_seed(model, self.tokenizer, self.task, self.evaluation, VAL, seed=self.seed,
                               backend=self.backend, base_model=self.base if step else model)
        return EvalPoint(step=step, n=self.evaluation.val_samples, problems=out.problems)

    def _add(self, point: EvalPoint, state: dict[str, torch.Tensor]) -> None:
        if point.step == 0:
            STEP0_CACHE[self.key] = point
        self.trajectory.append(point)
        if select_best(self.trajectory) == point.step:     # the new point is the best so far: keep its weights
            self.best_step = point.step
            self.best_state = {k: v.detach().clone() for k, v in state.items()}
        if self.board is not None:
            self.board.point(point)

    def _collect(self, *, block: bool) -> None:
        """Add the lane's finished val points, in step order (all of them when `block`)."""
        for step in sorted(self.snapshots):
            point = self._from_lane(step, block)
            if point is None:
                return
            self._add(point, self.snapshots.pop(step))

    def _from_lane(self, step: int, block: bool) -> EvalPoint | None:
        """The lane's val point at `step` (None: not done, and not `block`); evaluated here if the lane failed."""
        if self.lane is not None and not block:
            try:
                if ("val", step) not in self.lane.ready():
                    return None
            except LaneFailed:
                self.drop_lane()
        done = self.collect(("val", step))
        if done is not None:
            return EvalPoint(step=step, n=self.evaluation.val_samples, problems=done[0])
        return self._evaluate_weights(step, self.snapshots[step])

    @property
    def has_lane(self) -> bool:
        return self.lane is not None

    def offload(self, key: Hashable, weights: dict[str, torch.Tensor], *, split: str, step: int | None = None,
                ) -> bool:
        """Send an evaluation of `split` at `weights` to the lane; False when there is none (or it just failed
        and was dropped): the caller evaluates here."""
        if self.lane is None:
            return False
        try:
            self.lane.submit(key, weights, split=split, step=step)
            return True
        except LaneFailed:
            self.drop_lane()
            return False

    def collect(self, key: Hashable) -> tuple[list, list] | None:
        """(per-problem counts, samples) of an offloaded job, its helper's seconds counted to the "lane" stage;
        None when there is no lane or it failed (dropped): the caller evaluates here, with the same numbers."""
        if self.lane is None:
            return None
        try:
            problems, samples, seconds = self.lane.take(key)
        except LaneFailed:
            self.drop_lane()
            return None
        self.timer.add("lane", seconds)
        return problems, samples

    def checkpoints(self) -> list[str]:
        """The checkpoints to evaluate once training is over (after every val point is in): "final", and
        "best_val" when the best val point is not the last one."""
        self.finish()
        final_step = self.trajectory[-1].step if self.trajectory else None
        return ["final"] if self.best_step is None or self.best_step == final_step else ["final", "best_val"]

    def best_weights(self) -> dict[str, torch.Tensor]:
        assert self.best_state is not None, "no val point yet"
        return self.best_state

    def drop_lane(self) -> None:
        """Evaluate here from now on (the lane failed a job: it is an optimization, never a cause of failure)."""
        if self.lane is not None:
            self.lane.close()
        self.lane = None

    def finish(self) -> None:
        """Wait for every val point still being evaluated (the trajectory is complete after this)."""
        if self.snapshots:
            with self.timer("val"):
                self._collect(block=True)

    def state_dict(self) -> dict[str, Any]:
        # points still in the lane travel as their weights, evaluated again on resume: the same numbers
        return {"trajectory": [p.model_dump(mode="json") for p in self.trajectory], "best_step": self.best_step,
                "best_state": self.best_state, "pending": dict(self.snapshots)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trajectory = [EvalPoint.model_validate(p) for p in state["trajectory"]]
        self.best_step = state["best_step"]
        self.best_state = state["best_state"]
        self.snapshots = dict(sorted(state.get("pending", {}).items()))
        for step, weights in self.snapshots.items():
            if not self.offload(("val", step), weights, split=VAL, step=step):
                break
        if self.lane is None:
            with self.timer("val"):
                self._collect(block=True)

    def _evaluate_weights(self, step: int, weights: dict[str, torch.Tensor]) -> EvalPoint:
        model = copy.deepcopy(self.base)
        model.load_state_dict(weights)
        return self._evaluate(step, model)


def evaluate_checkpoints(model, tokenizer, task: Task, evaluation: EvalConfig, hook: ValEvaluator, *, seed: int,
                         backend: str, on_problem: Callable[[str, int, int], None] | None = None,
                         ) -> tuple[dict[str, dict[str, Any]], list[dict]]:
    """{"final": {split: SplitEval}, "best_val": {...}} and the samples of both (with their checkpoint).

    `model` holds the final weights; when the best-val step is not the last point, the best weights are
    evaluated too (loaded into `model` when there is no lane: the cell is over, nothing trains it
    afterwards). Without a val split there is no best-val checkpoint: only "final". With the hook's lane,
    the second half of the (checkpoint, split) jobs runs there while this process does the first.
    """
    checkpoints = hook.checkpoints()
    jobs = [(checkpoint, split) for checkpoint in checkpoints for split in evaluation.splits]
    total = evaluation.problems * len(jobs)
    done = 0

    def tick(k: int) -> None:
        nonlocal done
        done += k
        if on_problem is not None:
            on_problem("evaluate", done, total)

    remote = jobs[(len(jobs) + 1) // 2:] if hook.has_lane else []
    final_state = {k: v.detach().clone() for k, v in model.state_dict().items()} if remote else {}

    def weights(checkpoint: str) -> dict[str, torch.Tensor]:
        return final_state if checkpoint == "final" else hook.best_weights()

    remote = [(c, s) for c, s in remote if hook.offload(("eval", c, s), weights(c), split=s)]
    results: dict[tuple[str, str], tuple[list, list]] = {}
    for checkpoint, split in jobs:
        if (checkpoint, split) in remote:
            continue
        if checkpoint == "best_val":
            model.load_state_dict(hook.best_weights())
        out = evaluate_at_seed(model, tokenizer, task, evaluation, split, seed=seed, backend=backend, on_problem=tick)
        results[checkpoint, split] = (out.problems, out.samples)
    for checkpoint, split in remote:
        result = hook.collect(("eval", checkpoint, split))
        if result is None:                 # the lane failed: evaluate it here, as without a lane
            model.load_state_dict(weights(checkpoint))
            out = evaluate_at_seed(model, tokenizer, task, evaluation, split, seed=seed, backend=backend)
            result = (out.problems, out.samples)
        tick(len(result[0]))
        results[checkpoint, split] = result

    evals: dict[str, dict[str, Any]] = {}
    samples: list[dict] = []
    for checkpoint, split in jobs:
        problems, split_samples = results[checkpoint, split]
        evals.setdefault(checkpoint, {})[split] = {"n": evaluation.samples,
                                                   "problems": [p.model_dump() for p in problems]}
        samples.extend({"checkpoint": checkpoint, "split": split, **s.__dict__} for s in split_samples)
    if hook.best_step is not None and "best_val" not in evals:
        evals["best_val"] = evals["final"]           # the same weights: the same evaluation
    return evals, samples
