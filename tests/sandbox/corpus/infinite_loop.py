# expect-run: timeout
def f(x):
    return 2 * x


while True:
    pass
