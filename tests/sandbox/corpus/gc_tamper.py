# expect-run: ok
# Walks the interpreter's objects to rewrite the sandbox's own helpers (all within its own process).
import gc
import sys

for obj in gc.get_objects():
    if isinstance(obj, dict) and "encode" in obj and "send" in obj:
        obj["encode"] = lambda value, refs=None: 4
for _name, mod in list(sys.modules.items()):
    if hasattr(mod, "exit"):
        try:
            mod.exit = lambda *a: None
        except Exception:
            pass


def f(x):
    return None
