"""One cell of a run: (strategy, task, seed) -> train (if the strategy trains) -> evaluate -> record.

`run_cell` is what executors call, in a worker process or in-process. It returns the record and
the evaluation samples; the executor writes them through the RunStore. A cell that diverges or
whose strategy raises becomes a record with status "failed", the reason and its kind ("permanent";
"transient" where a full or failing disk is behind it: a resume retries those), never an exception
that takes other cells down.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sdbench.config import RunConfig, StrategySpec
from sdbench.errors import DISK_ERRNOS, disk_full
from sdbench.runs.store import RunStore, cell_key

Progress = Callable[[str, int, int], None]   # (phase, done, total)


@dataclass(frozen=True)
class CellSpec:
    task: str
    strategy: StrategySpec
    seed: int

    @property
    def key(self) -> str:
        return cell_key(self.task, self.strategy.label, self.seed)


def _disk_error(exc: BaseException) -> OSError | None:
    """The OSError of a full or failing disk behind `exc` (its cause / context chain), if any: such a
    failure is transient (a resume retries the cell once space is back)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


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
             checkpoint: Path | None = None, tensorboard_dir: Path | None = None,
             idle_cores: int = 0) -> tuple[dict, list[dict]]:
    """Train (if the strategy trains), evaluate val along training and test / ood at the final and the
    best-val checkpoint; returns the record (a `CellRecord` as JSON data) and the evaluation samples.

    `idle_cores`: cores the run leaves free for this cell; with enough of them its evaluations run in an
    evaluation lane (`sdbench.runs.lane`) beside training, and (with one thread per op) the teacher's
    forward beside the student's (`overlap`), with the same results."""
    from sdbench.core.model import load_model, prompt_format, set_threads, weights_hash
    from sdbench.core.timing import StageTimer
    from sdbench.core.trainer import TrainingDiverged, train
    from sdbench.runs.along import ValEvaluator, evaluate_checkpoints
    from sdbench.runs.lane import lane_for
    from sdbench.runs.record import CellRecord
    from sdbench.task import load_task
    set_threads(config.threads_per_worker)
    started = time.time()
    timer = StageTimer()
    report = progress or (lambda phase, done, total: None)
    training = config.training_for(cell.strategy)
    record: dict[str, Any] = {"key": cell.key, "task": cell.task, "seed": cell.seed,
                              "strategy": {"name": cell.strategy.name, "label": cell.strategy.label},
                              "config_hash": config.config_hash(), "training": training.model_dump(mode="json")}
    phase = "setup"
    samples: list[dict] = []
    board = lane = None
    try:
        with timer("setup"):
            strategy, record["strategy"] = build_strategy(cell.strategy)
            task = load_task(cell.task, data_path=config.data_path)
            record["task_version"] = str(getattr(task, "version", "")) or None
            if training.max_new_tokens is not None:   # the run's completion budget replaces the task's
                task.max_new_tokens = training.max_new_tokens
            record["prompt_format"] = prompt_format(task).to_json()
            # the strategy's fixed divergence and the task's temperature, once, validated: what runs is recorded
            training = training.for_cell(divergence=getattr(strategy, "divergence", None),
                                         temperature=getattr(task, "temperature", None))
            record["training"] = training.model_dump(mode="json")
            model_path = config.model or task.base_model()
            record["model"] = {"path": model_path, "weights_sha256": weights_hash(model_path)}
            torch.manual_seed(cell.seed)
            model, tokenizer = load_model(model_path)
            if tensorboard_dir is not None:
                from sdbench.runs.tensorboard import board_for

                board = board_for(tensorboard_dir / cell.key)
        trains = strategy.trains and training.steps > 0
        eval_backend = config.evaluation.backend or training.backend   # None: evaluate with the training sampler
        if idle_cores and trains:
            with timer("setup"):
                lane = lane_for(model, task=cell.task, data_path=config.data_path, model_path=model_path,
                                evaluation=config.evaluation, seed=cell.seed, backend=eval_backend,
                                threads=config.threads_per_worker, idle=idle_cores)
        hook = ValEvaluator(model, tokenizer, task, config.evaluation, seed=cell.seed, backend=eval_backend,
                            cache_key=(cell.task, record["model"]["weights_sha256"], model_path), timer=timer,
                            board=board, lane=lane)
        phase = "train"
        if trains:
            total = training.steps
            report("train", 0, total)     # the phase a worker stopped in (sdbench.runs.contain) is "train" now

            def on_step(log: Any) -> None:
                report("train", log.step + 1, total)
                if board is not None:
                    board.step(log)

            result = train(model, tokenizer, task, strategy, training, seed=cell.seed, hook=hook if hook.active
                           else None, on_step=on_step, checkpoint=checkpoint, timer=timer,
                           overlap=idle_cores >= 1 and config.threads_per_worker == 1)
            record["train"] = {"steps": result.steps, "wall_s": round(result.wall_s, 3),
                               "log": [s.to_json() for s in result.log]}
        elif hook.active:
            hook(0, model)
        phase = "evaluate"
        hook.finish()
        record["trajectory"] = [p.model_dump(mode="json") for p in hook.trajectory]
        record["best_val_step"] = hook.best_step
        with timer("eval"):
            record["eval"], samples = evaluate_checkpoints(model, tokenizer, task, config.evaluation, hook,
                                                           seed=cell.seed, backend=eval_backend,
                                                           on_problem=report)
        record["status"] = "ok"
    except TrainingDiverged as exc:
        record.update(status="failed", failure={"phase": phase, "kind": "permanent", "step": exc.step,
                                                "reason": str(exc)})
        samples = []
    except Exception as exc:  # a plugin or evaluation crash fails this cell only
        last = traceback.extract_tb(exc.__traceback__)[-1]
        disk = _disk_error(exc)
        reason = (f"{type(exc).__name__}: {exc}" if disk is None
                  else disk_full(disk.filename or "?", disk.strerror).message)
        record.update(status="failed", failure={
            "phase": phase, "kind": "permanent" if disk is None else "transient", "reason": reason,
            "where": f"{last.filename}:{last.lineno}"})
        samples = []
    finally:
        if board is not None:
            board.close()
        if lane is not None:
            lane.close()
    record["timing"] = timer.rounded()
    record["wall_s"] = round(time.time() - started, 3)
    return CellRecord.model_validate(record).model_dump(mode="json", exclude_none=True), samples


