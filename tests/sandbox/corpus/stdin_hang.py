# expect-run: error
x = input()


def f(x):
    return 2 * x
