"""Run configuration: pydantic models, profiles, and loading from YAML / TOML / the command line.

    sdbench run --config suite.yaml --seeds 3 --profile quick --print-config

Keys mirror the command-line option names (`tasks`, `strategies`, `seeds`, `profile`, `out`, ...).
A profile (`smoke`, `quick`, `full`) supplies every training and evaluation default; anything the
file or the command line sets wins over it. Unknown keys and out-of-range values are user errors.
`TrainingConfig` is defined by the core that reads it (`sdbench.core.settings`) and `EvalConfig` by the
evaluation protocol (`sdbench.eval.protocol`); both are importable from here too.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from sdbench.core.settings import TrainingConfig
from sdbench.errors import UserError, did_you_mean
from sdbench.eval.protocol import EvalConfig
from sdbench.pydantic_base import FrozenModel

ProfileName = Literal["smoke", "quick", "full", "real-quick"]

DEFAULT_TASKS = ["graph_paths", "arith_target", "code_synth"]
# `sdbench run` with no strategies: the paper's comparison (no training, SD with one sampled demo, RL);
# `--suite all` runs every built-in strategy.
DEFAULT_SUITE = ("base", "single_sampled_demo", "grpo")
# `--suite mechanism` (issue 29): the paper's comparison plus the arms that separate compounding from
# conditioning: demos from a fixed pool of the base model's correct samples, and the frozen base teacher; and
# the KL-regularized RL the paper contrasts with (grpo with the GRPO paper's beta = 0.04, arXiv 2402.03300).
MECHANISM_SUITE: tuple[str | dict[str, Any], ...] = (
    *DEFAULT_SUITE, {"name": "single_sampled_demo", "demo_source": "base_pool"},
    {"name": "single_sampled_demo", "training": {"teacher": "frozen"}}, {"name": "grpo", "kl_coef": 0.04})
# `--suite leaderboard` (issue 32): every built-in strategy plus the arms the leaderboard compares them with:
# the live and the frozen teacher, base-pool demos and KL-regularized GRPO.
LEADERBOARD_ARMS: tuple[dict[str, Any], ...] = (
    {"name": "single_sampled_demo", "training": {"teacher": "live"}},
    {"name": "single_sampled_demo", "training": {"teacher": "frozen"}},
    {"name": "single_sampled_demo", "demo_source": "base_pool"}, {"name": "grpo", "kl_coef": 0.04})
SUITES = ("default", "all", "mechanism", "leaderboard")
PAPER_BASELINE = "single_sampled_demo"   # paired deltas are taken against it
MAX_LIST = 1000            # tasks or strategies in one run: more is a mistake (or an attack), refused at once
MAX_CONFIG_BYTES = 2**20   # a config file: 1 000 strategies with parameters fit in a tenth of it


class StrategySpec(FrozenModel):
    """A strategy, its hyperparameters and its training overrides (an "arm"):
    `grpo`, `{name: multi_demo, num_demos: 4}` or `{name: single_sampled_demo, training: {teacher: live}}`."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict, description="training settings for this strategy alone")

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        if isinstance(data, dict) and "params" not in data:
            rest = {k: v for k, v in data.items() if k not in ("name", "training")}
            return {"name": data.get("name"), "params": rest, "training": data.get("training") or {}}
        return data

    @field_validator("training")
    @classmethod
    def _known_training_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(v) - set(TrainingConfig.model_fields))
        if unknown:
            hint = did_you_mean(unknown[0], TrainingConfig.model_fields) or "see `sdbench run --print-config`"
            raise ValueError(f"unknown training key {unknown[0]!r} ({hint})")
        return v

    @property
    def label(self) -> str:
        """Row name on tables: the name, plus non-default hyperparameters `(k=v)` and training
        overrides `[k=v]` when given, e.g. `single_sampled_demo[teacher=live]`."""
        label = self.name
        if self.params:
            label += "(" + ",".join(f"{k}={v}" for k, v in sorted(self.params.items())) + ")"
        if self.training:
            label += "[" + ",".join(f"{k}={v}" for k, v in sorted(self.training.items())) + "]"
        return label


