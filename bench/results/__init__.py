"""The results layer, the bottom of sdbench above its foundation: what every stored number is and how it is versioned.

    from sdbench.results.record import CellRecord, ProblemCounts, Summary, RECORD_SCHEMA_VERSION
    from sdbench.results.counts import counts_from_verdicts     # graded samples of one problem -> ProblemCounts
    from sdbench.results.weights import weights_sha256          # a model directory's provenance hash

`record` holds the versioned models (cell records, per-problem counts, summaries) that the evaluator,
the runs, the CLI, the lm-eval bridge and the leaderboard all read and write; `counts` the one way
graded samples become per-problem counts; `weights` the one hash of a model's files. Nothing here
imports another sdbench layer (tests/test_layers.py), so every layer above can use it.
"""
