"""The import graph of `sdbench`: no import loops, and no import from a lower layer into a higher one.

    pytest tests/test_layers.py

The graph is read from the source with the standard library's `ast` (nothing is imported, so the test
sees lazy imports inside functions too; imports under `if TYPE_CHECKING:` are left out: they never run).
`from pkg import name` is an edge to the submodule `pkg.name` when there is one, and to `pkg` itself
only for the names that are not submodules, so a package that re-exports its submodules is not a loop
by itself. Layers, lowest first (a module may import its own layer and the ones below it):

    0 foundation      sdbench (the lazy facade), errors, atomic, pydantic_base, seeding
    1 results         sdbench.results.* (the versioned record models, counts, the weights hash)
    2 presentation    sdbench.presentation.* (cell formats, captions, tables, the HTML frame, plots)
    3 sandbox         sdbench.sandbox.*
    4 plugin API      registry, task, strategy, testing, models (the catalogue of preparable real models)
    5 built-ins       sdbench.strategies.*, sdbench.tasks.*
    6 core            sdbench.core.*
    7 evaluation      sdbench.eval.*
    8 configuration   config
    9 instruments     gate, gate_store, pretrain, lmeval_bridge
   10 runs            sdbench.runs.*
   11 leaderboard     sdbench.leaderboard.*
   12 front ends      scaffold, sdbench.cli.*

KNOWN lists the edges that break these rules today (issue 26 moves them away). It may only shrink: an
entry whose edge is gone fails the test too, so each fix removes its line. A new loop or upward import
anywhere else fails at once.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"sdbench": ROOT / "bench", "sdbench.strategies": ROOT / "strategies", "sdbench.tasks": ROOT / "tasks"}

LAYERS: list[tuple[str, ...]] = [
    ("sdbench", "sdbench.errors", "sdbench.atomic", "sdbench.pydantic_base", "sdbench.seeding"),
    ("sdbench.results",),
    ("sdbench.presentation",),
    ("sdbench.sandbox",),
    ("sdbench.registry", "sdbench.task", "sdbench.strategy", "sdbench.testing", "sdbench.models"),
    ("sdbench.strategies", "sdbench.tasks"),
    ("sdbench.core",),
    ("sdbench.eval",),
    ("sdbench.config",),
    ("sdbench.gate", "sdbench.gate_store", "sdbench.pretrain", "sdbench.lmeval_bridge"),
    ("sdbench.runs",),
    ("sdbench.leaderboard",),
    ("sdbench.scaffold", "sdbench.cli"),
]

# (importer, imported): today's exceptions, each named in issue 26. Remove a line when its edge goes.
KNOWN: set[tuple[str, str]] = set()


def module_files() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = [p for p in path.relative_to(root).with_suffix("").parts if p != "__init__"]
            mods[".".join([package, *parts])] = path
    return mods


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    mods = module_files()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        out: set[str] = set()
        for node in _runtime_nodes(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                out |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - (node.level - 1)]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                subs = {f"{target}.{alias.name}" for alias in node.names} & mods.keys()
                out |= subs
                if len(subs) < len(node.names):
                    out.add(target)
        graph[name] = {m for m in out if m in mods and m != name}
    return graph


def layer_of(module: str) -> int:
    best = (-1, -1)   # (length of the longest matching prefix, layer)
    for index, members in enumerate(LAYERS):
        for member in members:
            if (module == member or module.startswith(member + ".")) and len(member) > best[0]:
                best = (len(member), index)
    assert best[1] >= 0, f"{module} is in no layer: add it to LAYERS"
    return best[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_every_module_has_a_layer() -> None:
    for module in module_files():
        layer_of(module)


def test_no_upward_imports_beyond_the_known_ones() -> None:
    graph = import_graph()
    upward = sorted((a, b) for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a))
    assert [edge for edge in upward if edge not in KNOWN] == []


def test_no_import_loops_beyond_the_known_ones() -> None:
    graph = import_graph()
    pruned = {a: {b for b in targets if (a, b) not in KNOWN} for a, targets in graph.items()}
    assert cycles(pruned) == []


def test_known_exceptions_still_exist() -> None:
    """The allow-list only shrinks: a fixed edge must leave KNOWN."""
    graph = import_graph()
    assert sorted(edge for edge in KNOWN if edge[1] not in graph.get(edge[0], set())) == []


def test_the_reader_finds_loops_and_upward_edges() -> None:
    """The checker itself: a made-up graph with one loop and one upward edge."""
    graph = {"sdbench.core.a": {"sdbench.core.b"}, "sdbench.core.b": {"sdbench.core.a", "sdbench.runs.x"},
             "sdbench.runs.x": set()}
    assert cycles(graph) == [["sdbench.core.a", "sdbench.core.b"]]
    assert layer_of("sdbench.runs.x") > layer_of("sdbench.core.b")
    assert layer_of("sdbench.strategies.grpo") == layer_of("sdbench.strategy") + 1
