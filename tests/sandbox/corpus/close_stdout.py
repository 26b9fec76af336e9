# expect-run: ok error
# Closes every descriptor it inherited (stdio and any protocol pipes).
import os

os.closerange(0, 4096)


def f(x):
    return 2 * x + 1