def failure_kind(failure: dict[str, Any] | None) -> str:
    """'transient' or 'permanent' (records from before the kinds were recorded: permanent)."""
    return (failure or {}).get("kind", "permanent")


def run_and_store(cell: CellSpec, config: RunConfig, root: str, events: Any, idle: int = 0) -> dict[str, Any]:
    """Run `cell` and write its record (and samples) into the run directory `root`: what a worker process
    (sdbench.runs.contain) or a Ray task does with one cell. A checkpoint that fails its integrity check is
    named in one line and dropped (the cell restarts from step 0)."""
    from sdbench.core.checkpoint import checkpoint_problem

    def report(phase: str, done: int, total: int) -> None:
        if events is not None:
            events.put((cell.key, phase, done, total))

    store = RunStore(Path(root))
    checkpoint = store.checkpoint_path(cell.key)
    if checkpoint.is_file() and (problem := checkpoint_problem(checkpoint)) is not None:
        # One checkpoint per cell is kept, so there is no earlier good one: the cell restarts from step 0.
        checkpoint.unlink()
        line = f"checkpoint {checkpoint} fails its integrity check ({problem}): cell {cell.key} restarts from step 0"
        getattr(events, "note", lambda text: print(text, file=sys.stderr))(line)
    board = store.root / "tensorboard" if config.report_to == "tensorboard" else None
    record, samples = run_cell(cell, config, report, checkpoint=checkpoint, tensorboard_dir=board, idle_cores=idle)
    store.write_record(cell.key, record, samples)
    if failure_kind(record.get("failure")) != "transient":
        checkpoint.unlink(missing_ok=True)   # the record supersedes it (a transient failure resumes from it)
    return {"key": cell.key, "status": record["status"], "failure": record.get("failure")}