PROFILES: dict[str, dict[str, Any]] = {
    # One cell in well under a minute on 2 cores: for tests and trying things.
    "smoke": {"seeds": 1, "training": {"steps": 4, "prompts_per_step": 4, "rollouts_per_prompt": 4, "lr": 3e-4,
                                       "train_problems": 64, "warmup_steps": 2},
              "evaluation": {"problems": 8, "samples": 8, "every": 2, "val_problems": 8, "val_samples": 8}},
    # The default: the whole default suite in minutes on a laptop CPU.
    "quick": {"seeds": 3, "training": {"steps": 150, "prompts_per_step": 16, "rollouts_per_prompt": 8, "lr": 3e-4},
              "evaluation": {"problems": 100, "samples": 32, "every": 25, "val_problems": 64, "val_samples": 16}},
    # Leaderboard grade: 5 seeds, n >= 64. Seeds dominate the variance of the committed full runs (README
    # "Metrics"): a t-interval over 3 seeds is 2x as wide as one over 5 (t_0.975,2 / sqrt 3 vs t_0.975,4 / sqrt 5).
    "full": {"seeds": 5, "training": {"steps": 300, "prompts_per_step": 16, "rollouts_per_prompt": 8, "lr": 3e-4},
             "evaluation": {"problems": 200, "samples": 64, "every": 25, "val_problems": 64, "val_samples": 16}},
    # A real pretrained model (SmolLM2-135M-Instruct, `--model smollm2-135m-instruct`) on 2 CPU cores: a few dozen
    # steps of 4 prompts x 8 rollouts, completions of at most 16 tokens, full fine-tuning at a learning rate
    # for a pretrained 135M model (1e-5, the order of TRL's and OPSD's defaults for full fine-tuning), val every
    # 8 steps, test on 100 problems x 16 samples. README "Real models and real data" has what a cell costs.
    # micro_batch 8 (one prompt's group per forward/backward): a step's 32 rollouts at once held ~9.5 GB, over
    # the 9.4 GB a cell gets with 2 workers on a 24 GB machine (80% of RAM over the workers).
    "real-quick": {"seeds": 3, "training": {"steps": 24, "prompts_per_step": 4, "rollouts_per_prompt": 8, "lr": 1e-5,
                                            "warmup_steps": 2, "train_problems": 256, "max_new_tokens": 16,
                                            "micro_batch": 8},
                   "evaluation": {"problems": 100, "samples": 16, "every": 8, "val_problems": 32, "val_samples": 8,
                                  "splits": ["test", "ood"]}},
}


