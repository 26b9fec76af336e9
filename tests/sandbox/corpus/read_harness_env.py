# expect-run: ok error
# Looks for the harness's environment: its own, /proc/<pid>/environ of everything it can see.
import os

print(dict(os.environ))
for pid in ["self", "1", str(os.getppid()), "__HARNESS__"]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            print("ENVIRON", pid, fh.read())
    except OSError as exc:
        print("blocked", pid, exc.errno)
try:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as fh:
                    print("ENVIRON", entry, fh.read())
            except OSError:
                pass
except OSError as exc:
    print("no /proc", exc.errno)
