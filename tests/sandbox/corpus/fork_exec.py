# expect-run: ok error
import os

pid = os.fork()
if pid == 0:
    try:
        os.execv("/bin/sh", ["sh", "-c", "touch __CANARY__/pwned_exec"])
    except OSError as exc:
        print("exec blocked", exc.errno)
    os._exit(3)
print("child status", os.waitpid(pid, 0))
