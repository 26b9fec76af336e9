"""The static pages: the leaderboard's index.html and the shared page frame of a run's report.html.
Each is one self-contained HTML file (inline CSS, SVG plots and JS; no network, a CSP that forbids it).

    from sdbench.leaderboard.html import page
    Path("index.html").write_text(page(task_views(results), results))

Each task gets sortable best-val and final tables (click a header; click again to reverse), the KL
frontier table, its val trajectories, pass@k curves and pass@1-vs-diversity scatter with the Pareto
front. A row's provenance sits in a details row opened by its button, and in the row's hover title.
Every string from a results file is HTML-escaped. `document`, `static_table`, `figure` and `BASE_CSS`
are shared with `sdbench.runs.report_html`.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from sdbench.leaderboard.plots import inline_svg
from sdbench.leaderboard.site import (
    CHECKPOINT_TITLES,
    PLOT_TEXT,
    Entry,
    TaskView,
    budget_titles,
    cell_text,
    column_title,
    columns,
)
from sdbench.runs.record import CHECKPOINTS

if TYPE_CHECKING:
    from sdbench.leaderboard.schema import Results
    from sdbench.runs.record import Checkpoint

BASE_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --head: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1280px; padding: 24px; }
h1 { margin: 0 0 4px; font-size: 26px; }
h2 { margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { margin: 20px 0 6px; font-size: 16px; }
p.lead, p.note { color: var(--muted); margin: 4px 0 12px; }
nav a { margin-right: 12px; color: var(--accent); }
.scroll { overflow-x: auto; }
table.lb { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.lb th, table.lb td { border-bottom: 1px solid var(--line); padding: 6px 8px; text-align: right;
                           white-space: nowrap; }
table.lb th { background: var(--head); }
table.lb th.text, table.lb td.text { text-align: left; }
table.lb td .ci { color: var(--muted); font-size: 12px; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 16px; margin-top: 16px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
figure.wide { grid-column: 1 / -1; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 4px; }
"""

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

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def document(title: str, lead: str, body: str, *, css: str = BASE_CSS, script: str = "") -> str:
    """A complete page: title, CSP forbidding every load, inline CSS, lead paragraph (HTML), body (HTML)."""
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f"<title>{escape(title)}</title>\n<style>{css}</style>\n</head>\n<body>\n"
            f"<h1>{escape(title)}</h1>\n<p class=\"lead\">{lead}</p>\n{body}\n"
            + (f"<script>{script}</script>\n" if script else "") + "</body>\n</html>\n")


def static_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, table_id: str, cls: str = "",
                 text_columns: int = 1) -> str:
    """A plain table (no sorting); the first `text_columns` columns are left-aligned text."""
    def cell(tag: str, i: int, text: str) -> str:
        align = ' class="text"' if i < text_columns else ""
        scope = ' scope="col"' if tag == "th" else ""
        return f"<{tag}{align}{scope}>{escape(text)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table class="lb {escape(cls)}" id="{escape(table_id)}">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def figure(svg: str, kind: str, prefix: str, caption: str, *, wide: bool = False) -> str:
    cls = f"{kind} wide" if wide else kind
    return f'<figure class="{cls}">{inline_svg(svg, prefix)}<figcaption>{escape(caption)}</figcaption></figure>'


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
        return f'<td data-sort="">{"not measured" if key == "slope" else "–"}</td>'
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
            + "".join(_cell(entry, key) for _, key in columns(entry.checkpoint))
            + f'<td class="text"><button class="prov" type="button" aria-expanded="false" '
              f'aria-controls="{row_id}">provenance</button></td></tr>'
            f'<tr class="details" id="{row_id}" hidden><td colspan="{width}"><dl>{details}</dl></td></tr></tbody>')


def _table(view: TaskView, checkpoint: Checkpoint) -> str:
    heads = ['<th class="text" data-type="text" tabindex="0" scope="col">run</th>',
             '<th class="text" data-type="text" tabindex="0" scope="col">strategy</th>']
    heads += [f'<th data-type="number" tabindex="0" scope="col">{escape(column_title(t, view))}</th>'
              for t, _ in columns(checkpoint)]
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
