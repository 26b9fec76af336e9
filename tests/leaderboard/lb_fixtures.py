"""Synthetic schema-2 runs for the leaderboard tests, in the real on-disk format.

`make_records` draws cell records (sdbench.results.record.CellRecord: a val trajectory from step 0 with
kl_from_base, test / ood at the final and best-val checkpoints, training settings, timing) from a
seeded binomial per strategy, so tests need no model and take milliseconds. `make_run` writes what
`sdbench run` writes — config.json, provenance.json, cells/*.json through RunStore, summary.json from
sdbench.runs.aggregate.summarize. `make_results` is a results document whose summary is a synthetic
Summary (tests/test_report_html.py), for tests of the site's rendering, which never re-aggregates.

    from lb_fixtures import make_records, make_results, make_run
    run_dir = make_run(tmp_path / "run", strategies=("base", "grpo"))
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from sdbench.results.record import CellRecord, EvalPoint, ProblemCounts, SplitEval

SKILL = {"base": 0.25, "single_sampled_demo": 0.45, "grpo": 0.55, "multi_demo": 0.5, "diversity_weighted": 0.4,
         "single_sampled_demo[teacher=live]": 0.35}
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TRAINING = {"steps": 4, "prompts_per_step": 2, "rollouts_per_prompt": 4, "lr": 3e-4, "teacher": "ema", "ema_tau": 0.05,
            "divergence": "reverse_kl"}


def _problems(rng: random.Random, prefix: str, p: float, problems: int, n: int, kl: float | None,
              ) -> list[ProblemCounts]:
    rows = []
    for i in range(problems):
        q = min(max(p + rng.uniform(-0.2, 0.2), 0.0), 1.0)
        c = sum(rng.random() < q for _ in range(n))
        distinct = rng.randint(min(c, 1), min(c, 3))
        rows.append(ProblemCounts(id=f"{prefix}-{i}", n=n, c=c, distinct_correct=distinct,
                                  semantic_classes=rng.randint(min(distinct, 1), distinct),
                                  entropy=round(rng.uniform(0.5, 1.5), 6),
                                  kl_from_base=None if kl is None else round(max(0.0, kl + rng.uniform(0, 0.01)), 6)))
    return rows


def _info(label: str) -> dict[str, Any]:
    name, _, override = label.partition("[")
    training = dict(item.split("=") for item in override.rstrip("]").split(",")) if override else {}
    return {"name": name, "label": label, "distribution": "sdbench", "version": "0.1.0", "params": {},
            "training": training}


def make_records(*, tasks: tuple[str, ...] = ("graph_paths",), strategies: tuple[str, ...] = tuple(SKILL),
                 seeds: int = 2, problems: int = 6, n: int = 8, rng_seed: int = 0, config_hash: str = "c0ffee00",
                 ) -> list[CellRecord]:
    from sdbench.runs.store import cell_key

    rng = random.Random(rng_seed)
    records = []
    for task in tasks:
        for label in strategies:
            info = _info(label)
            trains = info["name"] != "base"
            skill = SKILL.get(label, 0.3) + rng.uniform(-0.05, 0.05)
            for seed in range(seeds):
                steps = TRAINING["steps"] if trains else 0
                trajectory = [EvalPoint(step=step, n=n, problems=_problems(
                    rng, "val", skill * (0.8 + 0.1 * step), problems, n, 0.0 if step == 0 else 0.03 * step))
                    for step in (range(0, steps + 1, 2) if trains else (0,))]
                best = max(trajectory, key=lambda pt: (pt.pass1, -pt.step)).step
                evaluation = {checkpoint: {split: SplitEval(n=n, problems=_problems(
                    rng, split, skill - (0.15 if split == "ood" else 0.0) - (0.05 if checkpoint == "final" else 0.0),
                    problems, n, None)) for split in ("test", "ood")} for checkpoint in ("best_val", "final")}
                if not trains:   # base: both checkpoints are the untrained model
                    evaluation["final"] = evaluation["best_val"]
                training = {**TRAINING, **info["training"]}
                records.append(CellRecord(
                    key=cell_key(task, label, seed), task=task, seed=seed, status="ok", strategy=info,
                    config_hash=config_hash, model={"path": f"/models/{task}", "weights_sha256": "ab" * 32},
                    training=training, wall_s=1.0,
                    train={"steps": steps, "wall_s": 0.5, "log": [{"step": 0, "loss": 0.1}]} if trains else None,
                    trajectory=trajectory, best_val_step=best, eval=evaluation,
                    timing={"setup_s": 0.1, "sample_s": 0.3, "eval_s": 0.2}))
    return records


def _provenance(tasks: tuple[str, ...], strategies: tuple[str, ...], seeds: int, config_hash: str) -> dict[str, Any]:
    return {"sdbench_version": "0.1.0", "git_commit": COMMIT, "config_hash": config_hash, "seeds": list(range(seeds)),
            "strategies": [_info(s) for s in strategies],
            "tasks": {t: {"data_sha256": f"{i:064x}",
                          "gate": {"passed": False, "failed": ["delta_auc"], "stale": False}}
                      for i, t in enumerate(tasks)},
            "libraries": {"torch": "2.13.0", "numpy": "2.4.6"},
            "hardware": {"cpu_count": 2, "machine": "x86_64", "python": "3.11.7"}, "time": "2026-11-28T00:00:00Z"}


def _config(tasks: tuple[str, ...], strategies: tuple[str, ...], seeds: int, problems: int, n: int) -> dict[str, Any]:
    return {"profile": "smoke", "tasks": list(tasks), "seeds": seeds,
            "strategies": [{"name": s, "params": {}} for s in strategies],
            "evaluation": {"problems": problems, "samples": n, "splits": ["test", "ood"]}}


def make_run(root: Path, *, tasks: tuple[str, ...] = ("graph_paths",), strategies: tuple[str, ...] = tuple(SKILL),
             seeds: int = 2, problems: int = 6, n: int = 8, rng_seed: int = 0, config_hash: str = "c0ffee00") -> Path:
    from sdbench.runs.aggregate import summarize
    from sdbench.runs.store import RunStore, atomic_write_json

    records = make_records(tasks=tasks, strategies=strategies, seeds=seeds, problems=problems, n=n,
                           rng_seed=rng_seed, config_hash=config_hash)
    store = RunStore(root)
    atomic_write_json(root / "config.json", {"config": _config(tasks, strategies, seeds, problems, n),
                                             "config_hash": config_hash})
    atomic_write_json(root / "provenance.json", _provenance(tasks, strategies, seeds, config_hash))
    for rec in records:
        store.write_record(rec.key, rec.model_dump(mode="json"))
    summary = summarize(records).model_copy(update={"config_hash": config_hash})
    atomic_write_json(root / "summary.json", summary.model_dump(mode="json"))
    return root


def make_results(name: str, *, tasks: tuple[str, ...] = ("graph_paths",), strategies: tuple[str, ...] = tuple(SKILL),
                 seeds: int = 2, rng_seed: int = 0, config_hash: str = "c0ffee00") -> dict[str, Any]:
    """A schema-2 results document (as `submit` files it) with a synthetic summary over the same cells."""
    from test_report_html import synthetic_summary

    records = make_records(tasks=tasks, strategies=strategies, seeds=seeds, rng_seed=rng_seed,
                           config_hash=config_hash)
    prov = _provenance(tasks, strategies, seeds, config_hash)
    from sdbench.runs.aggregate import summarize

    # synthetic rows, trajectories and frontier; the paired comparisons recomputed from the cells
    real = summarize(records)
    summary = synthetic_summary(tasks, strategies, seed=rng_seed, failed=False).model_copy(
        update={"deltas": real.deltas, "matched_deltas": real.matched_deltas, "iso_accuracy": real.iso_accuracy})
    return {"schema_version": 2, "kind": "sdbench.leaderboard.results", "name": name,
            "config": _config(tasks, strategies, seeds, 6, 8),
            "provenance": {**{k: v for k, v in prov.items() if k != "time"}, "run_time": prov["time"],
                           "plugins": [{"distribution": "sdbench", "version": "0.1.0"}],
                           "models": {t: {"path": f"/models/{t}", "weights_sha256": "ab" * 32} for t in tasks},
                           "submitted": "2026-11-29T00:00:00Z"},
            "summary": summary.model_copy(update={"config_hash": config_hash}).model_dump(mode="json"),
            "cells": [{**r.model_dump(mode="json"), "train": r.train and {**r.train.model_dump(), "log": []}}
                      for r in records]}
