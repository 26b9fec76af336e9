# expect-run: ok error
# ruff: noqa: F821 - __NAMES__ are filled in by the test (sandbox_targets.render)
# Signals to the harness and to another of the test's processes, by pid and by process group.
import os
import signal

for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT, signal.SIGSTOP):
    targets = [(os.kill, __VICTIM__)]
    if sig != signal.SIGSTOP:  # a stopped harness would hang the test run instead of failing it
        targets += [(os.kill, __HARNESS__), (os.killpg, __HARNESS__)]
    for fn, target in targets:
        try:
            fn(target, sig)
            print("SENT", sig, target)
        except OSError as exc:
            print("blocked", sig, target, exc.errno)
