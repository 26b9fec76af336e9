# expect-run: ok
import sys


def f(x):
    sys.exit(0)


sys.exit(0)
