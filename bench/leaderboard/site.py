"""Build the leaderboard from the submitted results only: index.html, README.md and plots/*.svg.

    sdbench leaderboard build                        # leaderboard/results/*.json -> leaderboard/
    sdbench leaderboard build --results R --out SITE

The output is a pure function of the results files: entries in a fixed order, no build timestamp,
sorted JSON, deterministic SVG (see plots.py) — building twice gives byte-identical files.
One entry is a (submitted run, strategy, checkpoint) on one task; its numbers come from the summary
rows of the task's main split ("test") and, for the OOD columns, of the "ood" split. Per task the site
shows the generated "What it shows" (sdbench.leaderboard.claims), the matched-budget comparisons (final
step, matched KL, matched val pass@1), the best-val and final tables, the KL frontier, the val trajectories,
the pass@k curves and the pass@1-vs-diversity Pareto scatter (both at best-val); every row carries its
provenance (commit, config hash, teacher, lr, steps, base model hash). No results: a valid page saying so.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdbench.errors import UserError
from sdbench.leaderboard.schema import CellRecord, Results, Stat
from sdbench.runs.record import CHECKPOINTS, Checkpoint

MAIN_SPLIT = "test"
OOD_SPLIT = "ood"
PLOTS = "plots"
PLOT_KINDS = ("trajectories", "curves", "pareto", "mechanism")
CHECKPOINT_TITLES = {"best_val": "best-val checkpoint", "final": "final checkpoint"}
# (column title, metric key in the main split; "ood1" / "ood" read pass@1 / pass@k_max of the OOD split)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("pass@1", "pass@1"), ("pass@16", "pass@16"), ("any correct of k_max", "pass@kmax"),
    ("pass@auc", "pass@auc"), ("pass@gain", "pass@gain"),
    ("distinct_correct", "distinct_correct"), ("semantic_classes", "semantic_classes"),
    ("ood pass@1", "ood1"), ("ood any correct of k_max", "ood"),
    ("amplification slope", "slope"),   # issue 29: val mode amplification (sdbench.eval.mechanism)
)
NOT_MEASURED = "not measured"           # results without class histograms (schema 2)
STEP_COLUMN = ("selected step", "step")   # best_val tables only


def columns(checkpoint: Checkpoint) -> tuple[tuple[str, str], ...]:
    return COLUMNS + ((STEP_COLUMN,) if checkpoint == "best_val" else ())


@dataclass
class Entry:
    run: str
    strategy: str
    task: str
    checkpoint: Checkpoint
    kmax: int
    values: dict[str, Stat | None]                 # column metric key -> stat (None: not measured)
    curve: list[tuple[int, Stat]]
    provenance: list[tuple[str, str]]
    label: str = ""
    pareto: bool = False


@dataclass
class FrontierRow:
    run: str
    strategy: str
    cells: list[str]                               # one per budget: "pass@1 / distinct (k/n seeds)"


@dataclass
class TaskView:
    """One task at one task version: numbers of two versions (another base model or corpus) are never compared,
    so each gets its own tables, frontier, Pareto front and plots."""
    task: str
    slug: str
    version: str | None = None                     # the cells' task_version (None: the run did not record one)
    tables: dict[Checkpoint, list[Entry]] = field(default_factory=lambda: {c: [] for c in CHECKPOINTS})
    budgets: list[float] = field(default_factory=list)
    frontier: list[FrontierRow] = field(default_factory=list)
    svgs: dict[str, str] = field(default_factory=dict)   # plot kind -> SVG text
    comparisons: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)   # (title, head, rows)

    @property
    def entries(self) -> list[Entry]:
        return [e for c in CHECKPOINTS for e in self.tables[c]]

    @property
    def title(self) -> str:
        return f"{self.task} · version {self.version or 'not recorded'}"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "task"


def version_key(version: str | None) -> tuple[int, str]:
    """Order task versions ("2" < "3" < "10"); unknown (None) is the oldest."""
    if version is None:
        return (-1, "")
    return (int(version), "") if version.isdigit() else (0, version)


def task_version(results: Results, task: str) -> str | None:
    """The version of `task` a run measured, from its cells (one code version per run: one task version)."""
    versions = sorted({c.task_version for c in results.cells if c.task == task and c.task_version}, key=version_key)
    return "/".join(versions) or None


def _view(task: str, version: str | None) -> TaskView:
    return TaskView(task, slug(task if version is None else f"{task}-v{version}"), version)


def load_all(results_dir: Path) -> list[Results]:
    """Every results file, schema-checked (submit already recomputed their summaries), by name."""
    from sdbench.leaderboard.submit import _read_json, validate

    out = []
    for path in sorted(results_dir.glob("*.json")):
        results = validate(_read_json(path), str(path), recompute=False)
        if results.name != path.stem:
            raise UserError(f"{path} holds results named {results.name!r}", f"rename it to {results.name}.json")
        out.append(results)
    return out


def _kmax(metrics: dict[str, Stat]) -> int:
    return max((int(m[5:]) for m in metrics if m.startswith("pass@") and m[5:].isdigit()), default=1)


def _compact(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(", ", ": "))


def _joined(values: list[str]) -> str:
    return "; ".join(dict.fromkeys(values)) or "unknown"


def _training(cell: CellRecord) -> str:
    """teacher, lr and steps a cell trained with, from its record ('no training' for base)."""
    if cell.train is None or cell.train.steps == 0:
        return "no training"
    t = cell.training or {}
    teacher = str(t.get("teacher", "?")) + (f" (tau {t['ema_tau']:g})" if t.get("teacher") == "ema" and
                                            "ema_tau" in t else "")
    lr = f"{t['lr']:g}" if isinstance(t.get("lr"), int | float) else "?"
    return f"teacher {teacher}, lr {lr}, {cell.train.steps} steps"


def _provenance(results: Results, strategy: str, task: str) -> list[tuple[str, str]]:
    prov = results.provenance
    info = next((s for s in prov.strategies if s.label == strategy), None)
    cells = [c for c in results.cells if c.task == task and c.strategy.label == strategy]
    data = prov.tasks.get(task)
    models = [f"{c.model.path} (sha256 {c.model.weights_sha256 or 'n/a'})" for c in cells if c.model]
    lines = [
        ("run", results.name),
        ("sdbench", f"{prov.sdbench_version} (commit {prov.git_commit or 'unknown'})"),
        ("config", f"hash {_joined([c.config_hash for c in cells] or [prov.config_hash])}, "
                   f"profile {results.config.get('profile', '?')}, seeds {prov.seeds}"),
        ("strategy", f"{info.name} from {info.distribution} {info.version}, params {_compact(info.params)}"
         if info else strategy),
        ("training", _joined([_training(c) for c in cells])),
        ("base model", _joined(models)),
        ("task data", f"sha256 {data.data_sha256}" if data else "unknown"),
        ("testbed gate", _gate(data)),
        ("plugins", ", ".join(f"{p.distribution}=={p.version}" for p in prov.plugins) or "none"),
        ("hardware", _compact(prov.hardware)),
        ("libraries", ", ".join(f"{k} {v}" for k, v in sorted(prov.libraries.items()))),
    ]
    if prov.sandbox is not None:
        lines.append(("sandbox", _compact(prov.sandbox)))
    lines += [("run time", prov.run_time or "unknown"), ("submitted", prov.submitted)]
    return lines


def _gate(data: Any) -> str:
    """The task's testbed gate (`sdbench tasks check`) as the run recorded it."""
    gate = getattr(data, "gate", None) if data is not None else None
    if not isinstance(gate, dict):
        return "not recorded"
    verdict = "passed" if gate.get("passed") else "failed: " + ", ".join(gate.get("failed") or ["?"])
    return verdict + (" (stale: the weights changed since the gate ran)" if gate.get("stale") else "")


