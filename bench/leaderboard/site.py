"""Build the leaderboard from the submitted results only: index.html, README.md and plots/*.svg.

    sdbench leaderboard build                        # leaderboard/results/*.json -> leaderboard/
    sdbench leaderboard build --results R --out SITE

The output is a pure function of the results files: entries in a fixed order, no build timestamp,
sorted JSON, deterministic SVG (see plots.py) — building twice gives byte-identical files.
One entry is a (submitted run, strategy) pair on one task; its numbers come from the summary rows
of the task's main split ("test") and, for the OOD column, of the "ood" split.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdbench.errors import UserError
from sdbench.leaderboard.schema import Results, Stat

MAIN_SPLIT = "test"
OOD_SPLIT = "ood"
PLOTS = "plots"
# (column title, metric key in the main split; "ood" reads pass@k_max of the OOD split)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("pass@1", "pass@1"), ("pass@k_max", "pass@kmax"), ("pass@auc", "pass@auc"), ("pass@gain", "pass@gain"),
    ("distinct_correct", "distinct_correct"), ("semantic_classes", "semantic_classes"),
    ("ood pass@k_max", "ood"),
)


@dataclass
class Entry:
    run: str
    strategy: str
    task: str
    kmax: int
    values: dict[str, Stat | None]                 # column metric key -> stat (None: not measured)
    curve: list[tuple[int, Stat]]
    provenance: list[tuple[str, str]]
    label: str = ""
    pareto: bool = False


@dataclass
class TaskView:
    task: str
    slug: str
    entries: list[Entry] = field(default_factory=list)
    curves_svg: str = ""
    pareto_svg: str = ""


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "task"


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


def _provenance(results: Results, strategy: str, task: str) -> list[tuple[str, str]]:
    prov = results.provenance
    info = next((s for s in prov.strategies if s.label == strategy), None)
    model = prov.models.get(task)
    data = prov.tasks.get(task)
    lines = [
        ("run", results.name),
        ("sdbench", f"{prov.sdbench_version} (commit {prov.git_commit or 'unknown'})"),
        ("config", f"hash {prov.config_hash}, profile {results.config.get('profile', '?')}, seeds {prov.seeds}"),
        ("strategy", f"{info.name} from {info.distribution} {info.version}, params {_compact(info.params)}"
         if info else strategy),
        ("model", f"{model.path} (sha256 {model.weights_sha256 or 'n/a'})" if model else "unknown"),
        ("task data", f"sha256 {data.data_sha256}" if data else "unknown"),
        ("plugins", ", ".join(f"{p.distribution}=={p.version}" for p in prov.plugins) or "none"),
        ("hardware", _compact(prov.hardware)),
        ("libraries", ", ".join(f"{k} {v}" for k, v in sorted(prov.libraries.items()))),
    ]
    if prov.sandbox is not None:
        lines.append(("sandbox", _compact(prov.sandbox)))
    lines += [("run time", prov.run_time or "unknown"), ("submitted", prov.submitted)]
    return lines


def entries_of(results: Results) -> list[Entry]:
    rows = {(r.task, r.strategy, r.split): r for r in results.summary.rows}
    out = []
    for (task, strategy, split), row in sorted(rows.items()):
        main = MAIN_SPLIT if (task, strategy, MAIN_SPLIT) in rows else None
        if main is None:   # no "test" split: the first non-OOD split stands in for it
            main = min((s for (t, st, s) in rows if t == task and st == strategy and s != OOD_SPLIT), default=None)
        if split != main:
            continue
        kmax = _kmax(row.metrics)
        values: dict[str, Stat | None] = {key: row.metrics.get(key) for _, key in COLUMNS if key not in ("pass@kmax",
                                                                                                          "ood")}
        values["pass@kmax"] = row.metrics.get(f"pass@{kmax}")
        ood = rows.get((task, strategy, OOD_SPLIT))
        values["ood"] = ood.metrics.get(f"pass@{_kmax(ood.metrics)}") if ood else None
        curve = sorted((int(m[5:]), s) for m, s in row.metrics.items() if m.startswith("pass@") and m[5:].isdigit())
        out.append(Entry(results.name, strategy, task, kmax, values, curve, _provenance(results, strategy, task)))
    return out


def task_views(all_results: list[Results]) -> list[TaskView]:
    """Entries grouped by task, best pass@1 first, with labels, Pareto flags and plots."""
    from sdbench.leaderboard.plots import curves_svg, pareto_front, pareto_svg

    views: dict[str, TaskView] = {}
    for results in all_results:
        for entry in entries_of(results):
            views.setdefault(entry.task, TaskView(entry.task, slug(entry.task))).entries.append(entry)
    for view in views.values():
        many_runs = len({e.run for e in view.entries}) > 1
        for e in view.entries:
            e.label = f"{e.strategy} ({e.run})" if many_runs else e.strategy
        view.entries.sort(key=lambda e: (-(e.values["pass@1"].mean if e.values["pass@1"] else -1.0), e.run, e.strategy))
        plotted = [e for e in view.entries if e.values["pass@1"] and e.values["distinct_correct"]]
        for i in pareto_front([(e.values["distinct_correct"].mean, e.values["pass@1"].mean) for e in plotted]):
            plotted[i].pareto = True
        view.curves_svg = curves_svg(view.task, [{"label": e.label, "curve": [(k, s.model_dump()) for k, s in e.curve]}
                                                 for e in view.entries])
        view.pareto_svg = pareto_svg(view.task, [{"label": e.label, "pass1": e.values["pass@1"].model_dump(),
                                                  "diversity": e.values["distinct_correct"].model_dump()}
                                                 for e in plotted])
    return [views[t] for t in sorted(views)]


def fmt(stat: Stat | None) -> str:
    return "–" if stat is None else f"{stat.mean:.3f} [{stat.ci_low:.3f}, {stat.ci_high:.3f}]"


def column_title(title: str, view: TaskView) -> str:
    kmax = {e.kmax for e in view.entries}
    return title.replace("k_max", str(kmax.pop())) if len(kmax) == 1 and "k_max" in title else title


def markdown(views: list[TaskView], n_results: int) -> str:
    def esc(text: str) -> str:
        return text.replace("|", r"\|").replace("\n", " ")

    lines = ["# sdbench leaderboard", "",
             f"{n_results} submitted run(s). Every value is the mean over seeds and problems with its 95% "
             "percentile-bootstrap CI; every number can be recomputed from the per-problem counts in "
             "`results/`. The interactive page is `index.html`.", ""]
    if not views:
        lines.append("No results yet: `sdbench leaderboard submit RUN_DIR`.")
    for view in views:
        header = ["run", "strategy", *(column_title(t, view) for t, _ in COLUMNS)]
        lines += [f"## {esc(view.task)}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for e in view.entries:
            name = esc(e.strategy) + (" (Pareto)" if e.pareto else "")
            lines.append("| " + " | ".join([esc(e.run), name, *(fmt(e.values[key]) for _, key in COLUMNS)]) + " |")
        lines += ["", f"![pass@k curves for {esc(view.task)}]({PLOTS}/curves-{view.slug}.svg)", "",
                  f"![pass@1 vs diversity for {esc(view.task)}]({PLOTS}/pareto-{view.slug}.svg)", ""]
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
        for kind, svg in (("curves", view.curves_svg), ("pareto", view.pareto_svg)):
            path = out_dir / PLOTS / f"{kind}-{view.slug}.svg"
            _write(path, svg)
            wanted.add(path.name)
            written.append(path)
    for stale in sorted((out_dir / PLOTS).glob("*.svg")) if (out_dir / PLOTS).is_dir() else []:
        if stale.name not in wanted and re.match(r"^(curves|pareto)-", stale.name):
            stale.unlink()   # a task that left the leaderboard must not keep its old plots
    for name, text in (("index.html", page(views, len(all_results))), ("README.md", markdown(views, len(all_results)))):
        _write(out_dir / name, text)
        written.append(out_dir / name)
    return written
