"""Built-in tasks (`sdbench.tasks`), one file each, plus small shipped data.

    graph_paths, arith_target, code_synth   the embedded testbeds: generated problems, a shipped base model
                                            each (assets/), gated by `sdbench tasks check`
    gsm8k, math500, humaneval, mbpp         real-data tasks, loaded through `datasets` (fixtures/ for tests)
    _embedded.py, _realdata.py, _code*.py   what those share (splits and model assets; loaders; program grading)

They register through the entry-point group `sdbench.tasks` in sdbench's pyproject.toml, exactly like
third-party plugins, and load lazily: `sdbench.task.load_task("graph_paths")`.
"""
