"""Results schema v2: one JSON document per submitted run (pydantic models + the exported JSON Schema).

    from sdbench.leaderboard import load_results
    load_results(Path("leaderboard/results/NAME.json.gz"))   # validated Results (NAME.json is read too)
    sdbench leaderboard schema            # rewrites leaderboard/schema.json from these models

A results document carries everything needed to recompute every number on the leaderboard: the
run's summary (`sdbench.results.record.Summary`: rows at the final and best-val checkpoints, val
trajectories, the KL frontier, paired deltas), every cell record (`sdbench.results.record.CellRecord`,
its per-step training log dropped on submit) with the per-problem counts of its val trajectory and
of test / ood at both checkpoints, the resolved run config, and provenance. The cell and summary
models are the run directory's own (one model, shared by writer, aggregator, report and leaderboard);
this module adds only the document around them. Schema-1 documents are refused by `submit.validate`.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import ConfigDict, Field

from sdbench.pydantic_base import OpenModel, StrictModel

# the cell and summary models are the run's own: re-exported, never re-declared
from sdbench.results.record import CellRecord, ModelInfo, Stat, StrategyInfo, Summary

__all__ = ["RESULTS_SCHEMA_VERSION", "CellRecord", "ModelInfo", "Provenance", "Results", "Stat", "StrategyInfo",
           "Summary", "json_schema", "schema_json"]

# The version of this document's envelope (name, config, provenance, the cells and summary in it). The records and
# summary inside carry their own `schema_version` (`sdbench.results.record.RECORD_SCHEMA_VERSION`): a new per-problem
# field changes that one, not this.
RESULTS_SCHEMA_VERSION = 2
KIND = "sdbench.leaderboard.results"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
SCHEMA_ID = "https://sdbench.invalid/leaderboard/schema/v2.json"


# --- provenance -----------------------------------------------------------------------------------

class Plugin(StrictModel):
    distribution: str
    version: str


class TaskData(OpenModel):
    data_sha256: str


class Provenance(OpenModel):
    sdbench_version: str
    git_commit: str | None = None
    config_hash: str
    seeds: list[int]
    strategies: list[StrategyInfo]
    plugins: list[Plugin] = Field(description="distributions that provided strategies and tasks")
    tasks: dict[str, TaskData] = Field(description="task -> hash of its evaluated problems")
    models: dict[str, ModelInfo] = Field(description="task -> base model the cells started from")
    sandbox: dict[str, Any] | None = Field(default=None, description="sandbox layers, when the run recorded them")
    hardware: dict[str, Any] = Field(default_factory=dict)
    libraries: dict[str, str | None] = Field(default_factory=dict)
    reused: list[dict[str, Any]] | None = Field(
        default=None, description="runs whose finished cells this run took (`sdbench run --reuse`): run, config, "
                                  "config_hash and cells of each")
    run_time: str | None = Field(default=None, description="provenance.json timestamp of the run (UTC)")
    submitted: str = Field(description="when the results were submitted (UTC)")


class Results(StrictModel):
    """A submitted run: `leaderboard/results/<name>.json.gz` (gzipped compact JSON; `<name>.json` is read too)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, title="sdbench leaderboard results",
                              json_schema_extra={"$id": SCHEMA_ID})

    schema_version: Literal[2] = RESULTS_SCHEMA_VERSION
    kind: Literal["sdbench.leaderboard.results"] = KIND
    name: str = Field(pattern=NAME_PATTERN)
    config: dict[str, Any] = Field(description="the resolved RunConfig (config.json)")
    provenance: Provenance
    summary: Summary
    cells: list[CellRecord] = Field(min_length=1, description="every cell; train.log is empty")


def json_schema() -> dict[str, Any]:
    schema = Results.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def schema_json() -> str:
    """The exported JSON Schema, as committed in leaderboard/schema.json."""
    return json.dumps(json_schema(), indent=1, sort_keys=True) + "\n"
