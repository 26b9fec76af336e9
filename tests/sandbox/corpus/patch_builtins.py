# expect-run: ok
# Monkeypatches what a naive in-process grader would use: AssertionError, isinstance, print, excepthook, atexit.
import atexit
import builtins
import sys

builtins.AssertionError = type("AssertionError", (Exception,), {})
builtins.isinstance = lambda *a: True
builtins.print = lambda *a, **k: sys.stdout.write("PASSED\n")
sys.excepthook = lambda *a: None
atexit.register(lambda: sys.stdout.write("ALL TESTS PASSED\n"))
sys.settrace(lambda *a: None)


def f(x):
    return None