class RunConfig(FrozenModel):
    name: str = "default"
    profile: ProfileName = "quick"
    tasks: tuple[str, ...] = tuple(DEFAULT_TASKS)
    strategies: tuple[StrategySpec, ...] = ()
    seeds: int = Field(ge=1, le=1000)
    out: str | None = None
    model: str | None = Field(default=None, description="hub id or local path replacing each task's base model")
    data_path: str | None = Field(default=None, description="local dataset file/dir for real-data tasks")
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = Field(default=None, description="Ray cluster address (default: start a local one)")
    workers: int = Field(default=2, ge=1, le=256)
    threads_per_worker: int = Field(default=1, ge=1, le=256)
    report_to: Literal["none", "tensorboard"] = Field(default="none", description="extra training logs")
    suite: Literal["default", "all", "mechanism", "leaderboard"] = Field(
        default="default", description="strategies when none are listed")
    training: TrainingConfig
    evaluation: EvalConfig

    @model_validator(mode="after")
    def _arms_valid(self) -> RunConfig:
        labels = [s.label for s in self.strategies]
        for spec in self.strategies:
            try:
                self.training.with_overrides(spec.training)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"]) or "training"
                raise ValueError(f"strategy {spec.label!r}: training.{where}: {err['msg']}") from None
        for kind, names in (("strategy", labels), ("task", self.tasks)):
            seen: set[str] = set()
            for name in names:          # linear: the first repeat, in order
                if name in seen:
                    raise ValueError(f"{kind} {name!r} is listed twice")
                seen.add(name)
        return self

    @field_validator("name", "out", "model", "data_path")
    @classmethod
    def _no_control_characters(cls, v: str | None) -> str | None:
        bad = next((i for i, ch in enumerate(v or "") if ord(ch) < 32 or ord(ch) == 127), None)
        if bad is not None:
            raise ValueError(f"contains a control character ({v[bad]!r} at position {bad})")
        return v

    def training_for(self, spec: StrategySpec) -> TrainingConfig:
        """The training settings of one arm: the run's, with that strategy's overrides."""
        return self.training.with_overrides(spec.training)

    @property
    def run_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / self.name

    def config_hash(self) -> str:
        """Hash of everything that determines results (not where they go or how many workers)."""
        return _short_hash(self._hashed())

    def cell_settings(self) -> dict[str, Any]:
        """What determines one cell's result besides its own task, arm and seed: the hashed config less the lists
        of tasks, arms and seeds."""
        return {k: v for k, v in self._hashed().items() if k not in ("tasks", "strategies", "seeds")}

    def cell_hash(self) -> str:
        """Hash of `cell_settings`. Two runs with equal cell hashes compute a shared (task, arm, seed)
        identically (tests/test_reuse.py), which is what `sdbench run --reuse` relies on."""
        return _short_hash(self.cell_settings())

    def _hashed(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude={"out", "workers", "name", "executor", "ray_address",
                                                     "report_to", "suite"})
        if data["training"].get("backend") == "hf":
            del data["training"]["backend"]     # the default sampler keeps hashes from before the field
        if data["training"].get("max_new_tokens") is None:
            del data["training"]["max_new_tokens"]   # None (the task's budget) keeps hashes from before the field
        if data["training"].get("micro_batch") is None:
            del data["training"]["micro_batch"]      # None (the whole step at once) keeps hashes from before it
        if data["evaluation"].get("backend") is None:
            del data["evaluation"]["backend"]   # likewise: None (= the training backend) keeps older hashes
        return data


def _short_hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise UserError(f"config file {str(path)!r} is a directory", "pass a .yaml or .toml file to --config")
    if not path.is_file():
        raise UserError(f"config file {str(path)!r} does not exist", "check the path given to --config")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"config file {path.name!r} is not UTF-8 text (byte {exc.start} is "
                        f"{exc.object[exc.start]:#04x})", "pass a YAML or TOML text file to --config") from None
    except OSError as exc:
        raise UserError(f"cannot read config file {str(path)!r}: {exc.strerror}",
                        "check the path and its permissions") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise UserError(f"config file {path.name!r} is {len(text)} characters; at most {MAX_CONFIG_BYTES} are read",
                        f"a run lists at most {MAX_LIST} tasks or strategies: split it into several runs")
    if not text.strip():
        raise UserError(f"config file {path.name!r} is empty",
                        "write at least one key (e.g. `profile: smoke`), or drop --config")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml", ".json"):
            _check_yaml_lists(text, path.name)
            data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
        else:
            raise UserError(f"config file {path.name!r} is neither YAML nor TOML", "use .yaml, .yml or .toml")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"config file {path.name!r} is malformed: {first}", "fix the syntax at that line") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path.name!r} must hold a mapping of keys", "see `sdbench run --print-config`")
    return data


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML's safe loader, refusing a key given twice in one mapping (at any depth) as TOML does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen:
                raise UserError(f"config key {key!r} is given twice (lines {seen[key]} and {line})",
                                "keep one of them: YAML would silently take the last")
            seen.setdefault(key, line)
        return super().construct_mapping(node, deep=deep)


