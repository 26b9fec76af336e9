"""`graph_paths`: find a source→target path in a small layered random graph (the embedded testbed).

    from sdbench.task import load_task
    task = load_task("graph_paths")
    problem = task.problems("test", 4)[0]
    problem.prompt      # "graph go no , fe su , ... , ve mo , me no ; from ve to no :"
    problem.reference   # "ve mo pi me no"
    task.verify(problem, ["ve mo pi me no", "ve no"])
    task.teacher_prompt(problem, demos)      # "demo ve mo pi me no | " * k + problem.prompt
    task.demo_only_prompt(problem, demos)    # "demo ve mo pi me no | " * k + "path :"

Each graph is a source, three layers (the middle one holds the "hubs") and a target. Node names come
from a fixed pool of 40 labels; each layer draws from its own group of 8 (see GROUPS). The prompt
lists the edges as "a b" pairs in shuffled order; a completion is the path, node names separated by
single spaces (5 words), then EOS. Several source→target paths are valid (≈9 on average); others run
into dead ends. The pretraining corpus (`pretraining_texts`) carries a bias the base model learns:
with probability DOMINANT_P the solution is the *dominant route* — the greedy path that always moves
to the reachable neighbour whose label comes first in the pool — otherwise a uniformly drawn other
valid path. So the base model's correct answers have one dominant mode and several minority modes.
The `ood` split cuts every edge of the dominant route, so only minority routes remain (≈3). Splits
are disjoint by construction: the hash of a prompt decides which split may use it.

Functional class = the path; semantic class = "via HUB" (several paths share a hub).
Reference = the dominant route (in `ood`: the greedy route of the cut graph). The shipped base model
(tasks/assets/graph_paths) is `sdbench pretrain graph_paths --seed 0 --out tasks/assets/graph_paths`.
Run the tests with `pytest tests/test_graph_paths.py tests/test_pretrain.py`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from sdbench.task import Problem, Verdict, register_task
from sdbench.tasks._embedded import EmbeddedTask, corpus_text, in_split

# The label pool; its order is the preference order of the dominant-route rule (earlier wins).
LABELS: tuple[str, ...] = (
    "ka", "mo", "ri", "te", "vu", "ze", "lo", "pi", "su", "na",
    "bo", "di", "fe", "gu", "ha", "je", "ku", "la", "me", "no",
    "po", "qi", "ru", "sa", "tu", "ve", "wo", "xi", "yo", "zu",
    "ba", "de", "fi", "go", "hu", "ji", "ke", "lu", "mi", "ne",
)
RANK = {label: i for i, label in enumerate(LABELS)}
# Each layer draws its nodes from its own group of 8 labels (source, layer 1, hubs, layer 3, target):
# which layer a label can sit in is world knowledge the model keeps in its weights, while the
# edges of each graph must be read from the prompt. This grades the skills (layer, presence in
# the graph, edge look-up, reachability), so a small model reaches a middling pass@1 quickly.
GROUPS: tuple[tuple[str, ...], ...] = tuple(LABELS[i::5] for i in range(5))
DOMINANT_P = 0.65          # pretraining mass of the dominant route
MIN_PATHS, MAX_PATHS = 5, 14
DEMO_ONLY_CUE = "path :"      # stands for the question in demo-only (reference-only) contexts
ASSETS = Path(__file__).parent / "assets" / "graph_paths"

Adjacency = dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Graph:
    """A layered DAG: layers[0] == [source], layers[-1] == [target]; layers[2] holds the hubs."""

    layers: tuple[tuple[str, ...], ...]
    edges: Mapping[str, tuple[str, ...]]

    @property
    def source(self) -> str:
        return self.layers[0][0]

    @property
    def target(self) -> str:
        return self.layers[-1][0]

    @property
    def hubs(self) -> frozenset[str]:
        return frozenset(self.layers[2])

    def paths(self) -> list[tuple[str, ...]]:
        """Every valid source→target path, in a deterministic order."""
        out: list[tuple[str, ...]] = []

        def walk(path: tuple[str, ...]) -> None:
            if path[-1] == self.target:
                out.append(path)
                return
            for nxt in sorted(self.edges.get(path[-1], ()), key=RANK.__getitem__):
                walk((*path, nxt))

        walk((self.source,))
        return out

    def dominant(self) -> tuple[str, ...] | None:
        """The greedy route: always the reachable neighbour earliest in the label pool."""
        reach = {p for path in self.paths() for p in path}
        node, route = self.source, [self.source]
        while node != self.target:
            options = [n for n in self.edges.get(node, ()) if n in reach]
            if not options:
                return None
            node = min(options, key=RANK.__getitem__)
            route.append(node)
        return tuple(route)

    def without(self, path: Sequence[str]) -> Graph:
        """This graph with every edge of `path` removed."""
        cut = set(zip(path, path[1:], strict=False))
        edges = {a: tuple(b for b in bs if (a, b) not in cut) for a, bs in self.edges.items()}
        return Graph(self.layers, {a: bs for a, bs in edges.items() if bs})

    def text(self, rng: random.Random) -> str:
        """'a b , c d , ...': one pair per edge, in shuffled order (position carries no hint).

        A pair keeps each neighbour right after its node, so following an edge is one
        induction-style look-up for the model (adjacency lists were much slower to learn)."""
        pairs = [f"{a} {b}" for a, bs in self.edges.items() for b in bs]
        rng.shuffle(pairs)
        return " , ".join(pairs)


def random_graph(rng: random.Random) -> Graph:
    """One layered graph with MIN_PATHS..MAX_PATHS valid paths whose dominant route can be cut."""
    while True:
        n1, nh, n3 = rng.randint(3, 4), rng.randint(2, 3), rng.randint(3, 4)
        source, target = rng.choice(GROUPS[0]), rng.choice(GROUPS[4])
        l1, hubs, l3 = rng.sample(GROUPS[1], n1), rng.sample(GROUPS[2], nh), rng.sample(GROUPS[3], n3)
        edges: Adjacency = {source: tuple(l1)}
        for node in l1:
            edges[node] = tuple(rng.sample(hubs, rng.randint(1, 2)))
        for hub in hubs:
            edges[hub] = tuple(rng.sample(l3, rng.randint(2, 3)))
        for node in rng.sample(l3, rng.randint(2, min(3, n3 - 1))):  # at least one dead end
            edges[node] = (target,)
        graph = Graph(((source,), tuple(l1), tuple(hubs), tuple(l3), (target,)), edges)
        paths = graph.paths()
        dominant = graph.dominant()
        if not (MIN_PATHS <= len(paths) <= MAX_PATHS) or dominant is None:
            continue
        if len({p[2] for p in paths}) < 2 or not graph.without(dominant).paths():
            continue
        on_paths = {n for p in paths for n in p}
        if not any(b not in on_paths for a in on_paths for b in edges.get(a, ())):
            continue  # no dead end one step off a valid path
        return graph


def _question(graph: Graph) -> str:
    return f"from {graph.source} to {graph.target} :"


def _make(rng: random.Random, split: str) -> tuple[Graph, str, tuple[str, ...] | None]:
    """(graph, prompt, dominant route of the uncut graph) for `split`; the prompt's hash picks the
    split, so the three splits can never share a prompt."""
    while True:
        graph = random_graph(rng)
        dominant = graph.dominant()
        assert dominant is not None
        if split == "ood":
            graph = graph.without(dominant)
        prompt = f"graph {graph.text(rng)} ; {_question(graph)}"
        if in_split(prompt, split):
            return graph, prompt, dominant


def _problem(pid: str, graph: Graph, prompt: str, dominant: tuple[str, ...]) -> Problem:
    paths = graph.paths()
    live = graph.dominant()  # in ood graphs: the greedy route of what is left (a deterministic path)
    assert live is not None
    data = {"source": graph.source, "target": graph.target, "hubs": sorted(graph.hubs),
            "edges": {a: list(bs) for a, bs in graph.edges.items()},
            "paths": [" ".join(p) for p in paths], "dominant": " ".join(dominant),
            "dominant_valid": dominant in paths}
    return Problem(id=pid, prompt=prompt, reference=" ".join(live), data=data)


def biased_path(graph: Graph, rng: random.Random) -> tuple[str, ...]:
    """A draw from the pretraining distribution: the dominant route w.p. DOMINANT_P, else another."""
    paths = graph.paths()
    dominant = graph.dominant()
    others = [p for p in paths if p != dominant]
    if dominant is not None and (not others or rng.random() < DOMINANT_P):
        return dominant
    return rng.choice(others)


@register_task("graph_paths")
class GraphPaths(EmbeddedTask):
    """Path-finding in layered random graphs: one dominant route, several minority routes, OOD cuts."""

    name: ClassVar[str] = "graph_paths"
    max_new_tokens: ClassVar[int] = 8   # a path is 5 node tokens; EOS and a little slack
    demo_only_cue: ClassVar[str] = DEMO_ONLY_CUE
    assets: ClassVar[Path] = ASSETS

    def make_problem(self, problem_id: str, rng: random.Random, split: str) -> Problem:
        graph, prompt, dominant = _make(rng, split)
        return _problem(problem_id, graph, prompt, dominant)

    def verify(self, problem: Problem, completions: Sequence[str]) -> list[Verdict]:
        edges = problem.data["edges"]
        source, target, hubs = problem.data["source"], problem.data["target"], set(problem.data["hubs"])
        out = []
        for text in completions:
            path = text.split()
            ok = (len(path) >= 2 and path[0] == source and path[-1] == target
                  and all(b in edges.get(a, ()) for a, b in zip(path, path[1:], strict=False)))
            if not ok:
                out.append(Verdict(correct=False))
                continue
            via = [n for n in path if n in hubs]
            out.append(Verdict(correct=True, functional_class=" ".join(path),
                               semantic_class="via " + " ".join(via)))
        return out

    def pretraining_texts(self, rng: random.Random, count: int) -> list[str]:
        """'prompt TAB completion' texts from train-split graphs: plain, demo-conditioned, demo-only."""
        out = []
        for _ in range(count):
            graph, prompt, _ = _make(rng, "train")
            # every pretraining path is valid, so the corpus's attempts and its demos share one draw
            draw = lambda graph=graph: " ".join(biased_path(graph, rng))  # noqa: E731
            out.append(corpus_text(rng, prompt, DEMO_ONLY_CUE, draw, draw))
        return out
