"""Strategy plugins end to end: `sdbench strategies new` scaffolds a package that installs into this
environment, is listed with its distribution and version, passes its own tests and runs through
`sdbench run`; its bare name points to the namespaced one and `strategies list` never cuts the name;
a broken plugin (also one that fails after its class registered) is reported with the real error and
skipped, and a run that asks for it fails with that error; SDBENCH_DISABLE_PLUGIN_AUTOLOAD=1 hides plugins.

    pytest tests/test_plugins.py

Discovery happens once per process, so everything that must see a freshly installed (or
fake) distribution runs in a subprocess. The scaffolded package is installed with
`pip install -e --no-deps --no-build-isolation` (offline) and uninstalled afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SDBENCH = str(Path(sys.executable).parent / "sdbench")
TESTS = Path(__file__).resolve().parent
NAME = f"plugtest{os.getpid()}"          # unique: concurrent test runs must not share a distribution
DIST = f"sdbench-{NAME}"
KEY = f"sdbench_{NAME}/{NAME}"
BROKEN_DIST = "broken-plug-xyz"
LATE_DIST = "late-broken-xyz"        # its module registers its class, then fails to import a dependency
LATE_MODULE = '''from sdbench.strategy import StrategyBase, register_strategy


@register_strategy("late")
class Late(StrategyBase):
    """A strategy whose module fails after registering it."""


import no_such_dependency_xyz  # noqa: E402,F401
'''


def run(args: list[str], *, env: dict[str, str] | None = None, check: bool = True,
        timeout: int = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def env_with(path: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SDBENCH_DISABLE_PLUGIN_AUTOLOAD"}
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path), *filter(None, [env.get("PYTHONPATH")])])
    return {**env, **extra}


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The package `sdbench strategies new` writes, installed editable for this module's tests."""
    root = tmp_path_factory.mktemp("plugin") / DIST
    out = run([SDBENCH, "strategies", "new", NAME, "--dir", str(root)]).stdout
    assert f"--strategies {KEY}" in out and (root / "pyproject.toml").is_file()
    run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(root)])
    try:
        yield root
    finally:
        run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", DIST], check=False)


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only the metadata of a distribution whose entry point names a missing module."""
    site = tmp_path_factory.mktemp("broken_site")
    info = site / "broken_plug_xyz-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {BROKEN_DIST}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[sdbench.strategies]\nbad = no_such_module_xyz.strategy:Bad\n")
    late = site / "late_broken_xyz-1.0.dist-info"
    late.mkdir()
    (late / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {LATE_DIST}\nVersion: 1.0\n")
    (late / "top_level.txt").write_text("late_broken_xyz\n")
    (late / "entry_points.txt").write_text("[sdbench.strategies]\nlate = late_broken_xyz:Late\n")
    (site / "late_broken_xyz.py").write_text(LATE_MODULE)
    return site


def listing(env: dict[str, str]) -> dict[str, dict]:
    return {row["name"]: row for row in json.loads(run([SDBENCH, "strategies", "list", "--json"], env=env).stdout)}


def test_scaffolded_plugin_is_listed_with_its_distribution_and_version(plugin_dir: Path) -> None:
    rows = listing(env_with())
    assert rows[KEY] == {"name": KEY, "distribution": DIST, "version": "0.1.0", "ok": True, "trains": True,
                         "summary": f"{NAME}: one demo from the other correct rollouts of the group, "
                                    "distilled with weight w."}
    shown = run([SDBENCH, "strategies", "show", KEY]).stdout
    assert f"({DIST} 0.1.0)" in shown and "weight: float = 1.0" in shown
    near = run([SDBENCH, "strategies", "show", KEY[:-1]], check=False)
    assert near.returncode == 2 and f"did you mean '{KEY}'" in near.stderr
    bare = run([SDBENCH, "strategies", "show", NAME], check=False)      # the name a user types first
    assert bare.returncode == 2 and f"did you mean '{KEY}'" in bare.stderr and "namespaced" in bare.stderr
    for columns in ("80", "60", "200"):                                 # the name is never cut
        table = run([SDBENCH, "strategies", "list"], env=env_with(COLUMNS=columns)).stdout
        assert KEY in table and "…" not in table, (columns, table)


def test_scaffolded_plugin_passes_its_own_tests(plugin_dir: Path) -> None:
    proc = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(plugin_dir / "tests")],
               check=False, timeout=120)
    assert proc.returncode == 0 and "2 passed" in proc.stdout, proc.stdout + proc.stderr


RUN_ON_TOY = """
import sys
sys.path.insert(0, {tests!r})
from toy import ToyPick
from sdbench.task import TASKS
ToyPick.model_dir = {model!r}
TASKS.register("toy_pick", ToyPick, distribution="sdbench-tests")
from sdbench.cli import main
main(["run", "--strategies", {key!r}, "--tasks", "toy_pick", "--profile", "smoke", "--out", {out!r},
      "--workers", "1"])
