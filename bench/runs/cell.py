"""One cell of a run: (strategy, task, seed) -> train (if the strategy trains) -> evaluate -> record.

`run_cell` is what executors call, in a worker process or in-process: its stages are `_set_up` (strategy,
task, the cell's settings, model), `_train` and the evaluation (`sdbench.eval.along`); it returns the
`CellRecord`, built once from what the stages found, and the evaluation samples; the executor writes them
through the RunStore. A cell that diverges or
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
from typing import TYPE_CHECKING, Any

from sdbench.config import RunConfig, StrategySpec, TrainingConfig
from sdbench.errors import DISK_ERRNOS, disk_full
from sdbench.results.record import CellRecord
from sdbench.runs.store import RunStore, cell_key

if TYPE_CHECKING:
    from sdbench.core.timing import StageTimer
    from sdbench.eval.along import ValEvaluator

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


@dataclass
class _Loaded:
    """What a cell's setup stage yields: the strategy, the task, the cell's settings and the model."""

    strategy: Any
    task: Any
    training: TrainingConfig
    model_path: str
    model: Any
    tokenizer: Any
    board: Any = None           # the cell's tensorboard writer (--report-to tensorboard), or None


def _set_up(cell: CellSpec, config: RunConfig, fields: dict[str, Any], tensorboard_dir: Path | None) -> _Loaded:
    """Build the strategy, load the task and the model; what it learns goes into the record's `fields` as it
    goes (a cell that fails here records how far it got)."""
    from sdbench.core.model import load_model, prompt_format, weights_hash
    from sdbench.task import load_task

    strategy, fields["strategy"] = build_strategy(cell.strategy)
    task = load_task(cell.task, data_path=config.data_path)
    fields["task_version"] = str(getattr(task, "version", "")) or None
    training: TrainingConfig = fields["training"]
    if training.max_new_tokens is not None:   # the run's completion budget replaces the task's
        task.max_new_tokens = training.max_new_tokens
    fields["prompt_format"] = prompt_format(task).to_json()
    # The strategy's fixed divergence and the task's temperature, applied once and validated: the record
    # shows what runs, and the loss is built from these settings (TrainingConfig.loss_spec).
    training = fields["training"] = training.for_cell(divergence=getattr(strategy, "divergence", None),
                                                      temperature=getattr(task, "temperature", None))
    model_path = config.model or task.base_model()
    fields["model"] = {"path": model_path, "weights_sha256": weights_hash(model_path)}
    import torch  # here, not at the top: the run's parent plans cells and never loads torch

    torch.manual_seed(cell.seed)
    model, tokenizer = load_model(model_path)
    board = None
    if tensorboard_dir is not None:
        from sdbench.runs.tensorboard import board_for

        board = board_for(tensorboard_dir / cell.key)
    return _Loaded(strategy, task, training, model_path, model, tokenizer, board)


def _train(cell: CellSpec, run: _Loaded, hook: ValEvaluator, report: Progress, *, checkpoint: Path | None,
           timer: StageTimer, overlap: bool) -> dict[str, Any]:
    """Train the cell's model in place (evaluating val along the way through `hook`); its `TrainInfo` fields."""
    from sdbench.core.trainer import train

    total = run.training.steps
    report("train", 0, total)     # the phase a worker stopped in (sdbench.runs.contain) is "train" now

    def on_step(log: Any) -> None:
        report("train", log.step + 1, total)
        if run.board is not None:
            run.board.step(log)

    result = train(run.model, run.tokenizer, run.task, run.strategy, run.training, seed=cell.seed,
                   hook=hook if hook.active else None, on_step=on_step, checkpoint=checkpoint, timer=timer,
                   overlap=overlap)
    return {"steps": result.steps, "wall_s": round(result.wall_s, 3), "log": [s.to_json() for s in result.log]}


