"""Aggregate cell records over seeds: rows at both checkpoints, trajectories, the KL frontier, deltas.

    summary = summarize(RunStore(path).records())     # a sdbench.results.record.Summary

- rows: one per (strategy, task, split, checkpoint) — "final" (after the last step) and "best_val"
  (the step with the highest val pass@1, chosen per seed; `selected_step` is its mean over seeds).
- trajectories: val metrics at every evaluation point (step 0 is the base model).
- frontier: each seed's val trajectory linearly interpolated in kl_from_base at fixed KL budgets,
  over the seeds that reach the budget — strategies compared at the same distance from the base
  (the reward-vs-KL view of Gao et al., 2022, "Scaling laws for reward model overoptimization").
  The interpolation weight comes from the seed's mean KL; the same weight interpolates each val
  problem's values, so the CI resamples seeds and problems like every other number here.
- deltas: paired differences against the paper's baseline (`single_sampled_demo`) on the same problems.

- deltas: paired differences against the paper's baseline (`single_sampled_demo`), the untrained
  base and RL (`grpo`) on the same problems, at both checkpoints; matched-budget comparisons (matched KL,
  matched val pass@1) and the checkpoint-rule stability are in `sdbench.runs.compare`.

CIs: seed-aware 95% intervals (`sdbench.eval.intervals.seed_aware_interval`: training seeds resampled
within each arm, problems jointly across the arms of a paired comparison, each part with its Student t
quantile; `sdbench.runs.stats`); each Stat also carries the seed-level SD and the share of its variance
between seeds.
numpy / scipy only: this module and everything it imports load no torch (tests/test_aggregate.py checks
it in a subprocess).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from sdbench.config import PAPER_BASELINE
from sdbench.eval.metrics import problem_metrics
from sdbench.presentation.text import MAIN_SPLIT, OOD_SPLIT
from sdbench.results.record import CHECKPOINTS, CellRecord, Summary
from sdbench.runs.stats import KL_BUDGETS, paired_stat, reach, stat

BASE, RL_BASELINE = "base", "grpo"
DELTA_BASELINES = (PAPER_BASELINE, BASE, RL_BASELINE)   # paired deltas are taken against each present one
TRAJECTORY_METRICS = ("pass@1", "distinct_correct", "entropy", "kl_from_base")   # + pass@<val_samples>


def _stack(per_seed: Sequence[Sequence], what: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """metric -> [seeds, problems] from each seed's per-problem counts, problems aligned by id."""
    ids = [p.id for p in per_seed[0]]
    stacked: dict[str, list[np.ndarray]] = defaultdict(list)
    for problems in per_seed:
        if [p.id for p in problems] != ids:
            raise ValueError(f"{what}: seeds evaluated different problems")
        for name, vals in problem_metrics(problems).items():
            stacked[name].append(vals)
        stacked["kl_from_base"].append(np.array([p.kl_from_base or 0.0 for p in problems], dtype=np.float64))
    return {k: np.stack(v) for k, v in stacked.items()}, ids


def _split_order(split: str) -> tuple[int, str]:
    """test before ood before anything else."""
    return ({MAIN_SPLIT: 0, OOD_SPLIT: 1}.get(split, 2), split)


