# expect-run: timeout
# Uses no CPU, so only the wall-clock deadline stops it.
import time

time.sleep(10_000)
