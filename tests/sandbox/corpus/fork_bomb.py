# expect-run: timeout
# A fork bomb: RLIMIT_NPROC under a fresh uid caps it, the PID namespace and the group kill end it.
import os

while True:
    try:
        os.fork()
    except OSError:
        pass