def _check_yaml_lists(text: str, name: str) -> None:
    """Refuse a list of more than MAX_LIST entries while parsing, before building it (a million entries
    would take a minute to load)."""
    counts: list[list[int] | None] = []    # per open collection: [items so far, its line] (None: a mapping)
    for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        if isinstance(event, yaml.CollectionEndEvent):
            counts.pop()
            continue
        if counts and counts[-1] is not None and isinstance(event, yaml.NodeEvent):
            counts[-1][0] += 1
            if counts[-1][0] > MAX_LIST:
                raise UserError(f"config file {name!r}: the list at line {counts[-1][1]} has more than {MAX_LIST} "
                                "entries", f"a run lists at most {MAX_LIST} tasks or strategies")
        if isinstance(event, yaml.SequenceStartEvent):
            counts.append([0, event.start_mark.line + 1])
        elif isinstance(event, yaml.MappingStartEvent):
            counts.append(None)


def resolve_config(file_data: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None,
                   all_strategies: Callable[[], Sequence[str]] | None = None) -> RunConfig:
    """Profile defaults <- config file <- command-line overrides, validated.

    `all_strategies` lists what `suite: all` runs (the CLI passes `sdbench.strategy.builtin_strategies`):
    the configuration does not reach up into the strategy registry itself."""
    merged: dict[str, Any] = dict(file_data or {})
    for key, value in (overrides or {}).items():
        if value is not None:
            merged[key] = value
    profile = merged.get("profile", "quick")
    if profile not in PROFILES:
        hint = did_you_mean(str(profile), PROFILES) or "use smoke, quick, full or real-quick"
        raise UserError(f"unknown profile {profile!r}", hint)
    defaults = PROFILES[profile]
    merged.setdefault("seeds", defaults["seeds"])
    for section in ("training", "evaluation"):
        given = merged.get(section) or {}
        if not isinstance(given, dict):
            raise UserError(f"config key {section!r} must be a mapping", "see `sdbench run --print-config`")
        merged[section] = {**defaults[section], **given}
    suite = merged.get("suite", "default")
    if suite not in SUITES:
        raise UserError(f"unknown suite {suite!r}",
                        did_you_mean(str(suite), SUITES) or "use default, all, mechanism or leaderboard")
    if not merged.get("strategies"):
        if suite in ("all", "leaderboard") and all_strategies is None:
            raise ValueError(f"suite {suite!r} needs all_strategies (e.g. sdbench.strategy.builtin_strategies)")
        merged["strategies"] = (list(DEFAULT_SUITE) if suite == "default" else list(MECHANISM_SUITE)
                                if suite == "mechanism" else list(all_strategies()) if suite == "all"
                                else [*all_strategies(), *LEADERBOARD_ARMS])
    if isinstance(merged.get("tasks"), str):
        merged["tasks"] = [t for t in merged["tasks"].split(",") if t]
    for key in ("tasks", "strategies"):
        if isinstance(merged.get(key), list | tuple) and len(merged[key]) > MAX_LIST:
            raise UserError(f"{key} lists {len(merged[key])} entries; at most {MAX_LIST} are allowed",
                            f"split the suite into several runs of at most {MAX_LIST} {key}")
    try:
        return RunConfig.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc) from exc


def _config_error(exc: ValidationError) -> UserError:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"] if not isinstance(p, int)) or "config"
    if err["type"] == "extra_forbidden":
        model = {"training": TrainingConfig, "evaluation": EvalConfig}.get(str(err["loc"][0]), RunConfig)
        key = str(err["loc"][-1])
        known = model.model_fields
        return UserError(f"unknown config key {where!r}", did_you_mean(key, known) or "known keys: " + ", ".join(known))
    return UserError(f"invalid value for {where!r}: {err['msg']}", "see `sdbench run --print-config` for settings")
