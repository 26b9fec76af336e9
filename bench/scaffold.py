'''Scaffold a strategy plugin package: `sdbench strategies new NAME [--dir DIR]` calls `scaffold`.

    from sdbench.scaffold import scaffold
    names = scaffold("my_demo", Path("sdbench-my-demo"))   # then: pip install -e sdbench-my-demo

The package is what any third-party strategy looks like: a pyproject declaring the entry point
`[project.entry-points."sdbench.strategies"] NAME = "sdbench_NAME.strategy:Class"`, the strategy
module (registered with `@register_strategy("NAME")`, the same NAME), and a test built with
`sdbench.testing.make_group`. The strategy is a neutral starting point named after NAME (one demo from
the other correct rollouts) that imports its helpers from `sdbench.strategy`. Once installed, sdbench
finds it by that entry point and namespaces it by distribution: `sdbench_NAME/NAME`.
'''

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sdbench.errors import UserError

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class PluginNames:
    """Every name a scaffolded plugin uses, derived from the strategy name."""

    name: str              # the strategy's own name, `my_demo`
    distribution: str      # `sdbench-my-demo` (what pip installs)
    package: str           # `sdbench_my_demo` (what Python imports)
    cls: str               # `MyDemo`

    @property
    def key(self) -> str:
        """The name sdbench knows it by: the distribution, normalized, then the strategy name."""
        return f"{self.package}/{self.name}"


def plugin_names(name: str) -> PluginNames:
    if not _NAME.match(name):
        raise UserError(f"invalid strategy name {name!r}",
                        "use lowercase letters, digits and underscores, starting with a letter (e.g. my_demo)")
    cls = "".join(part.capitalize() for part in name.split("_") if part) or "Strategy"
    return PluginNames(name=name, distribution="sdbench-" + name.replace("_", "-"), package=f"sdbench_{name}", cls=cls)


PYPROJECT = '''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{distribution}"
version = "0.1.0"
description = "The `{name}` demonstration strategy for sdbench."
requires-python = ">=3.11"
dependencies = ["sdbench"]

# This line is what makes sdbench find the strategy: `sdbench strategies list` shows it as {key}.
[project.entry-points."sdbench.strategies"]
{name} = "{package}.strategy:{cls}"

[tool.setuptools]
packages = ["{package}"]
'''

INIT = '''"""The `{name}` strategy plugin for sdbench (the strategy lives in `{package}.strategy`).

Worked examples of every plan term are sdbench's built-ins (`sdbench strategies show NAME`):
demos and teachers: single_sampled_demo, multi_demo, ground_truth_demo, diversity_weighted,
pmi_purified (signed log-mean), sc_sdpo (distill_weight), opsd (divergence_clip); policy gradient:
grpo (kl_coef), passk_grpo, unlikeliness_grpo (needs_logprob), rft, rlcsd (HintContrast);
both per rollout: srpo (routing), sd_rl_blend, antisd (teacher_entropy_gate), entropy_regularized;
ssd (sft_weight); base (trains = False).
"""
'''

STRATEGY = '''"""`{name}`: <its method and source>. As written, the teacher of rollout i sees one demo c_i drawn
from the other correct rollouts of its group; per token w * D(pi(.|x) || pi(.|c_i, x)). Edit `plan`.
Run: sdbench run --strategies {key}
"""

from collections.abc import Sequence

from pydantic import Field

from sdbench.strategy import (NO_SIGNAL, Group, RolloutPlan, StrategyBase, StrategyParams, TeacherContext,
                              draw_demos, other_correct, register_strategy)


class {cls}Params(StrategyParams):
    weight: float = Field(default=1.0, gt=0, description="w: scale of the distillation term")


@register_strategy("{name}")   # the same name as the entry point in pyproject.toml
class {cls}(StrategyBase):
    """{name}: one demo from the other correct rollouts of the group, distilled with weight w."""

    Params = {cls}Params

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        plans = []
        for rollout in group.rollouts:
            demos = draw_demos(other_correct(group, rollout), 1, group.rng)   # never the rollout itself
            plans.append(RolloutPlan(teachers=(TeacherContext(demos=(demos[0].completion,)),),
                                     distill_weight=self.params.weight) if demos else NO_SIGNAL)
        return plans
'''

TEST = '''"""Tests of the `{name}` strategy: its plan on a hand-built group, and its registration.

    pip install -e .   # once: registers the entry point
    pytest
"""

from sdbench.strategy import STRATEGIES
from sdbench.testing import make_group

from {package}.strategy import {cls}


def test_each_rollout_is_taught_by_another_correct_rollout() -> None:
    plans = {cls}(weight=0.5).plan(make_group([True, True, False]))   # rollouts "y0", "y1", "y2"
    assert [p.teachers[0].demos for p in plans[:2]] == [("y1",), ("y0",)]
    assert plans[2].teachers[0].demos in {{("y0",), ("y1",)}} and all(p.distill_weight == 0.5 for p in plans)
    assert not {cls}().plan(make_group([True, False]))[0].active      # no other correct rollout: no signal


def test_sdbench_finds_the_installed_plugin() -> None:
    entry = STRATEGIES.entry("{key}")
    assert entry.load() is {cls} and entry.distribution.replace("_", "-") == "{distribution}"
'''

README = '''# {distribution}

The `{name}` demonstration strategy for sdbench, as a plugin package.

    pip install -e .
    pytest
    sdbench strategies show {key}
    sdbench run --strategies {key} --profile smoke
'''


def scaffold(name: str, directory: Path | None = None) -> tuple[PluginNames, list[Path]]:
    """Write the plugin package for strategy `name` into `directory` (default ./sdbench-NAME)."""
    names = plugin_names(name)
    root = Path(directory) if directory is not None else Path.cwd() / names.distribution
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} is a file", "pass a new or empty directory to --dir")
    if root.is_dir() and any(root.iterdir()):
        raise UserError(f"{root} already exists and is not empty", "pass another --dir, or remove it")
    fields = {**names.__dict__, "key": names.key}
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{names.package}/__init__.py": INIT,
        f"{names.package}/strategy.py": STRATEGY,
        f"tests/test_{names.name}.py": TEST,
    }
    written = []
    for rel, template in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**fields))
        written.append(path)
    return names, written
