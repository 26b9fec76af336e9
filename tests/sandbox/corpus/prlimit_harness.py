# expect-run: ok error
# ruff: noqa: F821 - __NAMES__ are filled in by the test (sandbox_targets.render)
# Degrades the harness without signals: shrinks its rlimits, pins it to one CPU, renices it (and all of root).
import os
import resource

attempts = {
    "prlimit": lambda: resource.prlimit(__HARNESS__, resource.RLIMIT_NOFILE, (3, 3)),
    "affinity": lambda: os.sched_setaffinity(__HARNESS__, {0}),
    "renice": lambda: os.setpriority(os.PRIO_PROCESS, __HARNESS__, 19),
    "renice-user": lambda: os.setpriority(os.PRIO_USER, 0, 19),
    "renice-group": lambda: os.setpriority(os.PRIO_PGRP, 0, 19),
}
for name, attempt in attempts.items():
    try:
        attempt()
        print("CHANGED", name)
    except OSError as exc:
        print("blocked", name, exc.errno)
