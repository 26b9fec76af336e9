"""The one versioned results model (record schema 3; schema 2 read): cell records and summaries, for every reader
and writer.

    from sdbench.results.record import CellRecord, Summary
    from sdbench.runs.store import RunStore
    rec = RunStore(Path("runs/x")).read_record(KEY)    # cells/KEY.json, its `integrity` hashes checked and set aside
    rec.eval["best_val"]["test"].problems[0].c

The run directory's writer (`sdbench.runs.store`), the aggregator (`sdbench.runs.aggregate`), the
run report and the leaderboard (`sdbench.leaderboard.schema` embeds these models) all use these
classes, as inspect_ai's one log model serves its writer, reader and viewer. Counts are strict
(unknown fields are refused: a new per-problem field means a new schema version); strategy
provenance allows extra keys. Everything a summary shows is recomputable from the per-problem
counts kept here: `eval` (test / ood at the final and the best-val checkpoint) and `trajectory`
(val along training, step 0 being the base model).

Schema 3 adds, per problem, the functional-class histograms (`classes`, `correct_classes`: class id ->
count, the id a stable hash of the class so it is the same at every step, seed and arm:
`sdbench.strategy.class_id`)
that `sdbench.eval.mechanism` measures mode amplification from. Schema-2 documents (the committed
leaderboard results) are read as they are: no histograms, the mechanism "not measured".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from sdbench.pydantic_base import OpenModel, StrictModel

# The version of the cell record and summary models (per-problem counts and what is computed from them). The
# leaderboard's results document around them has its own version (`sdbench.leaderboard.schema`), which changes
# only when the document's envelope (name, config, provenance) does.
RECORD_SCHEMA_VERSION = 3
READABLE_SCHEMAS = Literal[2, 3]   # 2: before the class histograms (read, not written)
Checkpoint = Literal["final", "best_val"]
CHECKPOINTS: tuple[Checkpoint, ...] = ("best_val", "final")
# A record's `timing` keys (`sdbench.core.timing.StageTimer` fills them). eval_s: test / ood at the checkpoints;
# val_s: the val split along training (protocol v2's extra cost); both are the cell's own wall time. lane_s: what
# its evaluation lane (sdbench.eval.lane) worked on another core meanwhile, so not part of the cell's wall time.
TIMING_STAGES = ("setup_s", "sample_s", "verify_s", "teacher_s", "student_s", "backward_s", "optimizer_s",
                 "val_s", "eval_s", "lane_s")


# --- counts: what every number is recomputed from -------------------------------------------------


class ProblemCounts(StrictModel):
    """One problem of one evaluation: n samples, c correct, classes among the correct ones."""

    id: str
    n: int = Field(ge=1, description="samples drawn")
    c: int = Field(ge=0, description="correct samples")
    distinct_correct: int = Field(ge=0, description="distinct functional classes among correct samples")
    semantic_classes: int = Field(ge=0, description="distinct semantic classes among correct samples")
    entropy: float | None = Field(description="mean per-token policy entropy on its own samples (nats); None "
                                              "when no policy scored them (samples graded by `sdbench verify`)")
    kl_from_base: float | None = Field(
        default=None, description="mean over the policy's own samples and generated positions of the exact "
                                  "KL(pi(.|prefix) || pi_base(.|prefix)), nats/token (val points only)")
    classes: dict[str, int] | None = Field(
        default=None, description="schema 3: class id -> count among all n samples (the class of a sample the "
                                  "task gives none is its text)")
    correct_classes: dict[str, int] | None = Field(
        default=None, description="schema 3: class id -> count among the c correct samples")

    @model_validator(mode="after")
    def _counts_fit(self) -> ProblemCounts:
        if self.c > self.n or self.distinct_correct > self.c or self.semantic_classes > self.c:
            raise ValueError(f"problem {self.id}: counts must satisfy distinct, semantic <= c <= n")
        if self.classes is not None and sum(self.classes.values()) != self.n:
            raise ValueError(f"problem {self.id}: the class histogram must sum to n")
        if self.correct_classes is not None and sum(self.correct_classes.values()) != self.c:
            raise ValueError(f"problem {self.id}: the correct-class histogram must sum to c")
        return self


class SplitEval(StrictModel):
    n: int = Field(ge=1, description="samples per problem")
    problems: list[ProblemCounts] = Field(min_length=1)


class EvalPoint(StrictModel):
    """The val split evaluated after `step` optimizer steps (0: the base model)."""

    step: int = Field(ge=0)
    n: int = Field(ge=1)
    problems: list[ProblemCounts] = Field(min_length=1)

    @property
    def pass1(self) -> float:
        return sum(p.c / p.n for p in self.problems) / len(self.problems)


class StrategyInfo(OpenModel):
    name: str
    label: str
    distribution: str = "sdbench"
    version: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict, description="this arm's training overrides")


class ModelInfo(StrictModel):
    path: str = Field(description="model directory or hub id the cell started from")
    weights_sha256: str = Field(description="sha256 over the weight files ('' for a hub id not on disk)")


class TrainInfo(StrictModel):
    steps: int = Field(ge=0)
    wall_s: float = Field(ge=0)
    log: list[dict[str, Any]] = Field(default_factory=list, description="per-step log (dropped on submit)")


class CellRecord(StrictModel):
    """One (task, strategy, seed) cell: cells/<key>.json of a run directory."""

    schema_version: READABLE_SCHEMAS = RECORD_SCHEMA_VERSION
    kind: Literal["cell"] = "cell"
    key: str
    task: str
    seed: int = Field(ge=0)
    status: Literal["ok", "failed"]
    strategy: StrategyInfo
    config_hash: str
    model: ModelInfo | None = Field(default=None, description="absent only when the cell failed during setup")
    training: dict[str, Any] | None = Field(default=None, description="the training settings this cell ran with "
                                                                      "(run defaults + the arm's overrides)")
    task_version: str | None = None
    prompt_format: dict[str, Any] | None = Field(default=None, description="how prompts became contexts: chat "
                                                 "template or plain, system turn (sdbench.core.model.PromptFormat)")
    wall_s: float | None = None
    train: TrainInfo | None = None
    trajectory: list[EvalPoint] = Field(default_factory=list, description="val along training, from step 0")
    best_val_step: int | None = Field(default=None, description="highest val pass@1, ties -> earliest step")
    eval: dict[Checkpoint, dict[str, SplitEval]] = Field(
        default_factory=dict, description="checkpoint -> split -> per-problem counts")
    timing: dict[str, float] = Field(default_factory=dict, description="seconds per stage: " + ", ".join(TIMING_STAGES))
    failure: dict[str, Any] | None = None


# --- summary: what tables, reports and the leaderboard show ---------------------------------------

class Stat(StrictModel):
    """Mean over seeds x problems and its seed-aware 95% CI (sdbench.eval.intervals)."""

    mean: float
    ci_low: float
    ci_high: float
    seed_sd: float | None = Field(default=None, description="SD of the seed means (deltas: of a one-seed-each "
                                                            "difference); None with one seed")
    seed_share: float | None = Field(default=None, description="share of the mean's variance that comes from "
                                                               "training seeds (the rest: problems)")


class SummaryRow(StrictModel):
    strategy: str
    task: str
    split: str
    checkpoint: Checkpoint
    n_seeds: int = Field(ge=1)
    seeds: list[int]
    n_problems: int = Field(ge=1)
    samples_per_problem: int = Field(ge=1)
    selected_step: Stat | None = Field(default=None, description="best_val rows: the step chosen on val")
    metrics: dict[str, Stat] = Field(description="pass@k for k = 1, 2, 4, ..., pass@auc, pass@gain, "
                                                 "distinct_correct, semantic_classes, entropy")


class Delta(StrictModel):
    strategy: str
    baseline: str
    task: str
    split: str
    checkpoint: Checkpoint
    metrics: dict[str, Stat]


class TrajectoryEntry(StrictModel):
    strategy: str
    task: str
    step: int = Field(ge=0)
    n_seeds: int = Field(ge=1)
    metrics: dict[str, Stat] = Field(description="pass@1, pass@<val_samples>, distinct_correct, entropy, "
                                                 "kl_from_base over seeds x val problems")


class FrontierEntry(StrictModel):
    strategy: str
    task: str
    kl_budget: float
    n_seeds_reached: int = Field(ge=0)
    metrics: dict[str, Stat] = Field(default_factory=dict, description="pass@1, distinct_correct at the budget "
                                                                       "(empty when no seed reached it)")


class MatchedEntry(StrictModel):
    """Val metrics of one arm where each seed's trajectory reaches `level` of `match` (the iso-accuracy view)."""

    strategy: str
    task: str
    match: Literal["kl_from_base", "pass@1"]
    level: float
    n_seeds_reached: int = Field(ge=0)
    metrics: dict[str, Stat] = Field(default_factory=dict)


