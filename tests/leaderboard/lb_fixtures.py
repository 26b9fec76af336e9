"""Synthetic run directories for the leaderboard tests, in the real on-disk format.

`make_run` writes what `sdbench run` writes — config.json, provenance.json, cells/*.json through
RunStore, summary.json from sdbench.runs.aggregate.summarize — with per-problem counts drawn from a
seeded binomial per strategy, so tests need no model and take milliseconds per run.

    from lb_fixtures import make_run
    run_dir = make_run(tmp_path / "run", strategies=("base", "grpo"))
"""

from __future__ import annotations

import random
from pathlib import Path

from sdbench.runs.aggregate import summarize
from sdbench.runs.store import RunStore, atomic_write_json, cell_key

SKILL = {"base": 0.25, "single_sampled_demo": 0.45, "grpo": 0.55, "multi_demo": 0.5, "diversity_weighted": 0.4}


def make_run(root: Path, *, tasks: tuple[str, ...] = ("graph_paths",), strategies: tuple[str, ...] = tuple(SKILL),
             seeds: int = 2, problems: int = 6, n: int = 8, rng_seed: int = 0, config_hash: str = "c0ffee00") -> Path:
    rng = random.Random(rng_seed)
    store = RunStore(root)
    config = {"profile": "smoke", "tasks": list(tasks), "seeds": seeds,
              "strategies": [{"name": s, "params": {}} for s in strategies],
              "evaluation": {"problems": problems, "samples": n, "splits": ["test", "ood"]}}
    atomic_write_json(root / "config.json", {"config": config, "config_hash": config_hash})
    infos = [{"name": s, "label": s, "distribution": "sdbench", "version": "0.1.0", "params": {}} for s in strategies]
    atomic_write_json(root / "provenance.json", {
        "sdbench_version": "0.1.0", "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "config_hash": config_hash, "seeds": list(range(seeds)), "strategies": infos,
        "tasks": {t: {"data_sha256": f"{i:064x}"} for i, t in enumerate(tasks)},
        "libraries": {"torch": "2.13.0", "numpy": "2.4.6"},
        "hardware": {"cpu_count": 2, "machine": "x86_64", "python": "3.11.7"}, "time": "2026-11-28T00:00:00Z"})
    for task in tasks:
        for info in infos:
            skill = SKILL.get(info["name"], 0.3) + rng.uniform(-0.05, 0.05)
            for seed in range(seeds):
                evaluation = {}
                for split, shift in (("test", 0.0), ("ood", -0.15)):
                    rows = []
                    for i in range(problems):
                        p = min(max(skill + shift + rng.uniform(-0.2, 0.2), 0.0), 1.0)
                        c = sum(rng.random() < p for _ in range(n))
                        distinct = rng.randint(min(c, 1), min(c, 3))
                        rows.append({"id": f"{split}-{i}", "n": n, "c": c, "distinct_correct": distinct,
                                     "semantic_classes": rng.randint(min(distinct, 1), distinct),
                                     "entropy": round(rng.uniform(0.5, 1.5), 6)})
                    evaluation[split] = {"n": n, "problems": rows}
                key = cell_key(task, info["label"], seed)
                store.write_record(key, {
                    "key": key, "task": task, "seed": seed, "strategy": info, "status": "ok",
                    "model": {"path": f"/models/{task}", "weights_sha256": "ab" * 32}, "config_hash": config_hash,
                    "train": {"steps": 3, "wall_s": 0.5, "log": [{"step": 0, "loss": 0.1}]},
                    "eval": evaluation, "wall_s": 1.0})
    summary = summarize(store.records())
    summary["config_hash"] = config_hash
    atomic_write_json(root / "summary.json", summary)
    return root
