"""Results schema v1: one JSON document per submitted run (pydantic models + the exported JSON Schema).

    from sdbench.leaderboard.schema import Results, schema_json
    Results.model_validate(json.loads(Path("leaderboard/results/NAME.json").read_text()))
    sdbench leaderboard schema            # rewrites leaderboard/schema.json from these models

A results document carries everything needed to recompute every number on the leaderboard: the
summary rows (mean and 95% CI of each metric), the per-problem records (n, c, distinct functional
and semantic classes, entropy) of every cell and split, the resolved run config, and provenance.
Counts and summaries are strict (unknown fields are refused, so a new per-problem field means a new
schema version); provenance blocks allow extra keys, so richer provenance never breaks validation.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1
KIND = "sdbench.leaderboard.results"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
SCHEMA_ID = "https://sdbench.invalid/leaderboard/schema/v1.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Open(BaseModel):
    # Provenance grows over time (sandbox layers, accelerators, ...): keep what we do not know.
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


# --- counts: what every number is recomputed from -------------------------------------------------

class ProblemCounts(_Strict):
    """One problem of one split of one cell; mirrors sdbench.eval.evaluate.ProblemResult."""

    id: str
    n: int = Field(ge=1, description="samples drawn")
    c: int = Field(ge=0, description="correct samples")
    distinct_correct: int = Field(ge=0, description="distinct functional classes among correct samples")
    semantic_classes: int = Field(ge=0, description="distinct semantic classes among correct samples")
    entropy: float = Field(description="mean per-token policy entropy on its own samples (nats)")

    @model_validator(mode="after")
    def _counts_fit(self) -> ProblemCounts:
        if self.c > self.n or self.distinct_correct > self.c or self.semantic_classes > self.c:
            raise ValueError(f"problem {self.id}: counts must satisfy distinct, semantic <= c <= n")
        return self


class SplitEval(_Strict):
    n: int = Field(ge=1, description="samples per problem")
    problems: list[ProblemCounts] = Field(min_length=1)


class StrategyInfo(_Open):
    name: str
    label: str
    distribution: str
    version: str
    params: dict[str, Any] = Field(default_factory=dict)


class ModelInfo(_Strict):
    path: str = Field(description="model directory or hub id the cell started from")
    weights_sha256: str = Field(description="sha256 over the weight files ('' for a hub id not on disk)")


class TrainInfo(_Strict):
    steps: int = Field(ge=0)
    wall_s: float = Field(ge=0)


class CellResult(_Strict):
    """One (task, strategy, seed) cell: the run directory's cells/<key>.json minus the training log."""

    key: str
    task: str
    seed: int = Field(ge=0)
    status: Literal["ok", "failed"]
    strategy: StrategyInfo
    model: ModelInfo | None = Field(default=None, description="absent only when the cell failed during setup")
    config_hash: str
    wall_s: float | None = None
    train: TrainInfo | None = None
    eval: dict[str, SplitEval] = Field(default_factory=dict, description="split -> per-problem counts")
    failure: dict[str, Any] | None = None


# --- summary: what the leaderboard shows (checked against the counts on submit) ---------------------

class Stat(_Strict):
    mean: float
    ci_low: float
    ci_high: float


class SummaryRow(_Strict):
    strategy: str
    task: str
    split: str
    n_seeds: int = Field(ge=1)
    seeds: list[int]
    n_problems: int = Field(ge=1)
    samples_per_problem: int = Field(ge=1)
    metrics: dict[str, Stat] = Field(description="pass@k for k = 1, 2, 4, ..., pass@auc, pass@gain, "
                                                 "distinct_correct, semantic_classes, entropy")


class Delta(_Strict):
    strategy: str
    baseline: str
    task: str
    split: str
    metrics: dict[str, Stat]


class Summary(_Strict):
    rows: list[SummaryRow]
    failed: list[dict[str, Any]] = Field(default_factory=list)
    deltas: list[Delta] = Field(default_factory=list)


# --- provenance -----------------------------------------------------------------------------------

class Plugin(_Strict):
    distribution: str
    version: str


class TaskData(_Open):
    data_sha256: str


class Provenance(_Open):
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
    run_time: str | None = Field(default=None, description="provenance.json timestamp of the run (UTC)")
    submitted: str = Field(description="when the results were submitted (UTC)")


class Results(_Strict):
    """A submitted run: `leaderboard/results/<name>.json`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, title="sdbench leaderboard results",
                              json_schema_extra={"$id": SCHEMA_ID})

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["sdbench.leaderboard.results"] = KIND
    name: str = Field(pattern=NAME_PATTERN)
    config: dict[str, Any] = Field(description="the resolved RunConfig (config.json)")
    provenance: Provenance
    summary: Summary
    cells: list[CellResult] = Field(min_length=1)


def json_schema() -> dict[str, Any]:
    schema = Results.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def schema_json() -> str:
    """The exported JSON Schema, as committed in leaderboard/schema.json."""
    return json.dumps(json_schema(), indent=1, sort_keys=True) + "\n"
