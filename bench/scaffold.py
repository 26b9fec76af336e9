'''Scaffold a strategy plugin package: `sdbench strategies new NAME [--dir DIR]` calls `scaffold`.

    from sdbench.scaffold import scaffold
    names = scaffold("my_demo", Path("sdbench-my-demo"))   # then: pip install -e sdbench-my-demo

The package is what any third-party strategy looks like: a pyproject declaring the entry point
`[project.entry-points."sdbench.strategies"] NAME = "sdbench_NAME.strategy:Class"`, the strategy
module (registered with `@register_strategy("NAME")`), and a test. Once installed, sdbench finds it
by that entry point and namespaces it by distribution: `sdbench_NAME/NAME`.
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

INIT = '''"""The `{name}` strategy plugin for sdbench (the strategy lives in `{package}.strategy`)."""
'''

STRATEGY = '''"""`{name}`: distill toward a teacher shown c_i, the shortest other correct rollout of the group.
Per token: w * D(pi(.|x) || pi(.|c_i, x)).   Run: sdbench run --strategies {key}
"""

from collections.abc import Sequence

from pydantic import Field

from sdbench.strategy import NO_SIGNAL, Group, NoParams, RolloutPlan, StrategyBase, TeacherContext, register_strategy


class {cls}Params(NoParams):
    weight: float = Field(default=1.0, gt=0, description="w: scale of the distillation term")


@register_strategy("{name}")
class {cls}(StrategyBase):
    """Self-distill toward a teacher shown the shortest other correct rollout."""

    Params = {cls}Params

    def plan(self, group: Group) -> Sequence[RolloutPlan]:
        plans = []
        for rollout in group.rollouts:
            others = [r for r in group.correct if r.index != rollout.index]
            demo = min(others, key=lambda r: len(r.completion), default=None)
            plans.append(NO_SIGNAL if demo is None else RolloutPlan(   # no other correct rollout: no teacher
                teachers=(TeacherContext(demos=(demo.completion,)),), distill_weight=self.params.weight))
        return plans
'''

TEST = '''"""Tests of the `{name}` strategy: its plan on a hand-built group, and its registration.

    pip install -e .   # once: registers the entry point
    pytest
"""

import random

from sdbench.strategy import STRATEGIES, Group, Rollout
from sdbench.task import Problem

from {package}.strategy import {cls}


def make_group(rollouts: list[tuple[str, bool]]) -> Group:
    return Group(problem=Problem(id="p", prompt="q", reference="r"), rng=random.Random(0),
                 rollouts=tuple(Rollout(index=i, completion=text, correct=ok, reward=float(ok))
                                for i, (text, ok) in enumerate(rollouts)))


def test_each_rollout_gets_the_shortest_other_correct_rollout() -> None:
    plans = {cls}(weight=0.5).plan(make_group([("a b c", True), ("a", True), ("zz", False)]))
    assert [p.teachers[0].demos for p in plans] == [("a",), ("a b c",), ("a",)]
    assert all(p.distill_weight == 0.5 for p in plans)
    assert not {cls}().plan(make_group([("a", True), ("b", False)]))[0].active


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
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
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
