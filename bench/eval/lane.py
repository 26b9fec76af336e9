"""The evaluation lane: a helper process that evaluates a cell's val points and test / ood splits on a
core the run leaves idle, while the cell trains on.

    lane = EvalLane(task="graph_paths", data_path=None, model_path=path, evaluation=cfg, seed=0)
    lane.submit(("val", 25), state_dict, split="val", step=25)   # returns at once
    problems, samples, seconds = lane.take(("val", 25))   # blocks until that job is done

Why: a lone cell (one strategy on one task, a plugin author's loop) leaves the second core idle while
its val points (~13% of a quick cell) and its test / ood evaluations (~9%) wait behind training. They
read the weights only and draw from their own seeded streams, so another process running the same code
on the same weights, seeds and thread count gives the same numbers (tests/test_lane.py checks a cell's
record is identical either way) while training goes on. `lane_for` opens one only where a core is
idle: a run keeping every core busy with workers gets none (it would only slow them).

The helper loads the model from the cell's path (its base weights: the reference of kl_from_base) and
the task itself (a task registered only in the parent cannot load there: the cell then evaluates it
itself, see LaneFailed); a job sends a state dict. Results come back in submission order.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Hashable
from multiprocessing.connection import Connection
from typing import Any

import torch

from sdbench.eval.protocol import EvalConfig

LANE_MAX_BYTES = 256 * 2**20   # a snapshot per job: larger models evaluate in the cell's own process
_CLOSE = object()              # stops the writer thread
_EXITING: list[subprocess.Popen] = []   # closed helpers not yet reaped


class LaneFailed(RuntimeError):
    """The helper could not do a job (e.g. a task registered only in the parent process): the caller
    evaluates it itself, as without a lane."""


def lane_for(model, *, task: str, data_path: str | None, model_path: str, evaluation: EvalConfig, seed: int,
             backend: str, threads: int, idle: int) -> EvalLane | None:
    """A lane when `idle` cores are free for one and the model suits it: a local directory (the helper loads it
    too), the default sampler, a small model on the CPU."""
    from sdbench.models import is_local

    size = sum(p.numel() * p.element_size() for p in model.parameters())
    if (idle < threads or backend != "hf" or size > LANE_MAX_BYTES or not is_local(model_path)
            or next(model.parameters()).device.type != "cpu"):
        return None
    return EvalLane(task=task, data_path=data_path, model_path=model_path, evaluation=evaluation, seed=seed,
                    threads=threads)


class EvalLane:
    """The parent's side: jobs go down one pipe, results come back up another, pickled.

    The helper is a fresh `python -c` process (not a multiprocessing child, which would import the
    parent's `__main__` again: an unguarded script would run twice), with the pipes passed as file
    descriptors; its output is discarded (it reports failures as messages)."""

    def __init__(self, *, task: str, data_path: str | None, model_path: str, evaluation: EvalConfig, seed: int,
                 threads: int = 1) -> None:
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", "from sdbench.eval.lane import _main; _main()", str(down_r), str(up_w)],
                pass_fds=(down_r, up_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        finally:
            os.close(down_r)
            os.close(up_w)
        self._out, self._in = Connection(down_w, readable=False), Connection(up_r, writable=False)
        self._pending: list[Hashable] = []
        self._done: dict[Hashable, tuple] = {}
        # Sends go through a writer thread: a job (a state dict) is larger than a pipe's buffer, and the
        # cell must not wait while the helper starts up or works.
        self._outbox: queue.Queue = queue.Queue()
        self._broken: str | None = None
        self._writer = threading.Thread(target=self._write, daemon=True, name="sdbench-lane-writer")
        self._writer.start()
        self._send({"task": task, "data_path": data_path, "model_path": model_path,
                    "evaluation": evaluation.model_dump(mode="json"), "seed": seed, "threads": threads})

    def _write(self) -> None:
        while (message := self._outbox.get()) is not _CLOSE:
            try:
                self._out.send_bytes(_dumps(message))
            except (BrokenPipeError, OSError) as exc:
                self._broken = str(exc)
                break
        self._out.close()

    def _send(self, message: Any) -> None:
        if self._broken is not None:
            raise LaneFailed(f"the evaluation lane is gone ({self._broken})")
        self._outbox.put(message)

    def submit(self, key: Hashable, state: dict[str, torch.Tensor], *, split: str, step: int | None = None) -> None:
        """Evaluate `split` at these weights (`sdbench.eval.protocol.evaluate_at_seed`): val with kl_from_base
        (`step` 0: the base itself), or test / ood."""
        self._send((key, split, step, {k: v.detach().cpu() for k, v in state.items()}))
        self._pending.append(key)

    def ready(self) -> list[Hashable]:
        """Keys whose results have arrived (without blocking), in submission order."""
        while self._pending and self._in.poll():
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
            key, payload = pickle.loads(self._in.recv_bytes())
        except (EOFError, OSError):
            raise LaneFailed(f"the evaluation lane exited (code {self._process.poll()})") from None
        if isinstance(payload, str):                   # the helper's traceback
            raise LaneFailed(payload.strip().splitlines()[-1])
        self._pending.remove(key)
        self._done[key] = payload

    def close(self) -> None:
        """Stop the helper without waiting for it to exit (a helper with jobs nobody will read is killed)."""
        if self._pending:
            self._process.kill()
        self._outbox.put(None)        # the helper's stop
        self._outbox.put(_CLOSE)      # the writer's (it closes the pipe after the stop)
        self._writer.join(timeout=5)  # (the helper reads as jobs come: this is the stop message's write)
        self._in.close()
        _EXITING.append(self._process)
        _EXITING[:] = [p for p in _EXITING if p.poll() is None]   # reap those that have exited


def _dumps(message: Any) -> bytes:
    # Plain pickle, tensors by value: Connection.send's pickler would pass tensors as shared-memory
    # handles, which only a multiprocessing child (with the parent's auth key) can open.
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def _main() -> None:
    """The helper's entry (`python -c`): its pipes' descriptors come as arguments."""
    down, up = Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False)
    try:
        _serve(down, up, pickle.loads(down.recv_bytes()))
    except EOFError:          # the parent went away
        pass


def _serve(conn: Connection, reply: Connection, spec: dict[str, Any]) -> None:
    """The helper: load the task and the model once, then evaluate jobs until told to stop."""
    # Jobs are read as they come, on a thread, from before the set-up: the parent's sends never wait for
    # a job (or the set-up) to finish, nor meet a result this side is still writing (no deadlock on full pipes).
    jobs: queue.Queue = queue.Queue()

    def read() -> None:
        try:
            while (message := pickle.loads(conn.recv_bytes())) is not None:
                jobs.put(message)
        except (EOFError, OSError):
            pass
        jobs.put(None)

    threading.Thread(target=read, daemon=True, name="sdbench-lane-reader").start()
    from sdbench.core.model import load_model, set_threads
    from sdbench.eval.protocol import evaluate_at_seed
    from sdbench.task import load_task

    set_threads(spec["threads"])
    if hasattr(os, "nice"):
        os.nice(10)    # the cell's own threads first: the lane works in their gaps
    try:
        task = load_task(spec["task"], data_path=spec["data_path"])
        base, tokenizer = load_model(spec["model_path"])
        model, _ = load_model(spec["model_path"])
    except Exception:
        reply.send_bytes(_dumps((None, traceback.format_exc())))
        return
    evaluation = EvalConfig.model_validate(spec["evaluation"])
    seed = spec["seed"]
    while (job := jobs.get()) is not None:
        key, split, step, state = job
        start = time.perf_counter()
        try:
            model.load_state_dict(state)
            out = evaluate_at_seed(model, tokenizer, task, evaluation, split, seed=seed,
                                   base_model=base if step else model)
            reply.send_bytes(_dumps((key, (out.problems, out.samples, time.perf_counter() - start))))
        except Exception:
            reply.send_bytes(_dumps((key, traceback.format_exc())))
