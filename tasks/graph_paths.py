"""`graph_paths`: find a source→target path in a small layered random graph (the embedded testbed).

    from sdbench.task import load_task
    task = load_task("graph_paths")
    problem = task.problems("test", 4)[0]
    problem.prompt      # "graph go>no fe>su ... ve>mo me>no ; from ve to no :"
    problem.reference   # "ve mo pi me no"
    task.verify(problem, ["ve mo pi me no", "ve no"])
    task.teacher_prompt(problem, demos)      # "demo ve mo pi me no | " * k + problem.prompt
    task.demo_only_prompt(problem, demos)    # "demo ve mo pi me no | " * k + "path :"

Each graph is a source, three layers (the middle one holds the "hubs") and a target. Node names come
from a fixed pool of 40 labels; each layer draws from its own group of 8 (see GROUPS). The prompt
lists the edges as one word per edge, "a>b", in shuffled order; a completion is the path, node names
separated by single spaces (5 words), then EOS. Several source→target paths are valid (≈9 on
average); others run into dead ends.

The pretraining corpus (`pretraining_texts`) writes *walks*: from the source, each step takes the
neighbour whose label comes first in the pool with probability GREEDY_P, else a uniform neighbour;
a walk that reaches a dead end writes the target anyway (an invalid path). An attempt is a valid walk
with probability ATTEMPT_VALID_P, else one that met a dead end; demos are valid walks; a
demo-conditioned text that does not copy a demo writes another valid path, leaning on the demos'
nodes (`informed_walk`). So the corpus's errors are reachability errors (dead ends), never non-edges,
and its correct answers have one dominant mode (the greedy walk) and several minority modes.
The `ood` split cuts every edge of the dominant route (the greedy route among nodes that reach the
target), so only minority routes remain (≈3). Splits are disjoint by construction:
the hash of a prompt decides which split may use it.

Why one word per edge (version 3; version 2 wrote "a b , c d"): following an edge is then one
attention look-up (the current node matches the edge word's first half), where a pair needed an
induction circuit that the small model did not learn in its budget. Version 2's model guessed a
plausible node of the right layer instead of reading the edges, so its first errors were the demo's
token at the same position in 23% of cases, and its teacher beat the student only by copying
(`sdbench tasks check graph_paths`; README "The embedded testbed").

Functional class = the path; semantic class = "via HUB" (several paths share a hub). A path is valid or not word
by word, so the task carries the gate's per-token validity hook (`first_invalid`, `error_kind`:
`sdbench.gate.TokenValidity`), which measures positional copying and where the student's first errors fall.
Reference = the dominant route (in `ood`: the greedy route of the cut graph). The shipped base model
(tasks/assets/graph_paths) is `sdbench pretrain graph_paths --seed 0 --out tasks/assets/graph_paths`.
Run the tests with `pytest tests/test_graph_paths.py tests/test_pretrain.py`.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

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
GREEDY_P = 0.5            # a corpus walk's chance to take the earliest-label neighbour at each step
ATTEMPT_VALID_P = 0.45    # a corpus attempt is a valid walk w.p. this, else a walk into a dead end
EDGE_SEP = ">"            # an edge is one word, "a>b"
DEMO_AFFINITY = 4.0       # a non-copying solution after demos: weight x this per layer whose node a demo shares
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
        return list(self._paths)

    @functools.cached_property
    def _paths(self) -> tuple[tuple[str, ...], ...]:
        # computed once per graph: making a problem asks for the paths half a dozen times
        out: list[tuple[str, ...]] = []

        def walk(path: tuple[str, ...]) -> None:
            if path[-1] == self.target:
                out.append(path)
                return
            for nxt in sorted(self.edges.get(path[-1], ()), key=RANK.__getitem__):
                walk((*path, nxt))

        walk((self.source,))
        return tuple(out)

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
        """'a>b c>d ...': one word per edge, in shuffled order (position carries no hint)."""
        words = [f"{a}{EDGE_SEP}{b}" for a, bs in self.edges.items() for b in bs]
        rng.shuffle(words)
        return " ".join(words)

    def step_probability(self, node: str, nxt: str) -> float:
        """The chance that a corpus walk at `node` moves to `nxt` (0 when there is no such edge)."""
        options = self.edges.get(node, ())
        if nxt not in options:
            return 0.0
        greedy = min(options, key=RANK.__getitem__)
        return GREEDY_P * (nxt == greedy) + (1 - GREEDY_P) / len(options)


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


def walk_law(graph: Graph) -> dict[tuple[str, ...], float]:
    """Every walk and its probability. A walk follows edges (the earliest label w.p. GREEDY_P, else a
    uniform neighbour); from a dead end it writes the target anyway, so it is invalid exactly when it met
    one. The probabilities sum to 1."""
    out: dict[tuple[str, ...], float] = {}

    def extend(route: tuple[str, ...], p: float) -> None:
        options = graph.edges.get(route[-1], ())
        if route[-1] == graph.target or not options:
            out[route if route[-1] == graph.target else (*route, graph.target)] = p
            return
        for nxt in options:
            extend((*route, nxt), p * graph.step_probability(route[-1], nxt))

    extend((graph.source,), 1.0)
    return out


def walk(graph: Graph, rng: random.Random) -> tuple[str, ...]:
    """A corpus attempt: a valid walk w.p. ATTEMPT_VALID_P, else one that met a dead end (every step but
    that last one is an edge). Someone who follows edges but is right only that often: the corpus's
    errors are reachability errors, never non-edges (which would teach guessing a node of the layer)."""
    law = walk_law(graph)
    valid = set(graph.paths())
    want_valid = rng.random() < ATTEMPT_VALID_P
    walks = [w for w in law if (w in valid) == want_valid]  # never empty: random_graph keeps a dead end
    return rng.choices(walks, [law[w] for w in walks])[0]


def walk_probability(graph: Graph, path: Sequence[str]) -> float:
    """The chance that `walk` writes `path`."""
    return math.prod(graph.step_probability(a, b) for a, b in zip(path, path[1:], strict=False))


def valid_walk(graph: Graph, rng: random.Random, exclude: Sequence[tuple[str, ...]] = ()) -> tuple[str, ...]:
    """A walk conditioned on being valid (and not in `exclude`): a valid path drawn with the probability
    `walk` gives it (exact, not by rejection)."""
    paths = [p for p in graph.paths() if p not in set(exclude)]
    return rng.choices(paths, [walk_probability(graph, p) for p in paths])[0]


def informed_walk(graph: Graph, rng: random.Random, demos: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    """What someone who has seen `demos` writes when not copying one: another valid path, drawn with its walk
    probability times DEMO_AFFINITY per inner layer whose node some demo also visits. A demo's nodes are
    known to reach the target, so reusing them (with a different neighbour where the edges allow) is how a
    demonstration informs a fresh answer without being copied token by token."""
    paths = [p for p in graph.paths() if p not in set(demos)]
    seen = [{d[i] for d in demos if len(d) > i} for i in range(len(graph.layers))]
    shared = [sum(p[i] in seen[i] for i in range(1, len(p) - 1)) for p in paths]
    return rng.choices(paths, [walk_probability(graph, p) * DEMO_AFFINITY ** k for p, k in zip(paths, shared,
                                                                                                 strict=True)])[0]


# ---------------------------------------------------------------- per-token validity (the gate's hook)
# `sdbench tasks check` asks a task with these two methods (sdbench.gate.TokenValidity) where each rollout
# first leaves every valid answer: the positional-copying check and the `first_errors` breakdown.
def first_invalid(problem: Problem, words: Sequence[str], finished: bool) -> int | None:
    """Index of the first word after which no valid path can follow (len(words): the end, when the rollout
    finished before completing a path); None if there is none.

    A word is invalid when the prefix it ends is no prefix of a valid path: not an edge from the previous node,
    a repeated node, or a node from which the target cannot be reached. Flagging the dead end itself (not the
    target word after it) matters: every path ends with the target, so the later word would equal the demo's by
    construction and read as positional copying."""
    paths = [tuple(p.split()) for p in problem.data["paths"]]
    prefixes = {p[:i] for p in paths for i in range(1, len(p) + 1)}
    for t in range(len(words)):
        if tuple(words[:t + 1]) not in prefixes:
            return t
    return None if not finished or tuple(words) in set(paths) else len(words)


def error_kind(problem: Problem, words: Sequence[str], finished: bool, t: int) -> str:
    """What the first invalid word `words[t]` (t = len(words): the end) is: `non_edge_live` (no edge from the
    previous node, to a node on some valid path: the error a positional copy can make, since the demo's nodes
    are all live), `non_edge_dead` (no edge, to a node on no valid path), `dead_end` (a real edge into a node
    from which the target cannot be reached), `repeat`, `wrong_source`, `eos` (ended before the target) or
    `past_target`."""
    edges = problem.data["edges"]
    live = {n for p in problem.data["paths"] for n in p.split()}
    if t == 0:
        return "wrong_source"
    if t == len(words):
        return "eos"
    word = words[t]
    if words[t - 1] == problem.data["target"]:
        return "past_target"
    if word in words[:t]:
        return "repeat"
    if word not in edges.get(words[t - 1], ()):
        return "non_edge_live" if word in live else "non_edge_dead"
    return "dead_end"


@register_task("graph_paths")
class GraphPaths(EmbeddedTask):
    """Path-finding in layered random graphs: one dominant route, several minority routes, OOD cuts."""

    name: ClassVar[str] = "graph_paths"
    version: ClassVar[str] = "3"        # 3: one word per edge and the walk corpus (2: "a b ," pairs)
    max_new_tokens: ClassVar[int] = 8   # a path is 5 node tokens; EOS and a little slack
    # The shipped model's recipe (3 x 64, 4 heads, batch 32, lr 4e-3 from DEFAULTS): 1000 steps learned the
    # edge words too little (non-edges in 0.6 of rollouts); 4000 pass the gate (README "The embedded testbed").
    pretrain_defaults: ClassVar[dict[str, Any]] = {"steps": 4000}
    demo_only_cue: ClassVar[str] = DEMO_ONLY_CUE
    assets: ClassVar[Path] = ASSETS

    first_invalid = staticmethod(first_invalid)     # the gate's per-token validity hook (see above)
    error_kind = staticmethod(error_kind)

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
        """'prompt TAB completion' texts from train-split graphs: plain, demo-conditioned, demo-only.

        Attempts are walks (1 - ATTEMPT_VALID_P of them run into a dead end), demos valid walks, a non-copying
        solution after demos `informed_walk`: another valid path than the demos (a graph has >= MIN_PATHS >
        MAX_DEMOS paths, so one is always left), leaning towards the demos' nodes."""
        out = []
        for _ in range(count):
            graph, prompt, _ = _make(rng, "train")
            out.append(corpus_text(
                rng, prompt, DEMO_ONLY_CUE,
                attempt=lambda graph=graph: " ".join(walk(graph, rng)),
                correct=lambda graph=graph: " ".join(valid_walk(graph, rng)),
                informed=lambda demos, graph=graph: " ".join(
                    informed_walk(graph, rng, [tuple(d.split()) for d in demos]))))
        return out
