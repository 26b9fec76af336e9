"""The leaderboard: results schema v2 (refusing v1), submission checks, the static site, publishing.

    sdbench leaderboard submit RUN_DIR --name NAME      # validate, recompute, file leaderboard/results/NAME.json.gz
    sdbench leaderboard build                           # leaderboard/index.html, README.md, plots/
    sdbench leaderboard publish --git-remote URL        # push the site to gh-pages (or --hf-dataset)
    sdbench leaderboard schema                          # rewrite leaderboard/schema.json

Importing this package does no work: matplotlib, torch and git are used inside the functions.
"""

from sdbench.leaderboard.publish import publish_git, publish_hf, stage_site
from sdbench.leaderboard.schema import RESULTS_SCHEMA_VERSION, Results, json_schema, schema_json
from sdbench.leaderboard.site import build_site
from sdbench.leaderboard.submit import fingerprint, load_results, results_from_run, submit, validate

__all__ = [
    "RESULTS_SCHEMA_VERSION",
    "Results",
    "build_site",
    "fingerprint",
    "json_schema",
    "load_results",
    "publish_git",
    "publish_hf",
    "results_from_run",
    "schema_json",
    "stage_site",
    "submit",
    "validate",
]
