"""Registries of pluggable components (demonstration strategies, tasks), lm-eval style.

Entries come from two places, through one path:
  * the entry-point groups `sdbench.strategies` / `sdbench.tasks` — built-ins are declared in
    sdbench's own pyproject.toml exactly like a third-party plugin; entries load lazily, on `get`;
  * `@register_strategy("name")` / `@register_task("name")` in code that is already imported.

Names from a distribution other than sdbench are namespaced as `dist/name`. A collision raises, a
near-miss name gets "did you mean" (a plugin's bare name: its namespaced one), a plugin that fails
to import — anywhere in its module, also after its class registered — is reported by distribution
with the real error and skipped (a request for it raises that error), and
`SDBENCH_DISABLE_PLUGIN_AUTOLOAD=1` turns discovery of third-party entries off.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

from sdbench.errors import UserError, unknown_name

T = TypeVar("T")

HOME_DISTRIBUTION = "sdbench"
DISABLE_ENV = "SDBENCH_DISABLE_PLUGIN_AUTOLOAD"


class RegistryError(UserError):
    """A registration problem: a collision or a plugin that does not import."""


@dataclass
class Entry(Generic[T]):
    """One registered name: the object itself, or the entry point that will load it."""

    name: str
    distribution: str
    version: str
    entry_point: metadata.EntryPoint | None = None
    obj: T | None = None
    error: str | None = None
    # The registry's table: a failed import must also void what its module registered before failing.
    siblings: dict[str, Entry[T]] | None = field(default=None, repr=False, compare=False)

    def load(self) -> T:
        if self.error is not None:
            raise RegistryError(f"plugin {self.name!r} from {self.distribution} failed to import: "
                                f"{self.error}", "fix or uninstall that distribution")
        if self.obj is None:
            assert self.entry_point is not None
            table = self.siblings if self.siblings is not None else {self.name: self}
            before = {name: entry.obj for name, entry in table.items()}
            try:
                self.obj = self.entry_point.load()
            except Exception as exc:  # a broken plugin must not crash anything that does not use it
                # The module may have run `@register_strategy` before it failed: those classes come from
                # a module that is not importable, so they are as broken as the entry point itself.
                error = f"{type(exc).__name__}: {exc}"
                for name, entry in table.items():
                    if entry is self or name not in before or (before[name] is None and entry.obj is not None):
                        entry.obj, entry.error = None, error
                return self.load()
        return self.obj

    @property
    def provenance(self) -> dict[str, str]:
        return {"name": self.name, "distribution": self.distribution, "version": self.version}


def _normalize(dist_name: str) -> str:
    return re.sub(r"[-_.]+", "_", dist_name).lower()


@dataclass
class Registry(Generic[T]):
    """Name -> component, with lazy entry points and loud collisions."""

    kind: str
    group: str
    _entries: dict[str, Entry[T]] = field(default_factory=dict)
    _discovered: bool = False

    def register(self, name: str, obj: T, *, distribution: str = HOME_DISTRIBUTION,
                 version: str | None = None) -> T:
        existing = self._entries.get(name)
        if existing is not None and existing.obj is not obj:
            # A lazy built-in entry that resolves to this very object is the same registration.
            if existing.obj is None and existing.entry_point is not None and existing.error is None:
                if existing.entry_point.value == f"{obj.__module__}:{obj.__qualname__}":  # type: ignore[attr-defined]
                    existing.obj = obj
                    return obj
            raise RegistryError(f"{self.kind} name {name!r} is already registered by {existing.distribution}",
                                "pick another name")
        self._entries[name] = Entry(name, distribution, version or _version(distribution), obj=obj,
                                    siblings=self._entries)
        return obj

    def decorator(self, name: str) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            dist = _distribution_of(getattr(obj, "__module__", ""))
            full = name if dist == HOME_DISTRIBUTION or "/" in name else f"{dist}/{name}"
            self.discover()
            return self.register(full, obj, distribution=dist)
        return wrap

    def discover(self) -> None:
        """Read the entry-point group once; entries load only when used."""
        if self._discovered:
            return
        self._discovered = True
        disabled = os.environ.get(DISABLE_ENV, "") not in ("", "0")
        for ep in metadata.entry_points(group=self.group):
            dist = ep.dist.name if ep.dist is not None else HOME_DISTRIBUTION
            home = _normalize(dist) == HOME_DISTRIBUTION
            if disabled and not home:
                continue
            name = ep.name if home else f"{_normalize(dist)}/{ep.name}"
            if name in self._entries:
                if self._entries[name].entry_point is not None and self._entries[name].entry_point.value == ep.value:
                    continue  # the same distribution seen twice on sys.path
                raise RegistryError(f"{self.kind} name {name!r} is declared twice", f"check distribution {dist}")
            version = ep.dist.version if ep.dist is not None else _version(dist)
            self._entries[name] = Entry(name, dist if not home else HOME_DISTRIBUTION, version, entry_point=ep,
                                        siblings=self._entries)

    def entry(self, name: str) -> Entry[T]:
        self.discover()
        if name not in self._entries:
            # A plugin's bare name (`longest_demo` for `sdbench_longest_demo/longest_demo`): name the
            # namespaced one rather than a near miss among the built-ins.
            namespaced = sorted(n for n in self._entries if n.rsplit("/", 1)[-1] == name and "/" in n)
            if namespaced:
                raise UserError(f"unknown {self.kind} {name!r}",
                                "plugin names are namespaced by distribution: did you mean "
                                + " or ".join(repr(n) for n in namespaced) + "?")
            raise unknown_name(self.kind, name, self._entries)
        return self._entries[name]

    def get(self, name: str) -> T:
        return self.entry(name).load()

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._entries)

    def entries(self) -> Iterator[Entry[T]]:
        """Every entry, loaded where possible; failures stay on the entry as `.error`."""
        seen: set[str] = set()
        while todo := [name for name in self.names() if name not in seen]:   # loading may register more
            for name in todo:
                seen.add(name)
                entry = self._entries[name]
                try:
                    entry.load()
                except RegistryError:
                    pass
                yield entry

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._entries


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        from sdbench import __version__
        return __version__ if dist == HOME_DISTRIBUTION else "unknown"


def _distribution_of(module: str) -> str:
    top = module.split(".")[0]
    if top == "sdbench":
        return HOME_DISTRIBUTION
    for dist in metadata.packages_distributions().get(top, []):
        return _normalize(dist)
    return _normalize(top) if top and top != "__main__" else "local"


def describe(obj: Any) -> str:
    """First line of a component's docstring: its one-line summary."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""
