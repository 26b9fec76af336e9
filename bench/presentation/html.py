"""The page frame every sdbench HTML page shares: a self-contained document (inline CSS, no network, a CSP that
forbids any load), plain tables and figures.

    from sdbench.presentation.html import document, figure, static_table
    html = document("sdbench run report", lead_html, static_table(header, rows, table_id="timing"))

Used by a run's report.html (`sdbench.runs.report_html`) and the leaderboard's index.html
(`sdbench.leaderboard.html`, which adds its sortable tables and script). Every text argument except
`lead` and `body` (already HTML) is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from sdbench.presentation.plots import inline_svg

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