def provenance_short(results: Results, strategy: str, task: str) -> str:
    """One line for a markdown row: commit, config hash, training (teacher, lr, steps), base model hash."""
    cells = [c for c in results.cells if c.task == task and c.strategy.label == strategy]
    commit = (results.provenance.git_commit or "unknown")[:12]
    models = _joined([(c.model.weights_sha256 or "n/a")[:12] for c in cells if c.model])
    return (f"commit {commit} · config {_joined([c.config_hash for c in cells])} · "
            f"{_joined([_training(c) for c in cells])} · model {models} · "
            f"gate {_gate(results.provenance.tasks.get(task))}")


def _main_split(rows: dict[tuple[str, str, str, str], Any], task: str, strategy: str, checkpoint: str) -> str | None:
    if (task, strategy, MAIN_SPLIT, checkpoint) in rows:
        return MAIN_SPLIT
    # no "test" split: the first non-OOD split stands in for it
    return min((s for (t, st, s, c) in rows if (t, st, c) == (task, strategy, checkpoint) and s != OOD_SPLIT),
               default=None)


def entries_of(results: Results) -> list[Entry]:
    rows = {(r.task, r.strategy, r.split, r.checkpoint): r for r in results.summary.rows}
    out = []
    for (task, strategy, split, checkpoint), row in sorted(rows.items()):
        if split != _main_split(rows, task, strategy, checkpoint):
            continue
        kmax = _kmax(row.metrics)
        values: dict[str, Stat | None] = {key: row.metrics.get(key) for _, key in COLUMNS}
        values["pass@kmax"] = row.metrics.get(f"pass@{kmax}")
        ood = rows.get((task, strategy, OOD_SPLIT, checkpoint))
        values["ood1"] = ood.metrics.get("pass@1") if ood else None
        values["ood"] = ood.metrics.get(f"pass@{_kmax(ood.metrics)}") if ood else None
        values["step"] = row.selected_step
        values["slope"] = _slope(results, task, strategy)
        curve = sorted((int(m[5:]), s) for m, s in row.metrics.items() if m.startswith("pass@") and m[5:].isdigit())
        out.append(Entry(results.name, strategy, task, checkpoint, kmax, values, curve,
                         _provenance(results, strategy, task)))
    return out


