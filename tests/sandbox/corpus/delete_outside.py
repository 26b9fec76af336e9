# expect-run: ok error
import os
import shutil

for action, path in [(os.remove, "__CANARY__/canary.txt"), (shutil.rmtree, "__CANARY__"),
                     (os.rename, "__CANARY__/keep.txt"), (os.chmod, "__CANARY__/canary.txt")]:
    try:
        if action is os.rename:
            action(path, path + ".moved")
        elif action is os.chmod:
            action(path, 0)
        else:
            action(path)
        print("DONE", action.__name__, path)
    except OSError as exc:
        print("blocked", action.__name__, path, exc.errno)
