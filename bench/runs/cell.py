"""One cell of a run: (strategy, task, seed) -> train (if the strategy trains) -> evaluate -> record.

`run_cell` is what executors call, in a worker process or in-process. It returns the record and
the evaluation samples; the executor writes them through the RunStore. A cell that diverges or
whose strategy raises becomes a record with status "failed" and the reason, never an exception
that takes other cells down.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sdbench.config import RunConfig, StrategySpec
from sdbench.runs.store import cell_key

Progress = Callable[[str, int, int], None]   # (phase, done, total)


@dataclass(frozen=True)
class CellSpec:
    task: str
    strategy: StrategySpec
    seed: int

    @property
    def key(self) -> str:
        return cell_key(self.task, self.strategy.label, self.seed)


def plan_cells(config: RunConfig) -> list[CellSpec]:
    """strategy x task x seed, in a stable order."""
    return [CellSpec(task, spec, seed) for task in config.tasks for spec in config.strategies
            for seed in range(config.seeds)]


def build_strategy(spec: StrategySpec) -> tuple[Any, dict[str, Any]]:
    """The strategy instance and its provenance (name, resolved params, distribution, version)."""
    from pydantic import ValidationError

    from sdbench.errors import UserError
    from sdbench.strategy import STRATEGIES

    entry = STRATEGIES.entry(spec.name)
    cls = entry.load()
    try:
        params = cls.Params(**spec.params)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserError(f"strategy {spec.name!r}: invalid hyperparameter {'.'.join(map(str, err['loc']))!r}: "
                        f"{err['msg']}", f"see `sdbench strategies show {spec.name}`") from exc
    return cls(params), {**entry.provenance, "label": spec.label, "params": params.model_dump(mode="json")}


def run_cell(cell: CellSpec, config: RunConfig, progress: Progress | None = None,
             checkpoint: Path | None = None) -> tuple[dict, list[dict]]:
    from sdbench.core.model import load_model, set_threads, weights_hash
    from sdbench.core.trainer import TrainingDiverged, train
    from sdbench.eval.evaluate import evaluate_split
    set_threads(config.threads_per_worker)
    started = time.time()
    report = progress or (lambda phase, done, total: None)
    record: dict[str, Any] = {"key": cell.key, "task": cell.task, "seed": cell.seed,
                              "strategy": {"name": cell.strategy.name, "label": cell.strategy.label},
                              "config_hash": config.config_hash()}
    phase = "setup"
    samples: list[dict] = []
    try:
        strategy, record["strategy"] = build_strategy(cell.strategy)
        task = task_for(cell.task, config)
        model_path = config.model or task.base_model()
        record["model"] = {"path": model_path, "weights_sha256": weights_hash(model_path)}
        torch.manual_seed(cell.seed)
        model, tokenizer = load_model(model_path)
        phase = "train"
        if strategy.trains and config.training.steps > 0:
            total = config.training.steps
            result = train(model, tokenizer, task, strategy, config.training, seed=cell.seed,
                           on_step=lambda log: report("train", log.step + 1, total), checkpoint=checkpoint)
            record["train"] = {"steps": result.steps, "wall_s": round(result.wall_s, 3),
                               "log": [s.to_json() for s in result.log]}
        phase = "evaluate"
        evaluation: dict[str, Any] = {}
        n_problems = config.evaluation.problems
        total = n_problems * len(config.evaluation.splits)
        done = 0
        for split in config.evaluation.splits:
            problems = task.problems(split, n_problems, seed=0)

            def tick(k: int) -> None:
                nonlocal done
                done += k
                report("evaluate", done, total)

            out = evaluate_split(model, tokenizer, task, problems, n=config.evaluation.samples,
                                 seed=hash_seed(cell.seed, split), on_problem=tick,
                                 backend=config.training.backend)
            evaluation[split] = {"n": config.evaluation.samples, "problems": [p.to_json() for p in out.problems]}
            samples.extend({"split": split, **s.__dict__} for s in out.samples)
        record["eval"] = evaluation
        record["status"] = "ok"
    except TrainingDiverged as exc:
        record.update(status="failed", failure={"phase": phase, "step": exc.step, "reason": str(exc)})
        samples = []
    except Exception as exc:  # a plugin or evaluation crash fails this cell only
        last = traceback.extract_tb(exc.__traceback__)[-1]
        record.update(status="failed", failure={
            "phase": phase, "reason": f"{type(exc).__name__}: {exc}", "where": f"{last.filename}:{last.lineno}"})
        samples = []
    record["wall_s"] = round(time.time() - started, 3)
    return record, samples


def task_for(name: str, config: RunConfig):
    """The task instance a run uses: `--data-path` goes to tasks that read data files."""
    from sdbench.errors import UserError
    from sdbench.task import load_task

    if config.data_path is None:
        return load_task(name)
    try:
        return load_task(name, data_path=config.data_path)
    except TypeError as exc:
        raise UserError(f"task {name!r} does not read data files", "drop --data-path for it") from exc


def hash_seed(*parts: object) -> int:
    from sdbench.task import stable_rng

    return stable_rng(*parts).getrandbits(63)