class MatchedDelta(StrictModel):
    """Paired difference strategy - baseline on the val problems, both at the same `level` of `match`."""

    strategy: str
    baseline: str
    task: str
    match: Literal["kl_from_base", "pass@1"]
    level: float
    n_seeds: int = Field(ge=1)
    n_seeds_baseline: int = Field(ge=1)
    metrics: dict[str, Stat]


class CheckpointRule(StrictModel):
    """How stable a best-val rule is: two random halves of the val problems choose a step each; they agree when
    the two steps' full-val pass@1 differ by at most one standard error. `chosen` marks the rule the best-val rows
    use (pinned for every task: `sdbench.runs.compare.PINNED_RULE`)."""

    rule: str
    agreement: float
    n_pairs: int = Field(ge=0)
    chosen: bool = False


class Summary(StrictModel):
    schema_version: READABLE_SCHEMAS = RECORD_SCHEMA_VERSION
    config_hash: str | None = None
    rows: list[SummaryRow]
    trajectories: list[TrajectoryEntry] = Field(default_factory=list)
    frontier: list[FrontierEntry] = Field(default_factory=list)
    failed: list[dict[str, Any]] = Field(default_factory=list)
    deltas: list[Delta] = Field(default_factory=list)
    iso_accuracy: list[MatchedEntry] = Field(default_factory=list)
    matched_deltas: list[MatchedDelta] = Field(default_factory=list)
    checkpoint_rules: list[CheckpointRule] = Field(default_factory=list)
    mechanism: dict[str, Any] | None = Field(
        default=None, description="schema 3: mode amplification per (task, strategy) (`sdbench.eval.mechanism`)")
    timing: dict[str, float] = Field(default_factory=dict, description="seconds per stage, summed over cells "
                                     "(summary.md and the terminal; not in summary.json, whose bytes depend on "
                                     "results only)")


def refuse_old_schema(data: Any, where: str) -> None:
    """One clear line for a document this sdbench does not read: schema 1 (endpoint-only evaluation, live
    teacher) or a schema newer than this sdbench. Schema 2 is read (no class histograms)."""
    from sdbench.errors import UserError

    version = data.get("schema_version") if isinstance(data, dict) else None
    if version == 1:
        raise UserError(f"{where} is schema 1 (endpoint-only evaluation); sdbench reads schemas 2 and "
                        f"{RECORD_SCHEMA_VERSION}",
                        "re-run it with this sdbench (`sdbench run` with the same config) to get schema "
                        f"{RECORD_SCHEMA_VERSION}")
    if isinstance(version, int) and version > RECORD_SCHEMA_VERSION:
        raise UserError(f"{where} is schema {version}; this sdbench reads schemas 2 and {RECORD_SCHEMA_VERSION}",
                        "upgrade sdbench to read it")
