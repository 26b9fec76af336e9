"""The evaluation lane: a helper process that evaluates a cell's val points and test / ood splits on a
core the run leaves idle, while the cell trains on.

    lane = EvalLane(task="graph_paths", data_path=None, model_path=path, evaluation=cfg, seed=0)
    lane.submit(("val", 25), state_dict, step=25)      # returns at once
    problems, samples, seconds = lane.take(("val", 25))   # blocks until that job is done

Why: a lone cell (one strategy on one task, a plugin author's loop) leaves the second core idle while
its val points (~13% of a quick cell) and its test / ood evaluations (~9%) wait behind training. They
read the weights only and draw from their own seeded streams, so another process running the same code
on the same weights, seeds and thread count gives the same numbers (tests/test_lane.py checks a cell's
record is identical either way) while training goes on. `lane_for` opens one only where a core is
idle: a run keeping every core busy with workers gets none (it would only slow them).

The helper loads the model from the cell's path (its base weights: the reference of kl_from_base) and
the task itself; a job sends a state dict. Results come back in submission order.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Hashable
from typing import Any

import torch

from sdbench.config import EvalConfig

LANE_MAX_BYTES = 256 * 2**20   # a snapshot per job: larger models evaluate in the cell's own process
VAL = "val"


class LaneFailed(RuntimeError):
    """The helper could not do a job (e.g. a task registered only in the parent process): the caller
    evaluates it itself, as without a lane."""


def idle_cores(busy: int) -> int:
    """Cores of this process's affinity mask beyond `busy`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:        # not on Linux
        cores = os.cpu_count() or 1
    return cores - busy


def lane_for(model, *, task: str, data_path: str | None, model_path: str, evaluation: EvalConfig, seed: int,
             backend: str, threads: int, idle: int) -> EvalLane | None:
    """A lane when `idle` cores are free for one and the model suits it: a local directory (the helper loads it
    too), the default sampler, a small model on the CPU."""
    from sdbench.core.model import is_local

    size = sum(p.numel() * p.element_size() for p in model.parameters())
    if (idle < threads or backend != "hf" or size > LANE_MAX_BYTES or not is_local(model_path)
            or next(model.parameters()).device.type != "cpu"):
        return None
    return EvalLane(task=task, data_path=data_path, model_path=model_path, evaluation=evaluation, seed=seed,
                    threads=threads)


class EvalLane:
    def __init__(self, *, task: str, data_path: str | None, model_path: str, evaluation: EvalConfig, seed: int,
                 threads: int = 1) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        spec = {"task": task, "data_path": data_path, "model_path": model_path,
                "evaluation": evaluation.model_dump(mode="json"), "seed": seed, "threads": threads}
        self._process = ctx.Process(target=_serve, args=(child, spec), daemon=True, name="sdbench-eval-lane")
        self._process.start()
        child.close()
        self._pending: list[Hashable] = []
        self._done: dict[Hashable, tuple] = {}

    def submit(self, key: Hashable, state: dict[str, torch.Tensor], *, step: int | None = None,
               split: str = VAL) -> None:
        """Evaluate `split` at these weights: val (with kl_from_base; step 0 is the base itself) or test / ood."""
        try:
            self._conn.send((key, split, step, {k: v.detach().cpu() for k, v in state.items()}))
        except (BrokenPipeError, OSError) as exc:
            raise LaneFailed(f"the evaluation lane is gone ({exc})") from None
        self._pending.append(key)

    def pending(self) -> list[Hashable]:
        return list(self._pending)

    def ready(self) -> list[Hashable]:
        """Keys whose results have arrived (without blocking), in submission order."""
        while self._pending and self._conn.poll():
            self._receive()
        return [k for k in self._done]

    def take(self, key: Hashable) -> tuple[list, list, float]:
        """(per-problem counts, sample records, helper seconds) of a submitted job; blocks until it is done.
        Raises LaneFailed when the helper failed it (or failed to start)."""
        while key not in self._done:
            if not self._pending:
                raise KeyError(key)
            self._receive()
        return self._done.pop(key)

    def _receive(self) -> None:
        try:
            key, payload = self._conn.recv()
        except EOFError:
            raise LaneFailed(f"the evaluation lane exited (code {self._process.exitcode})") from None
        if isinstance(payload, str):                   # the helper's traceback
            raise LaneFailed(payload.strip().splitlines()[-1])
        self._pending.remove(key)
        self._done[key] = payload

    def close(self) -> None:
        try:
            self._conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._conn.close()


def _serve(conn, spec: dict[str, Any]) -> None:
    """The helper: load the task and the model once, then evaluate jobs until told to stop."""
    from sdbench.core.model import load_model, set_threads
    from sdbench.eval.evaluate import evaluate_split
    from sdbench.seeding import hash_seed
    from sdbench.task import load_task, problem_set

    set_threads(spec["threads"])
    if hasattr(os, "nice"):
        os.nice(10)    # the cell's own threads first: the lane works in their gaps
    try:
        task = load_task(spec["task"], data_path=spec["data_path"])
        base, tokenizer = load_model(spec["model_path"])
        model, _ = load_model(spec["model_path"])
    except Exception:
        conn.send((None, traceback.format_exc()))
        return
    evaluation = EvalConfig.model_validate(spec["evaluation"])
    seed = spec["seed"]
    while (job := conn.recv()) is not None:
        key, split, step, state = job
        start = time.perf_counter()
        try:
            model.load_state_dict(state)
            if split == VAL:
                problems = problem_set(task, VAL, evaluation.val_problems)
                out = evaluate_split(model, tokenizer, task, problems, n=evaluation.val_samples,
                                     seed=hash_seed(seed, VAL), base_model=base if step else model)
            else:
                problems = problem_set(task, split, evaluation.problems)
                out = evaluate_split(model, tokenizer, task, problems, n=evaluation.samples, seed=hash_seed(seed, split))
            conn.send((key, (out.problems, out.samples, time.perf_counter() - start)))
        except Exception:
            conn.send((key, traceback.format_exc()))
    conn.close()