def _slope(results: Results, task: str, strategy: str) -> Stat | None:
    """The arm's amplification slope at its last val step (None: not measured)."""
    from sdbench.runs.mechanism_report import arms_of

    arm = next((a for a in arms_of(results.summary, task) if a["strategy"] == strategy), None)
    return Stat(**arm["slope"]) if arm and arm.get("slope") else None


def task_views(all_results: list[Results]) -> list[TaskView]:
    """Per task: both checkpoints' entries (best pass@1 first), the frontier, labels, Pareto flags, plots."""
    from sdbench.leaderboard.plots import curves_svg, pareto_front, pareto_svg, trajectories_svg
    from sdbench.runs.mechanism_report import arms_of
    from sdbench.runs.mechanism_report import svg as mechanism_svg
    from sdbench.runs.report import budgets_of, frontier_table, tasks_of, trajectory_series

    # (run, task) -> the task version it measured, read from the cells once
    version = {(r.name, t): task_version(r, t) for r in all_results for t in tasks_of(r.summary)}
    views: dict[tuple[str, str | None], TaskView] = {}
    for results in all_results:
        for task in tasks_of(results.summary):
            key = (task, version[(results.name, task)])
            views.setdefault(key, _view(*key))
        for entry in entries_of(results):
            views[(entry.task, version[(results.name, entry.task)])].tables[entry.checkpoint].append(entry)
    for view in views.values():
        runs = [r for r in all_results
                if (r.name, view.task) in version and version[(r.name, view.task)] == view.version]
        many_runs = len(runs) > 1

        def label(strategy: str, run: str, many_runs: bool = many_runs) -> str:
            return f"{strategy} ({run})" if many_runs else strategy

        for e in view.entries:
            e.label = label(e.strategy, e.run)
        for entries in view.tables.values():
            entries.sort(key=lambda e: (-(e.values["pass@1"].mean if e.values["pass@1"] else -1.0), e.run, e.strategy))
        view.budgets = sorted({b for r in runs for b in budgets_of(r.summary, view.task)})
        for r in runs:
            if budgets_of(r.summary, view.task) != view.budgets and budgets_of(r.summary, view.task):
                raise UserError(f"{r.name} measured the {view.task} frontier at other KL budgets than the other runs",
                                "submit runs of one sdbench version to one leaderboard")
            view.frontier += [FrontierRow(r.name, row[0], row[1:]) for row in frontier_table(r.summary, view.task)[1]]
        view.comparisons = [c for r in runs for c in comparisons(r, view.task, many_runs)]
        series = [s for r in runs for s in trajectory_series(r.summary, view.task, lambda s, r=r: label(s, r.name))]
        best = view.tables["best_val"] or view.tables["final"]   # tasks without a val split: final only
        plotted = [e for e in best if e.values["pass@1"] and e.values["distinct_correct"]]
        for i in pareto_front([(e.values["distinct_correct"].mean, e.values["pass@1"].mean) for e in plotted]):
            plotted[i].pareto = True
        view.svgs = {
            "trajectories": trajectories_svg(view.title, series),
            "curves": curves_svg(view.title, [{"label": e.label, "curve": [(k, s.model_dump()) for k, s in e.curve]}
                                             for e in best]),
            "pareto": pareto_svg(view.title, [{"label": e.label, "pass1": e.values["pass@1"].model_dump(),
                                              "diversity": e.values["distinct_correct"].model_dump()}
                                             for e in plotted]),
            "mechanism": mechanism_svg(view.title, [{**a, "strategy": label(a["strategy"], r.name)} for r in runs
                                                    for a in arms_of(r.summary, view.task)]),
        }
    newest_first = sorted(views, key=lambda key: version_key(key[1]), reverse=True)
    return [views[key] for key in sorted(newest_first, key=lambda key: key[0])]   # by task, newest version first


