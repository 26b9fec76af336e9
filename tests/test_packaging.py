"""Packaging: every folder with an __init__.py is listed in pyproject's `packages` (a missing one is
silently dropped from the wheel), package-dir maps the three top-level folders, and entry points
name importable objects."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREFIX = {"bench": "sdbench", "strategies": "sdbench.strategies", "tasks": "sdbench.tasks"}


def test_every_package_folder_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {v: k for k, v in PREFIX.items()}
    found = set()
    for top, name in PREFIX.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            found.add(".".join([name, *rel.parts]))
    assert found == set(config["packages"])


def test_entry_points_resolve() -> None:
    import importlib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for group in ("sdbench.strategies", "sdbench.tasks"):
        for name, target in project["entry-points"][group].items():
            module, attr = target.split(":")
            assert hasattr(importlib.import_module(module), attr), f"{group}:{name}"


def test_importing_sdbench_is_cheap() -> None:
    import subprocess
    import sys

    code = "import sys, sdbench, sdbench.cli.app; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_wheel_carries_models_fixtures_and_every_package(tmp_path: Path) -> None:
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("sdbench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("sdbench/tasks/assets/graph_paths/model.safetensors",
                     "sdbench/tasks/assets/graph_paths/tokenizer.json", "sdbench/tasks/graph_paths.py",
                     "sdbench/strategies/grpo.py", "sdbench/sandbox/__init__.py"):
        assert required in names, required
    assert any(n.startswith("sdbench/tasks/fixtures/gsm8k/") for n in names)