def _failure(exc: BaseException, phase: str) -> dict[str, Any]:
    """The record's `failure`: a diverged training is permanent at its step; another exception is permanent
    unless a full or failing disk is behind it (transient: a resume retries the cell)."""
    from sdbench.core.trainer import TrainingDiverged

    if isinstance(exc, TrainingDiverged):
        return {"phase": phase, "kind": "permanent", "step": exc.step, "reason": str(exc)}
    last = traceback.extract_tb(exc.__traceback__)[-1]
    disk = _disk_error(exc)
    reason = f"{type(exc).__name__}: {exc}" if disk is None else disk_full(disk.filename or "?", disk.strerror).message
    return {"phase": phase, "kind": "permanent" if disk is None else "transient", "reason": reason,
            "where": f"{last.filename}:{last.lineno}"}


def run_cell(cell: CellSpec, config: RunConfig, progress: Progress | None = None,
             checkpoint: Path | None = None, tensorboard_dir: Path | None = None,
             idle_cores: int = 0) -> tuple[CellRecord, list[dict]]:
    """Set up, train (if the strategy trains), evaluate val along training and test / ood at the final and
    the best-val checkpoint; returns the record and the evaluation samples.

    `idle_cores`: cores the run leaves free for this cell; with enough of them its evaluations run in an
    evaluation lane (`sdbench.eval.lane`) beside training, and (with one thread per op) the teacher's
    forward beside the student's (`overlap`), with the same results."""
    from sdbench.core.model import set_threads
    from sdbench.core.timing import StageTimer
    from sdbench.eval.along import ValEvaluator, evaluate_checkpoints
    from sdbench.eval.lane import lane_for

    set_threads(config.threads_per_worker)
    started = time.time()
    timer = StageTimer()
    report = progress or (lambda phase, done, total: None)
    fields: dict[str, Any] = {"strategy": {"name": cell.strategy.name, "label": cell.strategy.label},
                              "training": config.training_for(cell.strategy)}
    phase = "setup"
    samples: list[dict] = []
    run: _Loaded | None = None
    lane = None
    try:
        with timer("setup"):
            run = _set_up(cell, config, fields, tensorboard_dir)
        trains = run.strategy.trains and run.training.steps > 0
        eval_backend = config.evaluation.backend or run.training.backend   # None: the training sampler
        if idle_cores and trains:
            with timer("setup"):
                lane = lane_for(run.model, task=cell.task, data_path=config.data_path, model_path=run.model_path,
                                evaluation=config.evaluation, seed=cell.seed, backend=eval_backend,
                                threads=config.threads_per_worker, idle=idle_cores)
        hook = ValEvaluator(run.model, run.tokenizer, run.task, config.evaluation, seed=cell.seed,
                            backend=eval_backend, cache_key=(cell.task, fields["model"]["weights_sha256"],
                                                             run.model_path), timer=timer, board=run.board, lane=lane)
        phase = "train"
        if trains:
            fields["train"] = _train(cell, run, hook, report, checkpoint=checkpoint, timer=timer,
                                     overlap=idle_cores >= 1 and config.threads_per_worker == 1)
        elif hook.active:
            hook(0, run.model)
        phase = "evaluate"
        hook.finish()
        fields.update(trajectory=hook.trajectory, best_val_step=hook.best_step)
        with timer("eval"):
            fields["eval"], samples = evaluate_checkpoints(run.model, run.tokenizer, run.task, config.evaluation,
                                                           hook, seed=cell.seed, backend=eval_backend,
                                                           on_problem=report)
        fields["status"] = "ok"
    except Exception as exc:  # a diverged training, a plugin or an evaluation crash fails this cell only
        fields.update(status="failed", failure=_failure(exc, phase))
        samples = []
    finally:
        if run is not None and run.board is not None:
            run.board.close()
        if lane is not None:
            lane.close()
    fields["training"] = fields["training"].model_dump(mode="json")
    record = CellRecord(key=cell.key, task=cell.task, seed=cell.seed, config_hash=config.config_hash(), **fields,
                        timing=timer.rounded(), wall_s=round(time.time() - started, 3))
    return record, samples


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
    if failure_kind(record.failure) != "transient":
        checkpoint.unlink(missing_ok=True)   # the record supersedes it (a transient failure resumes from it)
    return {"key": cell.key, "status": record.status, "failure": record.failure}
