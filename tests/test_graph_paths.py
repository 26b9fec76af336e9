"""Tests of the `graph_paths` task: generator, splits, OOD cut, grading, classes, prompts.

Run: pytest tests/test_graph_paths.py   (fast: no model involved)
"""

from __future__ import annotations

import math
import random

import pytest
from helpers import hand_graph

from sdbench.tasks._embedded import COMPLETION_SEP, COPY_P
from sdbench.tasks.graph_paths import (
    ATTEMPT_VALID_P,
    GREEDY_P,
    LABELS,
    GraphPaths,
    error_kind,
    first_invalid,
    informed_walk,
    random_graph,
    valid_walk,
    walk,
    walk_law,
    walk_probability,
)


@pytest.fixture(scope="module")
def task() -> GraphPaths:
    return GraphPaths()


# The Task contract (determinism, disjoint splits, references grade correct, a clean corpus, unknown splits) is
# checked for every built-in in tests/test_task.py; this file tests what is particular to graph_paths.
def test_settings(task: GraphPaths) -> None:
    assert (task.splits, task.max_new_tokens, task.version) == (("train", "val", "test", "ood"), 8, "3")
    assert len({p.prompt for p in task.problems("train", 300)}) > 290  # duplicates within a split are rare


def test_graphs_have_several_paths_and_dead_ends(task: GraphPaths) -> None:
    for problem in task.problems("test", 50):
        paths = problem.data["paths"]
        assert len(paths) >= 5 and len(set(paths)) == len(paths)
        edges = problem.data["edges"]
        nodes_on_paths = {n for p in paths for n in p.split()}
        assert any(b not in nodes_on_paths for a in nodes_on_paths for b in edges.get(a, ())), "a dead end"


def test_reference_is_the_dominant_route_and_verifies(task: GraphPaths) -> None:
    for split in task.splits:
        for problem in task.problems(split, 40):
            assert task.verify(problem, [problem.reference])[0].correct
            if split != "ood":
                assert problem.reference == problem.data["dominant"]


def test_ood_cut_removes_the_dominant_route(task: GraphPaths) -> None:
    for problem in task.problems("ood", 60):
        dominant = problem.data["dominant"].split()
        edges = problem.data["edges"]
        assert not problem.data["dominant_valid"]
        assert not task.verify(problem, [problem.data["dominant"]])[0].correct
        for a, b in zip(dominant, dominant[1:], strict=False):
            assert b not in edges.get(a, ())  # every edge of the route is gone
        assert problem.data["paths"] and all(v.correct for v in task.verify(problem, problem.data["paths"]))


def test_dominant_rule_prefers_earliest_label() -> None:
    from sdbench.tasks.graph_paths import RANK

    graph = random_graph(random.Random(7))
    route = graph.dominant()
    assert route is not None and route == graph.paths()[0]
    reach = {n for p in graph.paths() for n in p}
    for node, nxt in zip(route, route[1:], strict=False):
        options = [n for n in graph.edges[node] if n in reach]
        assert RANK[nxt] == min(RANK[n] for n in options)


def test_grading(task: GraphPaths) -> None:
    problem = task.problems("test", 1, seed=11)[0]
    valid = problem.data["paths"][0]
    nodes = valid.split()
    edges = problem.data["edges"]
    on_paths = {n for p in problem.data["paths"] for n in p.split()}
    stem, dead = next((nodes[:i + 1], b) for i, a in enumerate(nodes) for b in edges.get(a, ())
                      if b not in on_paths)
    bad = [
        " ".join(nodes[1:]),                         # does not start at the source
        " ".join(nodes[:-1]),                        # does not reach the target
        " ".join([nodes[0], nodes[-1]]),             # skips: no such edge
        " ".join([*nodes[:-1], nodes[-1], nodes[-1]]),  # runs past the target
        " ".join(reversed(nodes)),
        " ".join([*stem, dead]),                   # walks into a dead end
        "", "graph ,", "<unk> ka", valid + " ;",
    ]
    verdicts = task.verify(problem, [valid, "  " + valid.replace(" ", "  ") + " ", *bad])
    assert verdicts[0].correct and verdicts[1].correct  # extra whitespace is not an error
    assert verdicts[0].functional_class == verdicts[1].functional_class == valid
    assert not any(v.correct for v in verdicts[2:])
    assert all(v.functional_class is None for v in verdicts[2:])


