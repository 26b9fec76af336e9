# expect-run: ok error
# Reloads os (and posix) hoping to undo restrictions, then tries the forbidden things again.
import importlib
import os
import sys

os = importlib.reload(os)
posix = sys.modules["posix"]
try:
    print(posix.system("touch __CANARY__/pwned_reload"))
except OSError as exc:
    print("blocked", exc.errno)
try:
    fd = posix.open("__CANARY__/canary.txt", posix.O_WRONLY | posix.O_APPEND)
    posix.write(fd, b"pwned\n")
    print("WROTE")
except OSError as exc:
    print("blocked", exc.errno)


def f(x):
    return x
