"""The static leaderboard page: one self-contained HTML file (inline CSS, SVG plots and JS; no network).

    from sdbench.leaderboard.html import page
    Path("index.html").write_text(page(task_views(results), len(results)))

Each task gets a sortable table (click a header; click again to reverse), its pass@k curves and its
pass@1-vs-diversity scatter with the Pareto front. A row's provenance sits in a details row opened by
its button, and in the row's hover title. Every string from a results file is HTML-escaped.
"""

from __future__ import annotations

from html import escape

from sdbench.leaderboard.plots import inline_svg
from sdbench.leaderboard.site import COLUMNS, Entry, TaskView, column_title, fmt

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --head: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1280px; padding: 24px; }
h1 { margin: 0 0 4px; font-size: 26px; }
h2 { margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
p.lead, p.note { color: var(--muted); margin: 4px 0 12px; }
nav a { margin-right: 12px; color: var(--accent); }
.scroll { overflow-x: auto; }
table.lb { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.lb th, table.lb td { border-bottom: 1px solid var(--line); padding: 6px 8px; text-align: right;
                           white-space: nowrap; }
table.lb th { background: var(--head); cursor: pointer; user-select: none; position: relative; }
table.lb th:hover { background: #eaeef2; }
table.lb th.text, table.lb td.text { text-align: left; }
table.lb th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 10px; }
table.lb th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 10px; }
table.lb th.nosort { cursor: default; }
table.lb td .ci { color: var(--muted); font-size: 12px; }
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
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 16px; margin-top: 16px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 4px; }
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
  document.querySelectorAll('table.lb').forEach(function (table) {
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
        return '<td data-sort="">–</td>'
    ci = f'<br><span class="ci">[{stat.ci_low:.3f}, {stat.ci_high:.3f}]</span>'
    return f'<td data-sort="{stat.mean!r}" title="{escape(fmt(stat))}">{stat.mean:.3f}{ci}</td>'


def _entry(entry: Entry, index: int, width: int, prefix: str) -> str:
    hover = escape("\n".join(f"{k}: {v}" for k, v in entry.provenance))
    badge = '<span class="pareto" title="on the pass@1 / diversity Pareto front">Pareto</span>' if entry.pareto else ""
    details = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in entry.provenance)
    row_id = f"{prefix}-{index}"
    return (f'<tbody data-index="{index}"><tr class="entry" title="{hover}">'
            f'<td class="text" data-sort="{escape(entry.run)}">{escape(entry.run)}</td>'
            f'<td class="text" data-sort="{escape(entry.strategy)}">{escape(entry.strategy)}{badge}</td>'
            + "".join(_cell(entry, key) for _, key in COLUMNS)
            + f'<td class="text"><button class="prov" type="button" aria-expanded="false" '
              f'aria-controls="{row_id}">provenance</button></td></tr>'
            f'<tr class="details" id="{row_id}" hidden><td colspan="{width}"><dl>{details}</dl></td></tr></tbody>')


def _table(view: TaskView) -> str:
    heads = ['<th class="text" data-type="text" tabindex="0" scope="col">run</th>',
             '<th class="text" data-type="text" tabindex="0" scope="col">strategy</th>']
    heads += [f'<th data-type="number" tabindex="0" scope="col">{escape(column_title(t, view))}</th>'
              for t, _ in COLUMNS]
    heads.append('<th class="text nosort" scope="col">provenance</th>')
    prefix = f"prov-{view.slug}"
    bodies = "".join(_entry(e, i, len(heads), prefix) for i, e in enumerate(view.entries))
    return (f'<div class="scroll"><table class="lb" id="table-{escape(view.slug)}" data-task="{escape(view.task)}">'
            f'<thead><tr>{"".join(heads)}</tr></thead>{bodies}</table></div>')


def _section(view: TaskView) -> str:
    return (f'<section id="task-{escape(view.slug)}"><h2>{escape(view.task)}</h2>{_table(view)}'
            f'<div class="plots">'
            f'<figure class="curves">{inline_svg(view.curves_svg, f"curves-{view.slug}")}'
            f'<figcaption>pass@k against k (log2 axis), one line per strategy; bands are 95% CIs.</figcaption></figure>'
            f'<figure class="pareto">{inline_svg(view.pareto_svg, f"pareto-{view.slug}")}'
            f'<figcaption>pass@1 against distinct correct solutions per problem, with 95% CIs; '
            f'the dashed step and outlined points are the Pareto front.</figcaption></figure>'
            f'</div></section>')


def page(views: list[TaskView], n_results: int) -> str:
    nav = " ".join(f'<a href="#task-{escape(v.slug)}">{escape(v.task)}</a>' for v in views)
    body = "".join(_section(v) for v in views) or (
        '<p class="note">No results yet: <code>sdbench leaderboard submit RUN_DIR</code>.</p>')
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
        f"<title>sdbench leaderboard</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        "<h1>sdbench leaderboard</h1>\n"
        f'<p class="lead">{n_results} submitted run(s). Values are means over seeds and problems with 95% '
        "percentile-bootstrap CIs (small grey). Click a column header to sort; click again to reverse. "
        "Every number can be recomputed from the per-problem counts in <code>results/</code>.</p>\n"
        f"<nav>{nav}</nav>\n{body}\n<script>{JS}</script>\n</body>\n</html>\n"
    )