def test_semantic_classes_are_coarser(task: GraphPaths) -> None:
    coarser = 0
    for problem in task.problems("test", 40):
        verdicts = task.verify(problem, problem.data["paths"])
        functional = {v.functional_class for v in verdicts}
        semantic = {v.semantic_class for v in verdicts}
        assert len(functional) == len(verdicts) and 2 <= len(semantic) <= len(functional)
        # the semantic class is a function of the functional class
        assert len({(v.functional_class, v.semantic_class) for v in verdicts}) == len(functional)
        coarser += len(semantic) < len(functional)
    assert coarser == 40  # every graph has two paths through one hub


def test_teacher_and_demo_only_prompts(task: GraphPaths) -> None:
    problem = task.problems("test", 1)[0]
    demos = problem.data["paths"][:2]
    teacher = task.teacher_prompt(problem, demos)
    assert teacher.endswith(problem.prompt)  # a completion continues it as it continues the prompt
    assert all(d in teacher.removesuffix(problem.prompt) for d in demos)
    assert teacher.index(demos[0]) < teacher.index(demos[1])
    only = task.demo_only_prompt(problem, demos)
    assert all(d in only for d in demos) and "from" not in only and "graph" not in only
    assert task.teacher_prompt(problem, []) == problem.prompt
    for text in (teacher, only, problem.prompt):
        assert text == " ".join(text.split())  # word-level: single spaces, no stray whitespace


def test_pretraining_corpus_mixture(task: GraphPaths) -> None:
    texts = task.pretraining_texts(random.Random(0), 3000)
    assert all(text.count(COMPLETION_SEP) == 1 for text in texts)
    with_demos = [t for t in texts if t.startswith("demo ")]
    demo_only = [t for t in with_demos if "graph" not in t]
    assert 0.45 < len(with_demos) / len(texts) < 0.55 and 0.07 < len(demo_only) / len(texts) < 0.13
    copies = sum(t.split(COMPLETION_SEP)[1] in t.split(COMPLETION_SEP)[0] for t in with_demos)
    # a non-copying solution is another valid walk than the demos, so copies are exactly the copy rule's:
    # ~1500 demo texts, binomial sd 0.013, 0.04 is 3 sd
    assert abs(copies / len(with_demos) - COPY_P) < 0.04
    plain = [t.split(COMPLETION_SEP) for t in texts if not t.startswith("demo ")]
    invalid = 0  # graded from the prompt's own edge words
    for prompt, attempt in plain:
        edges = {w.split(">")[0] + " " + w.split(">")[1] for w in prompt.split(" ; ")[0].split()[1:]}
        nodes = attempt.split()
        assert all(f"{a} {b}" in edges for a, b in zip(nodes, nodes[1:-1], strict=False))  # walks follow edges
        invalid += f"{nodes[-2]} {nodes[-1]}" not in edges
    # an attempt meets a dead end w.p. 1 - ATTEMPT_VALID_P; ~1500 plain texts: binomial sd 0.013, 3 sd = 0.04
    assert abs(invalid / len(plain) - (1 - ATTEMPT_VALID_P)) < 0.04


