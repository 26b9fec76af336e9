"""Aggregate cell records over seeds: means, 95% percentile-bootstrap CIs, paired deltas.

The bootstrap resamples seeds and problems (with replacement, independently) and recomputes the
mean of a metric; its 2.5th and 97.5th percentiles are the CI. Paired deltas compare a strategy with
the paper's baseline (`single_sampled_demo`) on the same problems: per problem, the seed-averaged
difference, bootstrapped over problems. A fixed bootstrap seed makes summaries reproducible.

    summary = summarize(list(RunStore(path).records()))
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from sdbench.config import PAPER_BASELINE
from sdbench.eval.evaluate import ProblemResult, problem_metrics
from sdbench.runs.store import SCHEMA_VERSION

BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 20261128


def _round(x: float) -> float:
    return round(float(x), 6)


def bootstrap_ci(values: np.ndarray, *, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED,
                 ) -> tuple[float, float]:
    """95% percentile CI of the mean of values [seeds, problems], resampling both axes."""
    rng = np.random.default_rng(seed)
    s, p = values.shape
    seed_idx = rng.integers(0, s, size=(samples, s))
    prob_idx = rng.integers(0, p, size=(samples, p))
    means = values[seed_idx[:, :, None], prob_idx[:, None, :]].mean(axis=(1, 2))
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _stat(values: np.ndarray) -> dict[str, float]:
    low, high = bootstrap_ci(values)
    return {"mean": _round(values.mean()), "ci_low": _round(low), "ci_high": _round(high)}


def _per_seed_metrics(records: Sequence[dict], split: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """metric -> [seeds, problems] for one (strategy, task), problems aligned by id."""
    by_seed = sorted(records, key=lambda r: r["seed"])
    ids = [p["id"] for p in by_seed[0]["eval"][split]["problems"]]
    stacked: dict[str, list[np.ndarray]] = defaultdict(list)
    for rec in by_seed:
        problems = [ProblemResult(**p) for p in rec["eval"][split]["problems"]]
        if [p.id for p in problems] != ids:
            raise ValueError(f"cell {rec['key']} evaluated different {split} problems than its other seeds")
        for name, vals in problem_metrics(problems).items():
            stacked[name].append(vals)
    return {k: np.stack(v) for k, v in stacked.items()}, ids


def _split_order(split: str) -> tuple[int, str]:
    """test before ood before anything else (records store splits with sorted keys)."""
    return ({"test": 0, "ood": 1}.get(split, 2), split)


def summarize(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """summary.json content: rows per (strategy, task, split), failed cells, paired deltas."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    failed = []
    order: list[tuple[str, str]] = []
    for rec in records:
        key = (rec["strategy"]["label"], rec["task"])
        if key not in order:
            order.append(key)
        if rec.get("status") != "ok":
            failed.append({"key": rec["key"], "strategy": key[0], "task": key[1], "seed": rec["seed"],
                           **rec.get("failure", {})})
            continue
        groups[key].append(rec)

    rows, per_problem = [], {}
    for strategy, task in order:
        recs = groups.get((strategy, task))
        if not recs:
            continue
        for split in sorted(recs[0]["eval"], key=_split_order):
            metrics, ids = _per_seed_metrics(recs, split)
            per_problem[(strategy, task, split)] = (metrics, ids)
            rows.append({
                "strategy": strategy, "task": task, "split": split, "n_seeds": len(recs),
                "seeds": sorted(r["seed"] for r in recs), "n_problems": len(ids),
                "samples_per_problem": recs[0]["eval"][split]["n"],
                "metrics": {name: _stat(vals) for name, vals in metrics.items()},
            })
    return {"schema_version": SCHEMA_VERSION, "rows": rows, "failed": failed,
            "deltas": _paired_deltas(per_problem)}


def _paired_deltas(per_problem: dict[tuple[str, str, str], tuple[dict[str, np.ndarray], list[str]]]) -> list[dict]:
    deltas = []
    for (strategy, task, split), (metrics, ids) in per_problem.items():
        base = per_problem.get((PAPER_BASELINE, task, split))
        if strategy == PAPER_BASELINE or base is None or base[1] != ids:
            continue
        out = {}
        for name, vals in metrics.items():
            diff = vals.mean(0) - base[0][name].mean(0)
            out[name] = _stat(diff[None, :])
        deltas.append({"strategy": strategy, "baseline": PAPER_BASELINE, "task": task, "split": split,
                       "metrics": out})
    return deltas
