"""Wall time per stage of a cell (setup, sample, verify, teacher, student, backward, optimizer, val, eval).

    timer = StageTimer()
    with timer("sample"):
        ...
    timer.add("lane", 0.2)   # time measured elsewhere (another thread or process)
    timer.totals   # {"sample_s": 0.41, ...}

Every record keeps its cell's totals (`timing`), and `sdbench run` prints the run's sums, so anyone
can see where the time goes. A stage nested in another is counted in both unless the inner block is wrapped in
`timer.pause(outer)`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from sdbench.results.record import TIMING_STAGES  # the stages a cell record's `timing` holds


class StageTimer:
    def __init__(self) -> None:
        self.totals: dict[str, float] = {stage: 0.0 for stage in TIMING_STAGES}

    def add(self, stage: str, seconds: float) -> None:
        """Count `seconds` measured elsewhere (another thread, the evaluation lane's process) to `stage`."""
        self.totals[f"{stage}_s"] = self.totals.get(f"{stage}_s", 0.0) + seconds

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - start)

    @contextlib.contextmanager
    def pause(self, stage: str) -> Iterator[None]:
        """Inside a `with timer(stage)` block: leave this part out of that stage (it goes to another)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, -(time.perf_counter() - start))

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.totals.items()}


NO_TIMER = StageTimer()   # for callers that do not care; its totals are never read
