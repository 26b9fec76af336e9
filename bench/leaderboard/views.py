"""The leaderboard's model of its pages: per task version, the entries (run, strategy, checkpoint) with their
numbers and provenance, the matched-budget comparisons, the KL frontier and the plots.

    from sdbench.leaderboard.views import task_views
    views = task_views(load_all(Path("leaderboard/results")))    # list[TaskView], by task, newest version first
    views[0].tables["best_val"][0].values["pass@1"]              # a Stat

One entry is a (submitted run, strategy, checkpoint) on one task; its numbers come from the summary
rows of the task's main split ("test") and, for the OOD columns, of the "ood" split. Every row carries
its provenance (commit, config hash, teacher, lr, steps, base model hash). `sdbench.leaderboard.site`
writes these views as README.md and (through `sdbench.leaderboard.html`) index.html; the generated
claims and the headline read `task_version` / `version_key` from here. Cell formats, captions and
column sets are `sdbench.presentation`'s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sdbench.errors import UserError
from sdbench.leaderboard.schema import CellRecord, Results, Stat
from sdbench.presentation.tables import (
    LEADERBOARD_COLUMNS,
    budgets_of,
    frontier_table,
    kmax_title,
    tasks_of,
    trajectory_series,
)
from sdbench.presentation.text import MAIN_SPLIT, NOT_MEASURED, OOD_SPLIT, budget_title, fmt, kmax, slug, step_text
from sdbench.results.record import CHECKPOINTS, Checkpoint

PLOT_KINDS = ("trajectories", "curves", "pareto", "mechanism")


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
    model: str | None = None                       # a real pretrained model the run named (None: the testbed's own)
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
        real = f" · real pretrained model {self.model}" if self.model else ""
        return f"{self.task} · version {self.version or 'not recorded'}{real}"


def version_key(version: str | None) -> tuple[int, str]:
    """Order task versions ("2" < "3" < "10"); unknown (None) is the oldest."""
    if version is None:
        return (-1, "")
    return (int(version), "") if version.isdigit() else (0, version)


def task_version(results: Results, task: str) -> str | None:
    """The version of `task` a run measured, from its cells (one code version per run: one task version)."""
    versions = sorted({c.task_version for c in results.cells if c.task == task and c.task_version}, key=version_key)
    return "/".join(versions) or None


def base_model(results: Results) -> str | None:
    """The real pretrained model a run named (`--model`, e.g. smollm2-135m-instruct); None when its tasks ran on
    their own embedded testbed models. Numbers on another base model are another section of the leaderboard."""
    return results.config.get("model") or None


def _view(task: str, version: str | None, model: str | None) -> TaskView:
    name = task if version is None else f"{task}-v{version}"
    return TaskView(task, slug(name if model is None else f"{name}-{model}"), version, model)


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
        values: dict[str, Stat | None] = {key: row.metrics.get(key) for _, key in LEADERBOARD_COLUMNS}
        values["pass@kmax"] = row.metrics.get(f"pass@{kmax(row)}")
        ood = rows.get((task, strategy, OOD_SPLIT, checkpoint))
        values["ood1"] = ood.metrics.get("pass@1") if ood else None
        values["ood"] = ood.metrics.get(f"pass@{kmax(ood)}") if ood else None
        values["step"] = row.selected_step
        values["slope"] = _slope(results, task, strategy)
        curve = sorted((int(m[5:]), s) for m, s in row.metrics.items() if m.startswith("pass@") and m[5:].isdigit())
        out.append(Entry(results.name, strategy, task, checkpoint, kmax(row), values, curve,
                         _provenance(results, strategy, task)))
    return out


def _slope(results: Results, task: str, strategy: str) -> Stat | None:
    """The arm's amplification slope at its last val step (None: not measured)."""
    from sdbench.runs.mechanism_report import arms_of

    arm = next((a for a in arms_of(results.summary, task) if a["strategy"] == strategy), None)
    return Stat(**arm["slope"]) if arm and arm.get("slope") else None


def task_views(all_results: list[Results]) -> list[TaskView]:
    """Per task: both checkpoints' entries (best pass@1 first), the frontier, labels, Pareto flags, plots."""
    from sdbench.presentation.plots import curves_svg, mechanism_svg, pareto_front, pareto_svg, trajectories_svg
    from sdbench.runs.mechanism_report import arms_of

    # (run, task) -> (task, the task version it measured, the real model it named): its view's key
    key_of = {(r.name, t): (t, task_version(r, t), base_model(r)) for r in all_results for t in tasks_of(r.summary)}
    views: dict[tuple[str, str | None, str | None], TaskView] = {}
    for results in all_results:
        for task in tasks_of(results.summary):
            key = key_of[(results.name, task)]
            views.setdefault(key, _view(*key))
        for entry in entries_of(results):
            views[key_of[(results.name, entry.task)]].tables[entry.checkpoint].append(entry)
    for view in views.values():
        runs = [r for r in all_results if key_of.get((r.name, view.task)) == (view.task, view.version, view.model)]
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
    # the embedded testbeds, then the real models' sections; by task, newest version first
    return [views[key] for key in sorted(newest_first, key=lambda key: (key[2] is not None, key[2] or "", key[0]))]


def comparisons(results: Results, task: str, many_runs: bool = False) -> list[tuple[str, list[str], list[list[str]]]]:
    """The matched-budget tables of one run on one task, paired against the paper's baseline: at the final step
    (test), at matched KL from the base (val) and at matched val pass@1 (iso-accuracy: distinct correct)."""
    from sdbench.config import PAPER_BASELINE

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
    if key == "slope" and entry.values[key] is None:
        return NOT_MEASURED
    return step_text(entry.values[key]) if key == "step" else fmt(entry.values[key])


def column_title(title: str, view: TaskView) -> str:
    return kmax_title(title, {e.kmax for e in view.entries})


def budget_titles(view: TaskView) -> list[str]:
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
