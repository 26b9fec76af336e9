# expect-run: ok error killed
# ruff: noqa: F821 - __NAMES__ are filled in by the test (sandbox_targets.render)
import os
import signal

for target in [os.getppid(), 1, __HARNESS__, __VICTIM__, -1]:
    try:
        os.kill(target, signal.SIGKILL)
        print("KILLED", target)
    except OSError as exc:
        print("blocked", target, exc.errno)