"""


@pytest.mark.slow
def test_scaffolded_plugin_runs_end_to_end_next_to_a_broken_one(plugin_dir: Path, broken_site: Path,
                                                                toy_model_dir: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    script = RUN_ON_TOY.format(tests=str(TESTS), model=toy_model_dir, key=KEY, out=str(out))
    run([sys.executable, "-c", script], env=env_with(broken_site))
    records = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    assert len(records) == 1
    (rec,) = records
    assert rec["status"] == "ok", rec.get("failure")
    assert rec["strategy"]["name"] == KEY and rec["strategy"]["params"] == {"weight": 1.0}
    assert rec["strategy"]["distribution"] == DIST and rec["strategy"]["version"] == "0.1.0"
    assert len(rec["train"]["log"]) == 4 and rec["eval"]["final"]["test"]["n"] == 8   # schema 2: per checkpoint
    assert json.loads((out / "summary.json").read_text())["failed"] == []


def test_a_broken_plugin_is_reported_by_distribution_and_skipped(broken_site: Path) -> None:
    env = env_with(broken_site)
    rows = listing(env)
    bad = rows["broken_plug_xyz/bad"]
    assert bad["ok"] is False and bad["distribution"] == BROKEN_DIST and bad["version"] == "1.0"
    assert "ModuleNotFoundError" in bad["summary"]
    late = rows["late_broken_xyz/late"]                     # registered, then its module failed: still broken
    assert late["ok"] is False and "No module named 'no_such_dependency_xyz'" in late["summary"]
    assert all(row["ok"] for name, row in rows.items() if name not in ("broken_plug_xyz/bad", "late_broken_xyz/late"))
    table = run([SDBENCH, "strategies", "list"], env=env).stdout
    assert f"from distribution {BROKEN_DIST}" in table and "skipped" in table
    assert f"'late_broken_xyz/late' from distribution {LATE_DIST} 1.0 was skipped: failed to import: " \
           "ModuleNotFoundError" in " ".join(table.split())
    config = json.loads(run([SDBENCH, "run", "--print-config"], env=env).stdout)
    assert "grpo" in {s["name"] for s in config["strategies"]}
    assert not any("broken" in s["name"] for s in config["strategies"])
    used = run([SDBENCH, "strategies", "show", "broken_plug_xyz/bad"], env=env, check=False)
    assert used.returncode == 2 and BROKEN_DIST in used.stderr and "Traceback" not in used.stderr
    # what a run does with each requested strategy before it writes anything: only a request for it fails
    build = ("from sdbench.config import StrategySpec\nfrom sdbench.runs.cell import build_strategy\n"
             "from sdbench.registry import RegistryError\nbuild_strategy(StrategySpec(name='grpo'))\n"
             "try:\n    build_strategy(StrategySpec(name='broken_plug_xyz/bad'))\n"
             "except RegistryError as err:\n    print('refused:', err)\n")
    assert f"from {BROKEN_DIST} failed to import" in run([sys.executable, "-c", build], env=env).stdout
    out = Path(str(broken_site) + "-run")
    asked = run([SDBENCH, "run", "--strategies", "late_broken_xyz/late", "--tasks", "graph_paths", "--profile",
                 "smoke", "--seeds", "1", "--out", str(out)], env=env, check=False)
    assert asked.returncode == 2 and "no_such_dependency_xyz" in asked.stderr and "Traceback" not in asked.stderr
    assert not out.exists()                                 # refused before anything was written


def test_disable_autoload_hides_every_plugin(plugin_dir: Path, broken_site: Path) -> None:
    rows = listing(env_with(broken_site, SDBENCH_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert {"grpo", "single_sampled_demo"} <= set(rows)
    assert all(row["distribution"] == "sdbench" and "/" not in name for name, row in rows.items())
    assert KEY in listing(env_with(broken_site))          # the same environment, autoload on


def test_a_name_collision_raises() -> None:
    from sdbench.registry import RegistryError
    from sdbench.strategy import STRATEGIES, register_strategy

    class Impostor:
        pass

    Impostor.__module__ = "sdbench.strategies.impostor"    # a second sdbench object under a taken name
    with pytest.raises(RegistryError, match="already registered"):
        register_strategy("grpo")(Impostor)
    assert STRATEGIES.get("grpo") is not Impostor


def test_the_readme_example_is_what_the_scaffold_writes(tmp_path: Path) -> None:
    import re

    from sdbench.scaffold import scaffold

    readme = (TESTS.parent / "README.md").read_text()
    md = readme.split("## Add a strategy", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", md, re.S).group(1)
    toml = re.search(r"```toml\n(.*?)```", md, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in re.search(r"```bash\n(.*?)```", md, re.S).group(1).splitlines()]
    names, _ = scaffold("my_demo", tmp_path / "p")
    assert code == (tmp_path / "p" / names.package / "strategy.py").read_text()
    assert len(code.splitlines()) <= 30
    assert toml == (tmp_path / "p" / "pyproject.toml").read_text()      # the whole pyproject, build-system too
    assert "[build-system]" in toml and "packages = " in toml
    assert commands == ["sdbench strategies new my_demo", f"pip install -e {names.distribution}",
                        f"sdbench run --strategies {names.key} --profile smoke"]
    # every helper the example uses comes from sdbench.strategy; the README's plan test runs as written
    assert [line for line in code.splitlines() if "import" in line and "sdbench" in line] == [
        "from sdbench.strategy import (NO_SIGNAL, Group, RolloutPlan, StrategyBase, StrategyParams, TeacherContext,"]
    snippet = re.findall(r"```python\n(.*?)```", md, re.S)[1]
    assert "make_group" in snippet
    check = (f"import sys\nsys.path.insert(0, {str(tmp_path / 'p')!r})\n"
             f"from {names.package}.strategy import {names.cls}\n")
    run([sys.executable, "-c", check + snippet])
