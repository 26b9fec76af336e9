"""The presentation layer: how results are shown, below both the run report and the leaderboard site.

    from sdbench.presentation.text import fmt, md_table, checkpoint_caption   # cells, captions, markdown
    from sdbench.presentation.tables import checkpoint_table, frontier_table  # a summary's tables
    from sdbench.presentation.html import document, static_table, figure      # the shared HTML page frame
    from sdbench.presentation.plots import trajectories_svg, curves_svg       # deterministic SVG plots

A run's summary.md, terminal tables and report.html (`sdbench.runs.report`, `sdbench.runs.report_html`)
and the leaderboard (`sdbench.leaderboard`) import from here and never from each other. It reads only
the results layer (`sdbench.results`); matplotlib is imported inside the plot functions.
"""
