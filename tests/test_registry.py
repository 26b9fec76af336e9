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