def summarize(records: Iterable[CellRecord]) -> Summary:
    """Summary (schema 2) of finished cells: rows, trajectories, frontier, failed cells, paired deltas."""
    groups: dict[tuple[str, str], list[CellRecord]] = defaultdict(list)
    failed, order = [], []
    timing: dict[str, float] = defaultdict(float)
    for rec in records:
        key = (rec.strategy.label, rec.task)
        if key not in order:
            order.append(key)
        for stage, seconds in rec.timing.items():
            timing[stage] += seconds
        if rec.status != "ok":
            failed.append({"key": rec.key, "strategy": key[0], "task": key[1], "seed": rec.seed, **(rec.failure or {})})
            continue
        groups[key].append(rec)

    rows, trajectories, frontier, per_problem, per_step = [], [], [], {}, {}
    for strategy, task in order:
        recs = sorted(groups.get((strategy, task), []), key=lambda r: r.seed)
        if not recs:
            continue
        seeds = [r.seed for r in recs]
        for checkpoint in CHECKPOINTS:
            if any(checkpoint not in r.eval for r in recs):
                continue
            selected = None
            if checkpoint == "best_val":
                selected = stat(np.array([[float(r.best_val_step or 0)] for r in recs]))
            for split in sorted(recs[0].eval[checkpoint], key=_split_order):
                evals = [r.eval[checkpoint][split] for r in recs]
                metrics, ids = _stack([e.problems for e in evals], f"{strategy} on {task} ({split})")
                del metrics["kl_from_base"]
                per_problem[(strategy, task, split, checkpoint)] = (metrics, ids)
                rows.append({"strategy": strategy, "task": task, "split": split, "checkpoint": checkpoint,
                             "n_seeds": len(recs), "seeds": seeds, "n_problems": len(ids),
                             "samples_per_problem": evals[0].n, "selected_step": selected,
                             "metrics": {name: stat(vals) for name, vals in metrics.items()}})
        if all(r.trajectory for r in recs):
            points = _trajectory_metrics(recs, f"{strategy} on {task} (val)")
            per_step[(strategy, task)] = points
            trajectories += [{"strategy": strategy, "task": task, "step": step, "n_seeds": len(recs),
                              "metrics": {name: stat(vals) for name, vals in metrics.items()}}
                             for step, metrics in points.items()]
            frontier += [{"strategy": strategy, "task": task, **entry} for entry in frontier_entries(points)]
    from sdbench.runs.compare import checkpoint_rules, matched_comparisons
    from sdbench.runs.mechanism_report import section  # issue 29: mode amplification, from the histograms

    iso, matched = matched_comparisons(per_step)
    mechanism = section([(s, t, sorted(groups.get((s, t), []), key=lambda r: r.seed)) for s, t in order])
    return Summary.model_validate({"rows": rows, "trajectories": trajectories, "frontier": frontier,
                                   "failed": failed, "deltas": _paired_deltas(per_problem),
                                   "iso_accuracy": iso, "matched_deltas": matched,
                                   "checkpoint_rules": checkpoint_rules([r for g in groups.values() for r in g]),
                                   "mechanism": mechanism,
                                   "timing": {k: round(v, 3) for k, v in timing.items()}})


def _trajectory_metrics(recs: Sequence[CellRecord], what: str) -> dict[int, dict[str, np.ndarray]]:
    """step -> metric -> [seeds, problems] at the evaluation points every seed has."""
    steps = sorted(set.intersection(*({p.step for p in r.trajectory} for r in recs)))
    out = {}
    for step in steps:
        points = [next(p for p in r.trajectory if p.step == step) for r in recs]
        metrics, _ = _stack([p.problems for p in points], what)
        kmax = f"pass@{points[0].n}"
        below = f"pass@{max(points[0].n // 4, 1)}"   # pass@k below n (k = n/4: 16 of 64 on test, 4 of 16 on val)
        out[step] = {name: metrics[name] for name in dict.fromkeys(("pass@1", below, kmax, *TRAJECTORY_METRICS[1:]))}
    return out


def frontier_entries(points: dict[int, dict[str, np.ndarray]], budgets: Sequence[float] = KL_BUDGETS,
                     ) -> list[dict]:
    """Per KL budget: pass@1 and distinct_correct interpolated at the budget over the seeds that reach it."""
    out = []
    for budget in budgets:
        seeds, values = reach(points, "kl_from_base", budget)
        metrics = {name: stat(values[name]) for name in ("pass@1", "distinct_correct")} if seeds else {}
        out.append({"kl_budget": budget, "n_seeds_reached": len(seeds), "metrics": metrics})
    return out


def _paired_deltas(per_problem: dict[tuple[str, str, str, str], tuple[dict[str, np.ndarray], list[str]]],
                   ) -> list[dict]:
    deltas = []
    for baseline in DELTA_BASELINES:
        for (strategy, task, split, checkpoint), (metrics, ids) in per_problem.items():
            base = per_problem.get((baseline, task, split, checkpoint))
            if strategy == baseline or base is None or base[1] != ids:
                continue
            out = {name: paired_stat([vals, base[0][name]], (1.0, -1.0)) for name, vals in metrics.items()}
            deltas.append({"strategy": strategy, "baseline": baseline, "task": task, "split": split,
                           "checkpoint": checkpoint, "metrics": out})
    return deltas
