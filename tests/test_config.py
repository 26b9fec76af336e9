"""Run configuration: profiles, YAML/TOML files, command-line overrides, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdbench.config import PROFILES, read_config_file, resolve_config
from sdbench.errors import UserError


def test_profiles_fill_defaults_and_overrides_win() -> None:
    cfg = resolve_config(overrides={"profile": "smoke"})
    assert cfg.training.steps == PROFILES["smoke"]["training"]["steps"] and cfg.seeds == 1
    assert {s.name for s in cfg.strategies} >= {"base", "single_sampled_demo", "grpo"}
    cfg = resolve_config({"profile": "quick", "seeds": 5, "training": {"steps": 7}}, {"seeds": 2})
    assert cfg.seeds == 2 and cfg.training.steps == 7 and cfg.training.prompts_per_step == 16
    full = resolve_config(overrides={"profile": "full"})
    assert full.seeds == 5 and full.evaluation.samples >= 64   # 5 seeds: README "Metrics" says why
    assert resolve_config(overrides={"profile": "quick"}).seeds == 3


def test_yaml_and_toml_give_the_same_config(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("tasks: [graph_paths]\nseeds: 2\nprofile: smoke\n"
                                     "strategies:\n  - base\n  - {name: single_sampled_demo, selection: first}\n")
    (tmp_path / "a.toml").write_text('tasks = ["graph_paths"]\nseeds = 2\nprofile = "smoke"\n'
                                     'strategies = ["base", {name = "single_sampled_demo", selection = "first"}]\n')
    a = resolve_config(read_config_file(tmp_path / "a.yaml"))
    b = resolve_config(read_config_file(tmp_path / "a.toml"))
    assert a == b and a.config_hash() == b.config_hash()
    assert a.strategies[1].params == {"selection": "first"}
    assert a.strategies[1].label == "single_sampled_demo(selection=first)"


def test_config_hash_ignores_where_results_go() -> None:
    a = resolve_config(overrides={"profile": "smoke", "out": "x", "workers": 1})
    b = resolve_config(overrides={"profile": "smoke", "out": "y", "workers": 2})
    c = resolve_config(overrides={"profile": "smoke", "seeds": 2})
    assert a.config_hash() == b.config_hash() != c.config_hash()


@pytest.mark.parametrize(("data", "message"), [
    ({"seedz": 3}, "unknown config key 'seedz' (did you mean 'seeds'?)"),
    ({"training": {"stepz": 3}}, "unknown config key 'training.stepz' (did you mean 'steps'?)"),
    ({"seeds": 0}, "invalid value for 'seeds'"),
    ({"training": {"lr": -1}}, "invalid value for 'training.lr'"),
    ({"evaluation": {"samples": 24}}, "power of two"),
    ({"profile": "quik"}, "unknown profile 'quik' (did you mean 'quick'?)"),
])
def test_bad_values_are_one_clear_error(data: dict, message: str) -> None:
    with pytest.raises(UserError) as err:
        resolve_config(data)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_malformed_files(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("tasks: [unclosed\n")
    with pytest.raises(UserError, match="malformed"):
        read_config_file(tmp_path / "bad.yaml")
    (tmp_path / "bad.toml").write_text("tasks = \n")
    with pytest.raises(UserError, match="malformed"):
        read_config_file(tmp_path / "bad.toml")
    with pytest.raises(UserError, match="does not exist"):
        read_config_file(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(UserError, match="mapping"):
        read_config_file(tmp_path / "list.yaml")


def test_the_evaluation_backend_is_an_evaluation_setting() -> None:
    """evaluation.backend picks the evaluation sampler; unset it follows training.backend, and it keeps the
    hash of every config written before the key existed (committed leaderboard rows included)."""
    plain = resolve_config(overrides={"profile": "smoke"})
    assert plain.evaluation.backend is None
    explicit = resolve_config(overrides={"profile": "smoke", "evaluation": {"backend": "vllm"}})
    assert explicit.evaluation.backend == "vllm" and explicit.training.backend == "hf"
    assert explicit.config_hash() != plain.config_hash()   # another sampler: other results
    with pytest.raises(UserError, match="evaluation.backend"):
        resolve_config(overrides={"profile": "smoke", "evaluation": {"backend": "jax"}})


def test_the_leaderboard_suite_is_every_builtin_and_the_four_arms() -> None:
    """`--suite leaderboard` (issue 32): the 18 built-ins, then teacher=live, teacher=frozen, demo_source=base_pool
    and grpo(kl_coef=0.04) (params in round brackets, training in square) — 22 arms with 22 distinct labels, in
    that order."""
    from sdbench.strategy import builtin_strategies

    config = resolve_config(overrides={"suite": "leaderboard", "profile": "full"}, all_strategies=builtin_strategies)
    labels = [s.label for s in config.strategies]
    assert labels[:len(builtin_strategies())] == list(builtin_strategies())
    assert labels[len(builtin_strategies()):] == [
        "single_sampled_demo[teacher=live]", "single_sampled_demo[teacher=frozen]",
        "single_sampled_demo(demo_source=base_pool)", "grpo(kl_coef=0.04)"]
    assert len(set(labels)) == len(labels) == 22 and config.seeds == 5


def test_the_readmes_real_model_config_is_the_committed_real_model_suite() -> None:
    """The README's `real_smollm2.yaml` resolves (real-quick, SmolLM2, nl_between) to exactly the arms of the
    committed real-model results: the command it shows reproduces that leaderboard section."""
    import gzip
    import json
    import re

    import yaml

    root = Path(__file__).resolve().parents[1]
    block = re.search(r"with `real_smollm2.yaml`:\n\n```yaml\n(.*?)```", (root / "README.md").read_text(), re.S)
    config = resolve_config(yaml.safe_load(block.group(1)))
    assert (config.profile, config.model, config.tasks, config.seeds) == (
        "real-quick", "smollm2-135m-instruct", ("nl_between",), 3)
    results = json.loads(gzip.decompress((root / "leaderboard/results/sdbench-real-quick-smollm2-nl_between.json.gz")
                                         .read_bytes()))
    assert [a.model_dump(mode="json") for a in config.strategies] == results["config"]["strategies"]
