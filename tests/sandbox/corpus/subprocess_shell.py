# expect-run: ok error
import subprocess

for cmd in ["touch __CANARY__/pwned_subprocess", "kill -9 __HARNESS__"]:
    try:
        print(subprocess.run(cmd, shell=True, capture_output=True))
    except OSError as exc:
        print("blocked", exc.errno)