def test_walk_law_and_attempts() -> None:
    rng = random.Random(0)
    graph = random_graph(rng)
    valid = set(graph.paths())
    law = walk_law(graph)
    assert math.isclose(sum(law.values()), 1.0) and valid < set(law)      # some walks meet a dead end
    assert all(math.isclose(law[p], walk_probability(graph, p)) for p in valid)
    for node, options in graph.edges.items():  # a law at every node; the earliest label gets GREEDY_P more
        probs = {b: graph.step_probability(node, b) for b in options}
        assert math.isclose(sum(probs.values()), 1.0) and graph.step_probability(node, graph.source) == 0.0
        first = min(options, key=lambda b: LABELS.index(b))
        assert math.isclose(probs[first], GREEDY_P + (1 - GREEDY_P) / len(options))
    draws = [walk(graph, rng) for _ in range(4000)]
    for d in draws:  # every step but a last one out of a dead end is an edge of the graph
        assert d in law and d[0] == graph.source and d[-1] == graph.target and len(d) == 5
        assert all(b in graph.edges[a] for a, b in zip(d, d[1:-1], strict=False))
    share_valid = sum(d in valid for d in draws) / len(draws)
    assert abs(share_valid - ATTEMPT_VALID_P) < 0.03   # 4000 draws: binomial sd 0.008
    dominant = graph.dominant()
    uniform = 1 / len(valid)
    assert dominant is not None and draws.count(dominant) / sum(d in valid for d in draws) > 1.5 * uniform


def test_valid_walks_follow_the_walk_law_and_exclude() -> None:
    rng = random.Random(1)
    graph = random_graph(rng)
    paths = graph.paths()
    exact = {p: walk_probability(graph, p) for p in paths}
    total = sum(exact.values())
    draws = [valid_walk(graph, rng) for _ in range(4000)]
    for p in paths:  # conditioned on validity: each path's share is its walk probability, renormalized
        assert abs(draws.count(p) / len(draws) - exact[p] / total) < 0.03
    excluded = paths[:3]
    assert not {valid_walk(graph, rng, exclude=excluded) for _ in range(300)} & set(excluded)


def test_informed_walks_are_valid_new_and_lean_on_the_demos() -> None:
    rng = random.Random(2)
    leaning = plain = 0
    for _ in range(40):
        graph = random_graph(rng)
        demos = [valid_walk(graph, rng)]
        inner = set(demos[0][1:-1])
        for _ in range(50):
            informed = informed_walk(graph, rng, demos)
            assert informed in graph.paths() and informed not in demos
            leaning += len(inner & set(informed[1:-1]))
            plain += len(inner & set(valid_walk(graph, rng, exclude=demos)[1:-1]))
    # DEMO_AFFINITY = 4 per shared layer: informed answers reuse the demo's nodes clearly more often
    assert leaning > 1.2 * plain


# ---------------------------------------------------------------- per-token validity (the gate's hook)
GRAPH = hand_graph()    # s -> {a, b}; a -> {h, g}; b -> {h}; h -> {x, y, z}; g -> {x}; x, y -> t; z a dead end


def test_first_invalid_word() -> None:
    def first(text: str, finished: bool = True) -> int | None:
        return first_invalid(GRAPH, text.split(), finished)

    assert first("s a h x t") is None                 # a valid path
    assert first("s b g x t") == 2                    # b -> g is no edge
    assert first("s a h z t") == 3                    # the dead end itself, not the target after it
    assert first("s a a h x") == 2                    # a repeated node
    assert first("s a h") == 3                        # the end (EOS) before the target
    assert first("s a h", finished=False) is None     # cut off by the budget: no error yet
    assert first("s a h x t t", finished=False) == 5  # past the target
    assert first("q a h x t") == 0


@pytest.mark.parametrize(("rollout", "finished", "kind"), [
    ("s b g x t", True, "non_edge_live"),       # b -> g is no edge; g lies on s a g x t
    ("s b z t", True, "non_edge_dead"),         # b -> z is no edge; z lies on no valid path
    ("s a h z t", True, "dead_end"),            # h -> z is an edge, but z cannot reach t
    ("s a a h x", True, "repeat"),
    ("s a h", True, "eos"),
    ("s a h x t t", False, "past_target"),
    ("q a h x t", True, "wrong_source"),
    ("", True, "wrong_source"),                 # finished at once: the end is the first word
])
def test_first_error_kind(rollout: str, finished: bool, kind: str) -> None:
    words = rollout.split()
    t = first_invalid(GRAPH, words, finished)
    assert t is not None and error_kind(GRAPH, words, finished, t) == kind
