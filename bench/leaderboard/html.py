"""The leaderboard's index.html: one self-contained HTML file (inline CSS, SVG plots and JS; no network, a CSP that
forbids it) in the page frame every sdbench page shares (`sdbench.presentation.html`).

    from sdbench.leaderboard.html import page
    Path("index.html").write_text(page(task_views(results), results))

Each task gets sortable best-val and final tables (click a header; click again to reverse), the KL
frontier table, its val trajectories, pass@k curves and pass@1-vs-diversity scatter with the Pareto
front. A row's provenance sits in a details row opened by its button, and in the row's hover title.
Every string from a results file is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from sdbench.leaderboard.views import PLOT_TEXT, Entry, TaskView, budget_titles, cell_text, column_title
from sdbench.presentation.html import BASE_CSS, document, figure, static_table
from sdbench.presentation.tables import leaderboard_columns
from sdbench.presentation.text import CHECKPOINT_TITLES, NOT_MEASURED
from sdbench.results.record import CHECKPOINTS

if TYPE_CHECKING:
    from sdbench.leaderboard.schema import Results
    from sdbench.results.record import Checkpoint

SORT_CSS = """
table.lb.sortable th { cursor: pointer; user-select: none; position: relative; }
table.lb.sortable th:hover { background: #eaeef2; }
table.lb th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 10px; }
table.lb th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 10px; }
table.lb.sortable th.nosort { cursor: default; }
table.lb tr.entry:hover td { background: #f6f8fa; }
span.pareto { display: inline-block; margin-left: 6px; padding: 0 5px; border-radius: 8px; font-size: 11px;
              background: #ddf4ff; color: #0550ae; }
button.prov { font: inherit; font-size: 12px; padding: 1px 8px; border: 1px solid var(--line);
              border-radius: 6px; background: white; cursor: pointer; }
tr.details td { text-align: left; background: #fbfcfd; white-space: normal; }
tr.details dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 4px 0;
                font-size: 12px; }
tr.details dt { color: var(--muted); }
tr.details dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
"""

# Hand-written, dependency-free sorting: each entry is its own <tbody> (row + details row), so
# sorting moves a row's provenance with it. Ties keep the original (pass@1) order.
JS = """
(function () {
  function key(body, col, numeric) {
    var v = body.rows[0].cells[col].getAttribute('data-sort');
    if (numeric) { return v === '' ? null : parseFloat(v); }
    return v;
  }
  document.querySelectorAll('table.lb.sortable').forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      if (th.classList.contains('nosort')) { return; }
      function sort() {
        var numeric = th.getAttribute('data-type') === 'number';
        var current = th.getAttribute('aria-sort');
        var descending = current ? current === 'ascending' : numeric;
        var bodies = Array.prototype.slice.call(table.tBodies);
        bodies.sort(function (a, b) {
          var x = key(a, col, numeric), y = key(b, col, numeric), order = 0;
          if (x === null || y === null) { order = (x === null) - (y === null); }
          else if (numeric) { order = descending ? y - x : x - y; }
          else { order = descending ? y.localeCompare(x) : x.localeCompare(y); }
          return order || (+a.getAttribute('data-index') - +b.getAttribute('data-index'));
        });
        bodies.forEach(function (b) { table.appendChild(b); });
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', descending ? 'descending' : 'ascending');
      }
      th.addEventListener('click', sort);
      th.addEventListener('keydown', function (e) {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sort(); }
      });
    });
  });
  document.querySelectorAll('button.prov').forEach(function (button) {
    button.addEventListener('click', function () {
      var row = button.closest('tbody').rows[1];
      row.hidden = !row.hidden;
      button.setAttribute('aria-expanded', String(!row.hidden));
    });
  });
})();
"""


def _cell(entry: Entry, key: str) -> str:
    stat = entry.values[key]
    if stat is None:
        return f'<td data-sort="">{NOT_MEASURED if key == "slope" else "–"}</td>'
    if key == "step":
        return f'<td data-sort="{stat.mean!r}">{escape(cell_text(entry, key))}</td>'
    ci = f'<br><span class="ci">[{stat.ci_low:.3f}, {stat.ci_high:.3f}]</span>'
    return f'<td data-sort="{stat.mean!r}" title="{escape(cell_text(entry, key))}">{stat.mean:.3f}{ci}</td>'


def _entry(entry: Entry, index: int, width: int, prefix: str) -> str:
    hover = escape("\n".join(f"{k}: {v}" for k, v in entry.provenance))
    badge = '<span class="pareto" title="on the pass@1 / diversity Pareto front">Pareto</span>' if entry.pareto else ""
    details = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in entry.provenance)
    row_id = f"{prefix}-{index}"
    return (f'<tbody data-index="{index}"><tr class="entry" title="{hover}">'
            f'<td class="text" data-sort="{escape(entry.run)}">{escape(entry.run)}</td>'
            f'<td class="text" data-sort="{escape(entry.strategy)}">{escape(entry.strategy)}{badge}</td>'
            + "".join(_cell(entry, key) for _, key in leaderboard_columns(entry.checkpoint))
            + f'<td class="text"><button class="prov" type="button" aria-expanded="false" '
              f'aria-controls="{row_id}">provenance</button></td></tr>'
            f'<tr class="details" id="{row_id}" hidden><td colspan="{width}"><dl>{details}</dl></td></tr></tbody>')


def _table(view: TaskView, checkpoint: Checkpoint) -> str:
    heads = ['<th class="text" data-type="text" tabindex="0" scope="col">run</th>',
             '<th class="text" data-type="text" tabindex="0" scope="col">strategy</th>']
    heads += [f'<th data-type="number" tabindex="0" scope="col">{escape(column_title(t, view))}</th>'
              for t, _ in leaderboard_columns(checkpoint)]
    heads.append('<th class="text nosort" scope="col">provenance</th>')
    prefix = f"prov-{view.slug}-{checkpoint}"
    bodies = "".join(_entry(e, i, len(heads), prefix) for i, e in enumerate(view.tables[checkpoint]))
    return (f'<div class="scroll"><table class="lb sortable" id="table-{escape(view.slug)}-{checkpoint}" '
            f'data-task="{escape(view.task)}" data-checkpoint="{checkpoint}">'
            f'<thead><tr>{"".join(heads)}</tr></thead>{bodies}</table></div>')


def _section(view: TaskView) -> str:
    parts = [f'<section id="task-{escape(view.slug)}"><h2>{escape(view.title)}</h2>']
    for checkpoint in CHECKPOINTS:
        if view.tables[checkpoint]:
            title = CHECKPOINT_TITLES[checkpoint]
            parts.append(f'<h3>{title}</h3>{_table(view, checkpoint)}')
    for i, (title, head, rows) in enumerate(view.comparisons):
        parts.append(f"<h3>{escape(title)}</h3>" + static_table(head, rows, table_id=f"compare-{view.slug}-{i}",
                                                                 cls="frontier", text_columns=1))
    if view.frontier:
        parts.append("<h3>frontier: val pass@1 / distinct correct at matched KL from base</h3>"
                     + static_table(["run", "strategy", *budget_titles(view)],
                                    [[f.run, f.strategy, *f.cells] for f in view.frontier],
                                    table_id=f"frontier-{view.slug}", cls="frontier", text_columns=2))
    parts.append('<div class="plots">'
                 + "".join(figure(view.svgs[kind], kind, f"{kind}-{view.slug}", PLOT_TEXT[kind] + ".",
                                  wide=kind == "trajectories") for kind in PLOT_TEXT)
                 + "</div></section>")
    return "".join(parts)


def _claims(all_results: list[Results]) -> str:
    """The per-task summary (sdbench.leaderboard.claims): directions only where the seed-aware CI excludes 0."""
    from sdbench.leaderboard.claims import claims

    groups: dict[str, dict[str, list[str]]] = {}
    for c in claims(all_results):
        groups.setdefault(c.task, {}).setdefault(c.where, []).append(c.text())
    if not groups:
        return ""
    items = "".join(f"<li><strong>{escape(task)}</strong><ul>"
                    + "".join(f"<li>{escape(where)}: {escape('; '.join(texts))}.</li>" for where, texts in g.items())
                    + "</ul></li>" for task, g in groups.items())
    return f'<section id="what-it-shows"><h2>What it shows</h2><ul class="claims">{items}</ul></section>'


def page(views: list[TaskView], all_results: list[Results]) -> str:
    nav = " ".join(f'<a href="#task-{escape(v.slug)}">{escape(v.title)}</a>' for v in views)
    body = "".join(_section(v) for v in views) or (
        '<p class="note">No results yet: <code>sdbench leaderboard submit RUN_DIR</code>.</p>')
    body = _claims(all_results) + body
    lead = (f"{len(all_results)} submitted run(s). Values are means over seeds and problems with seed-aware 95% "
            "CIs (small grey; seeds resampled within each arm, problems jointly). Arms are compared first at "
            "matched budgets: the final step, matched KL from the base and matched val pass@1. "
            "\"any correct of n\" is pass@n at n samples. Test and ood are evaluated at the best-val checkpoint "
            "(highest "
            "val pass@1, ties: the earliest step) and at the final step. Each task version is its own section (another "
            "base model or corpus: not comparable). Click a column header to sort; click "
            "again to reverse. Every number can be recomputed from the per-problem counts in <code>results/</code>.")
    return document("sdbench leaderboard", lead, f"<nav>{nav}</nav>\n{body}", css=BASE_CSS + SORT_CSS, script=JS)
