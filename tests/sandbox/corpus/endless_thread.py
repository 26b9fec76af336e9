# expect-run: timeout
# A non-daemon thread that never ends keeps the interpreter alive after the main code finishes.
import threading


def spin():
    while True:
        pass


threading.Thread(target=spin).start()


def g(x):
    return 2 * x
