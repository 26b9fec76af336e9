"""Build the leaderboard from the submitted results only: index.html, README.md and plots/*.svg.

    sdbench leaderboard build                        # leaderboard/results/*.json -> leaderboard/
    sdbench leaderboard build --results R --out SITE

The output is a pure function of the results files: entries in a fixed order, no build timestamp,
sorted JSON, deterministic SVG (see sdbench.presentation.plots) — building twice gives byte-identical
files. What a page holds is `sdbench.leaderboard.views` (per task: the generated "What it shows" from
sdbench.leaderboard.claims, the matched-budget comparisons, the best-val and final tables, the KL
frontier, the val trajectories, the pass@k curves and the pass@1-vs-diversity Pareto scatter); this
module reads the results, writes README.md and calls `sdbench.leaderboard.html` for index.html. No
results: a valid page saying so.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sdbench.errors import UserError
from sdbench.leaderboard.schema import Results
from sdbench.leaderboard.views import (
    PLOT_KINDS,
    PLOT_TEXT,
    TaskView,
    budget_titles,
    cell_text,
    column_title,
    provenance_short,
    task_views,
)
from sdbench.presentation.tables import leaderboard_columns
from sdbench.presentation.text import CHECKPOINT_TITLES, md_table
from sdbench.results.record import CHECKPOINTS

PLOTS = "plots"


def load_all(results_dir: Path) -> list[Results]:
    """Every results file, schema-checked (submit already recomputed their summaries), by name."""
    from sdbench.leaderboard.submit import _read_json, results_paths, results_stem, validate

    out = []
    for path in results_paths(results_dir):
        results = validate(_read_json(path), str(path), recompute=False)
        if results.name != results_stem(path):
            raise UserError(f"{path} holds results named {results.name!r}",
                            f"rename it to {results.name}{path.name[len(results_stem(path)):]}")
        out.append(results)
    return out


def markdown(views: list[TaskView], all_results: list[Results]) -> str:
    from sdbench.leaderboard.claims import what_it_shows  # sdbench.config: loaded only when a page is written

    lines = ["# sdbench leaderboard", "",
             f"{len(all_results)} submitted run(s). Every value is the mean over seeds and problems with its "
             "seed-aware 95% CI (seeds resampled within each arm, problems jointly); every number can be "
             "recomputed from the per-problem counts in "
             "`results/`. The interactive page is `index.html`. Test and ood are evaluated at two checkpoints "
             "of each seed: best-val (the step with the highest val pass@1; ties: the earliest) and final. Each "
             "task version is its own section (another base model or corpus: its numbers are not comparable "
             "with another version's), and so is each real pretrained model a run named (`--model`), after the "
             "embedded testbeds. The "
             "frontier compares strategies at the same distance moved from the base model: val pass@1 / "
             "distinct correct where each seed's trajectory reaches a KL budget (nats/token), over the seeds "
             "that reach it. \"any correct of n\" is pass@n at n samples (1 when any sample is correct).", ""]
    if all_results:
        lines += ["**What it shows.** " + what_it_shows(all_results), ""]
    if not views:
        lines.append("No results yet: `sdbench leaderboard submit RUN_DIR`.")
    by_name = {r.name: r for r in all_results}
    for view in views:
        lines += [f"## {view.title}"]
        for checkpoint in CHECKPOINTS:
            entries = view.tables[checkpoint]
            if not entries:
                continue
            columns = leaderboard_columns(checkpoint)
            header = ["run", "strategy", *(column_title(t, view) for t, _ in columns), "provenance"]
            rows = [[e.run, e.strategy + (" (Pareto)" if e.pareto else ""),
                     *(cell_text(e, key) for _, key in columns),
                     provenance_short(by_name[e.run], e.strategy, e.task)] for e in entries]
            lines += ["", f"### {CHECKPOINT_TITLES[checkpoint]}", "", *md_table(header, rows)]
        for title, head, rows in view.comparisons:
            lines += ["", f"### {title}", "", *md_table(head, rows)]
        if view.frontier:
            lines += ["", "### frontier: val pass@1 / distinct correct at matched KL from base", "",
                      *md_table(["run", "strategy", *budget_titles(view)],
                                [[f.run, f.strategy, *f.cells] for f in view.frontier])]
        lines += [""]
        for kind in PLOT_KINDS:
            lines += [f"![{PLOT_TEXT[kind]}: {view.title}]({PLOTS}/{kind}-{view.slug}.svg)", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _write(path: Path, text: str) -> None:
    from sdbench.runs.store import atomic_write_bytes

    atomic_write_bytes(path, text.encode())
    os.chmod(path, 0o644)   # a web page, not a secret: mkstemp's 0600 would hide it from a web server


def build_site(results_dir: Path, out_dir: Path) -> list[Path]:
    """Write index.html, README.md and plots/ under out_dir; returns the written paths."""
    from sdbench.leaderboard.html import page

    if not results_dir.is_dir():
        raise UserError(f"results directory {results_dir} does not exist",
                        "submit a run first: `sdbench leaderboard submit RUN_DIR`")
    all_results = load_all(results_dir)
    views = task_views(all_results)
    written = []
    wanted = set()
    for view in views:
        for kind in PLOT_KINDS:
            path = out_dir / PLOTS / f"{kind}-{view.slug}.svg"
            _write(path, view.svgs[kind])
            wanted.add(path.name)
            written.append(path)
    for stale in sorted((out_dir / PLOTS).glob("*.svg")) if (out_dir / PLOTS).is_dir() else []:
        if stale.name not in wanted and re.match(r"^(" + "|".join(PLOT_KINDS) + ")-", stale.name):
            stale.unlink()   # a task that left the leaderboard must not keep its old plots
    for name, text in (("index.html", page(views, all_results)), ("README.md", markdown(views, all_results))):
        _write(out_dir / name, text)
        written.append(out_dir / name)
    return written
