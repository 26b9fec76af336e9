# expect-run: ok error timeout
# Double-forks into a new session to outlive the process-group kill, then keeps writing.
import os
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            try:
                with open("__CANARY__/canary.txt", "a") as fh:
                    fh.write("still alive\n")
            except OSError:
                pass
            time.sleep(0.05)
    os._exit(0)
print("parent done")
