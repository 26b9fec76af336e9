"""Registries: built-ins through entry points, lazy loading, collisions, near names, broken plugins."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

import pytest

from sdbench.errors import UserError
from sdbench.registry import Registry, RegistryError


@dataclass
class FakeDist:
    name: str
    version: str


def fake_eps(monkeypatch: pytest.MonkeyPatch, eps: list[tuple[str, str, str]]) -> None:
    objs = [metadata.EntryPoint(name, value, "test.group")._for(FakeDist(dist, "1.2.3")) for name, value, dist in eps]
    monkeypatch.setattr(metadata, "entry_points", lambda group: [e for e in objs if e.group == group])


def test_builtin_strategies_come_from_entry_points_and_load_lazily() -> None:
    from sdbench.strategy import STRATEGIES

    entry = STRATEGIES.entry("grpo")
    assert entry.distribution == "sdbench" and entry.entry_point is not None
    cls = STRATEGIES.get("grpo")
    assert cls.__name__ == "GRPO" and entry.obj is cls
    assert {"base", "single_sampled_demo", "grpo"} <= set(STRATEGIES.names())


def test_unknown_names_suggest_near_ones() -> None:
    from sdbench.strategy import STRATEGIES

    with pytest.raises(UserError) as err:
        STRATEGIES.get("single_sampled_dem")
    assert "did you mean 'single_sampled_demo'" in str(err.value)


def test_plugins_are_namespaced_broken_ones_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_eps(monkeypatch, [("good", "json:dumps", "my-plugin"), ("bad", "no_such_module_xyz:thing", "broken-pkg"),
                           ("home", "json:loads", "sdbench")])
    reg: Registry = Registry(kind="thing", group="test.group")
    assert reg.names() == ["broken_pkg/bad", "home", "my_plugin/good"]
    import json

    assert reg.get("my_plugin/good") is json.dumps
    entries = {e.name: e for e in reg.entries()}          # listing never raises
    assert entries["broken_pkg/bad"].error and "ModuleNotFoundError" in entries["broken_pkg/bad"].error
    assert entries["my_plugin/good"].provenance == {"name": "my_plugin/good", "distribution": "my-plugin",
                                                    "version": "1.2.3"}
    with pytest.raises(RegistryError, match="broken-pkg"):
        reg.get("broken_pkg/bad")


def test_disable_autoload_keeps_only_home_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_eps(monkeypatch, [("good", "json:dumps", "my-plugin"), ("home", "json:loads", "sdbench")])
    monkeypatch.setenv("SDBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    reg: Registry = Registry(kind="thing", group="test.group")
    assert reg.names() == ["home"]


def test_collisions_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_eps(monkeypatch, [])
    reg: Registry = Registry(kind="thing", group="test.group")
    reg.register("x", object())
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("x", object())


def test_decorator_namespaces_outside_sdbench(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_eps(monkeypatch, [])
    reg: Registry = Registry(kind="thing", group="test.group")

    class Local:
        pass

    Local.__module__ = "someone_elses_module"
    reg.decorator("mine")(Local)
    assert reg.names() == ["someone_elses_module/mine"]


def test_a_bare_plugin_name_points_to_the_namespaced_one(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_eps(monkeypatch, [("longest_demo", "json:dumps", "sdbench-longest-demo"), ("multi_demo", "json:loads",
                                                                                     "sdbench")])
    reg: Registry = Registry(kind="strategy", group="test.group")
    with pytest.raises(UserError) as err:
        reg.entry("longest_demo")
    assert err.value.hint == ("plugin names are namespaced by distribution: did you mean "
                              "'sdbench_longest_demo/longest_demo'?")


def test_an_import_failure_after_registration_voids_what_the_module_registered(
        monkeypatch: pytest.MonkeyPatch, tmp_path, request: pytest.FixtureRequest) -> None:
    import sys

    (tmp_path / "late_mod_xyz.py").write_text(
        "import sdbench.registry as r\n"
        "class Late: pass\n"
        "class Other: pass\n"
        "REG = r.__dict__['_TEST_REG']\n"
        "REG.register('late_pkg/late', Late, distribution='late-pkg')\n"        # what the decorator does
        "REG.register('late_pkg/other', Other, distribution='late-pkg')\n"      # a name of its own
        "raise ImportError('a dependency is missing')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    request.addfinalizer(lambda: sys.modules.pop("late_mod_xyz", None))
    fake_eps(monkeypatch, [("late", "late_mod_xyz:Late", "late-pkg")])
    reg: Registry = Registry(kind="thing", group="test.group")
    import sdbench.registry

    monkeypatch.setattr(sdbench.registry, "_TEST_REG", reg, raising=False)
    entries = {e.name: e for e in reg.entries()}
    assert entries["late_pkg/late"].obj is None and entries["late_pkg/late"].error == \
        "ImportError: a dependency is missing"
    assert entries["late_pkg/other"].error == "ImportError: a dependency is missing"
    for name in ("late_pkg/late", "late_pkg/other"):
        with pytest.raises(RegistryError, match="failed to import: ImportError: a dependency is missing"):
            reg.get(name)
