# expect-run: error killed memory timeout
# Python 3.11 keeps Python frames on the heap: this ends in a MemoryError, a crash or the deadline.
import sys

sys.setrecursionlimit(10**9)


def down(n):
    return down(n + 1) + 1


down(0)