def comparisons(results: Results, task: str, many_runs: bool = False) -> list[tuple[str, list[str], list[list[str]]]]:
    """The matched-budget tables of one run on one task, paired against the paper's baseline: at the final step
    (test), at matched KL from the base (val) and at matched val pass@1 (iso-accuracy: distinct correct)."""
    from sdbench.config import PAPER_BASELINE
    from sdbench.runs.report import fmt

    suffix = f" ({results.name})" if many_runs else ""
    total = len(results.provenance.seeds)
    out = []
    final = [d for d in results.summary.deltas
             if d.task == task and d.baseline == PAPER_BASELINE and d.split == MAIN_SPLIT and d.checkpoint == "final"]
    if final:
        out.append((f"matched step (final, test): paired Δ against {PAPER_BASELINE}{suffix}",
                    ["strategy", "Δ pass@1", "Δ pass@16", "Δ distinct_correct"],
                    [[d.strategy, fmt(d.metrics.get("pass@1")), fmt(d.metrics.get("pass@16")),
                      fmt(d.metrics.get("distinct_correct"))] for d in final]))
    for match, title, what in (("kl_from_base", "matched KL from base (val)", "KL"),
                               ("pass@1", "matched val pass@1 (iso-accuracy)", "pass@1")):
        deltas = [m for m in results.summary.matched_deltas
                  if m.task == task and m.match == match and m.baseline == PAPER_BASELINE]
        levels = sorted({m.level for m in deltas})
        if not levels:
            continue
        by = {(m.strategy, m.level): m for m in deltas}
        rows = []
        for strategy in dict.fromkeys(m.strategy for m in deltas):
            cells = []
            for level in levels:
                m = by.get((strategy, level))
                cells.append("–" if m is None else f"{fmt(m.metrics.get('distinct_correct'))} "
                                                   f"({m.n_seeds}/{total} vs {m.n_seeds_baseline}/{total})")
            rows.append([strategy, *cells])
        out.append((f"{title}: paired Δ distinct correct against {PAPER_BASELINE} (seeds reaching it){suffix}",
                     ["strategy", *(f"{what} {level:g}" for level in levels)], rows))
    return out


def cell_text(entry: Entry, key: str) -> str:
    """A table cell: the selected step as `step_text`, every metric as mean [ci_low, ci_high]."""
    from sdbench.runs.report import fmt, step_text

    if key == "slope" and entry.values[key] is None:
        return NOT_MEASURED
    return step_text(entry.values[key]) if key == "step" else fmt(entry.values[key])


def column_title(title: str, view: TaskView) -> str:
    kmax = {e.kmax for e in view.entries}
    return title.replace("k_max", str(kmax.pop())) if len(kmax) == 1 and "k_max" in title else title


def budget_titles(view: TaskView) -> list[str]:
    from sdbench.runs.report import budget_title

    return [budget_title(b) for b in view.budgets]


PLOT_TEXT = {
    "trajectories": "val pass@1, distinct correct and KL from base against step, and pass@1 against distinct "
                    "correct along training (one line per strategy, 95% CI bands over seeds)",
    "curves": "pass@k curves at the best-val checkpoint",
    "pareto": "pass@1 vs diversity at the best-val checkpoint (Pareto front)",
    "mechanism": "mode amplification on val: dominant-class share and effective correct classes against step, and "
                 "the amplification slope per strategy beside the base-vs-base null (results without class "
                 "histograms: not measured)",
}


def markdown(views: list[TaskView], all_results: list[Results]) -> str:
    from sdbench.leaderboard.claims import what_it_shows
    from sdbench.runs.report import md_table

    lines = ["# sdbench leaderboard", "",
             f"{len(all_results)} submitted run(s). Every value is the mean over seeds and problems with its "
             "seed-aware 95% CI (seeds resampled within each arm, problems jointly); every number can be "
             "recomputed from the per-problem counts in "
             "`results/`. The interactive page is `index.html`. Test and ood are evaluated at two checkpoints "
             "of each seed: best-val (the step with the highest val pass@1; ties: the earliest) and final. Each "
             "task version is its own section (another base model or corpus: its numbers are not comparable "
             "with another version's). The "
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
            header = ["run", "strategy", *(column_title(t, view) for t, _ in columns(checkpoint)), "provenance"]
            rows = [[e.run, e.strategy + (" (Pareto)" if e.pareto else ""),
                     *(cell_text(e, key) for _, key in columns(checkpoint)),
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
