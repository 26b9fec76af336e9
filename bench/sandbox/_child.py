"""The process that runs inside the sandbox: confine itself, then run, serve or judge.

Started by `spawn.py` as `python -I -S _child.py MODE CONFIG` (CONFIG: hex of a marshalled dict
from the parent), inside bubblewrap when available; never imported by the harness. Order
matters: the uid drop, Landlock, seccomp and rlimits are all applied before a single line of
untrusted code runs; a layer the parent asked for that fails to apply makes the child exit with
code 121 (fail closed). Modes:

- ``run``: execute the program file as ``__main__`` (stdin/stdout/stderr are the parent's files).
- ``serve``: execute the program as module ``solution`` (so ``if __name__ == "__main__"`` blocks
  stay quiet), then answer the judge's requests on two pipe fds: look up a global, call a
  reference, read an attribute. Results cross as plain data (see `_wire.py`).
- ``judge``: execute the *trusted* tests; every free name the tests do not bind themselves (and
  that is neither a builtin nor a stdlib module), and ``solution.<name>`` for tests that import
  the program as module ``solution``, is a stand-in that forwards calls to ``serve``.
  No program code ever runs here, so the program cannot patch asserts, builtins or `==`; the
  result goes to a report fd only this process holds.
- ``calls``: run many small programs, each in its own forked process, and report what their
  entry function returned on given inputs (`_calls.py`); no program code runs in this process.
- ``probe``: apply what was asked, report what worked instead of failing.
"""

from __future__ import annotations

import builtins
import marshal
import os
import sys
import types

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import _confine  # noqa: E402

if sys.argv[1:2] != ["run"]:
    import _wire  # noqa: E402 - json is only worth its import time when values cross
if sys.argv[1:2] == ["calls"]:
    import _calls  # noqa: E402
del sys.path[0]
for _name in ("_confine", "_wire", "_calls"):
    sys.modules.pop(_name, None)

CONFINE_FAILED = 121
# Protocol methods a program object may serve; comparisons are deliberately absent.
_PROTOCOL = {"iter": iter, "next": next, "len": len, "str": str, "bool": bool,
             "getitem": lambda obj, key: obj[key], "contains": lambda obj, item: item in obj}
_SPECIAL_EXC = {"SystemExit", "KeyboardInterrupt", "GeneratorExit", "StopIteration", "StopAsyncIteration"}


def _normal_scheduling() -> None:
    if os.sched_getscheduler(0) not in (os.SCHED_OTHER, os.SCHED_BATCH, os.SCHED_IDLE):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def _join_cgroups(fds: list[int]) -> None:
    """Move this process into the run's cgroups through the cgroup.procs fds the parent opened."""
    for fd in fds:
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def confine(cfg: dict, strict: bool) -> dict[str, str]:
    """Apply the requested layers; returns {layer: "ok" | error}. Exits 121 on failure if strict."""
    done: dict[str, str] = {}
    # A realtime harness (chrt) must not hand realtime priority to untrusted code, and RT tasks
    # cannot join a cpu cgroup that has no RT budget: back to the normal policy first.
    steps = [("sched", _normal_scheduling)]
    if cfg["cgroup_fds"]:
        steps.append(("cgroup", lambda: _join_cgroups(cfg["cgroup_fds"])))
    if cfg.get("uid") is not None:
        steps.append(("uid", lambda: _confine.drop_privileges(int(cfg["uid"]))))
    if cfg.get("landlock"):
        ll = cfg["landlock"]
        steps.append(("landlock", lambda: _confine.apply_landlock(ll["read"], ll["write"], ll["rw_files"])))
    rl = cfg["rlimits"]
    steps.append(("rlimits", lambda: _confine.apply_rlimits(**rl)))
    if cfg.get("seccomp"):
        steps.append(("seccomp", lambda: _confine.apply_seccomp(cfg["seccomp"] == "metadata")))
    for name, step in steps:
        try:
            result = step()
            done[name] = "ok" if result is None else f"ok {result}"
        except Exception as exc:  # noqa: BLE001 - reported, then fail closed
            done[name] = f"{type(exc).__name__}: {exc}"
            if strict:
                os.write(2, f"sdbench-sandbox: could not apply {name}: {exc}\n".encode())
                os._exit(CONFINE_FAILED)
    return done


def _load(path: str, module_name: str) -> tuple[types.ModuleType, types.CodeType]:
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        source = fh.read()
    module = types.ModuleType(module_name)
    module.__file__ = path
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    return module, compile(source, path, "exec", dont_inherit=True)


def _print_user_traceback(exc: BaseException) -> None:
    import traceback

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)


def mode_run(cfg: dict) -> None:
    module, code = _load(cfg["program"], "__main__")
    sys.modules["__main__"] = module
    sys.argv = [cfg["program"]]
    try:
        exec(code, module.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - behave like the interpreter
        _print_user_traceback(exc)
        sys.exit(1)


def mode_serve(cfg: dict) -> None:
    req, resp = cfg["fds"]["req"], cfg["fds"]["resp"]
    send, recv, encode, decode = _wire.send, _wire.recv, _wire.encode, _wire.decode
    module, code = _load(cfg["program"], "solution")
    sys.modules["solution"] = module
    sys.argv = [cfg["program"]]
    try:
        exec(code, module.__dict__)
    except BaseException as exc:  # noqa: BLE001 - the judge sees a dead program
        _print_user_traceback(exc)
        sys.stderr.flush()
        os._exit(1)
    table: dict[int, object] = {}

    def ref(obj: object) -> int:
        table[len(table) + 1] = obj
        return len(table)

    while True:
        msg = recv(req)
        if msg is None:
            break
        try:
            op = msg["op"]
            if op == "get":
                if msg["name"] not in module.__dict__:
                    raise NameError(f"name {msg['name']!r} is not defined")
                result = module.__dict__[msg["name"]]
            elif op == "call":
                args = decode(msg["args"], table.__getitem__)
                kwargs = decode(msg["kwargs"], table.__getitem__)
                result = table[msg["ref"]](*args, **kwargs)
                # Mutable arguments go back too, so in-place algorithms (`xs.sort()`) are graded fairly.
                back = {str(i): encode(a, ref) for i, a in enumerate(args) if type(a) in (list, dict, set)}
                send(resp, {"ok": encode(result, ref), "args": back})
                continue
            elif op == "getattr":
                result = getattr(table[msg["ref"]], str(msg["attr"]))
            elif op in _PROTOCOL:
                args = decode(msg["args"], table.__getitem__)
                if op == "next":
                    try:
                        result = next(table[msg["ref"]])
                    except StopIteration:
                        send(resp, {"stop": True})
                        continue
                else:
                    result = _PROTOCOL[op](table[msg["ref"]], *args)
            else:
                raise ValueError(f"unknown op {op!r}")
            out = {"ok": encode(result, ref)}
        except BaseException as exc:  # noqa: BLE001 - forwarded to the judge
            try:
                text = str(exc)[:2000]
            except BaseException:  # noqa: BLE001
                text = "<unprintable>"
            out = {"exc": [type(exc).__name__, text]}
        send(resp, out)


class RemoteGone(BaseException):
    """The program died or broke the protocol; a BaseException so `except Exception` can't hide it."""


class RemoteError(Exception):
    """An exception raised by the program that is not a builtin exception type."""


def mode_judge(cfg: dict) -> dict:
    req, resp = cfg["fds"]["req"], cfg["fds"]["resp"]
    send, recv, encode, decode = _wire.send, _wire.recv, _wire.encode, _wire.decode

    class Remote:
        """Stand-in for an object living in the program's process: call it or read attributes."""

        __slots__ = ("_sdb_id",)

        def __init__(self, rid: int) -> None:
            object.__setattr__(self, "_sdb_id", rid)

        def __call__(self, *args: object, **kwargs: object) -> object:
            return rpc({"op": "call", "ref": self._sdb_id, "args": encode(list(args), _ref_of),
                        "kwargs": encode(kwargs, _ref_of)}, args)

        def __getattr__(self, name: str) -> object:
            if name.startswith("__"):
                raise AttributeError(name)
            return rpc({"op": "getattr", "ref": self._sdb_id, "attr": name})

        def __repr__(self) -> str:
            return f"<program object #{self._sdb_id}>"

        def _op(self, op: str, *args: object, want: type | None = None) -> object:
            result = rpc({"op": op, "ref": self._sdb_id, "args": encode(list(args), _ref_of)})
            if want is not None and type(result) is not want:
                raise TypeError(f"{op}() of a program object returned {type(result).__name__}")
            return result

        def __iter__(self) -> object:
            return self._op("iter")

        def __next__(self) -> object:
            return self._op("next")

        def __len__(self) -> int:
            return self._op("len", want=int)  # type: ignore[return-value]

        def __str__(self) -> str:
            return self._op("str", want=str)  # type: ignore[return-value]

        def __bool__(self) -> bool:
            return self._op("bool", want=bool)  # type: ignore[return-value]

        def __getitem__(self, key: object) -> object:
            return self._op("getitem", key)

        def __contains__(self, item: object) -> bool:
            return self._op("contains", item, want=bool)  # type: ignore[return-value]

    def _ref_of(obj: object) -> int:
        if type(obj) is Remote:
            return obj._sdb_id
        raise TypeError(f"cannot pass a {type(obj).__name__} to the program")

    def sync_args(args: tuple, back: object) -> None:
        """Apply the program's in-place changes to list/dict/set arguments (same type only)."""
        if type(back) is not dict:
            raise _wire.WireError("malformed argument update")
        for key, data in back.items():
            i = int(key)
            orig, new = args[i], decode(data, Remote)
            if type(orig) is not type(new) or type(orig) not in (list, dict, set):
                raise _wire.WireError("argument update changes a type")
            if type(orig) is list:
                orig[:] = new
            else:
                orig.clear()
                orig.update(new)

    def rpc(msg: dict, args: tuple | None = None) -> object:
        try:
            send(req, msg)
            answer = recv(resp)
        except OSError as exc:
            raise RemoteGone(f"program unreachable: {exc}") from None
        if answer is None:
            raise RemoteGone("program exited")
        if msg["op"] == "next" and answer.get("stop") is True:
            raise StopIteration
        try:
            if "ok" in answer:
                result = decode(answer["ok"], Remote)
                if args is not None and "args" in answer:
                    sync_args(args, answer["args"])
                return result
            name, text = (str(v) for v in answer["exc"])
        except (KeyError, TypeError, ValueError, IndexError, _wire.WireError) as exc:
            raise RemoteGone(f"malformed answer: {exc}") from None
        cls = getattr(builtins, name, None)
        if name in _SPECIAL_EXC or not isinstance(cls, type) or not issubclass(cls, Exception):
            raise RemoteError(f"{name}: {text}")
        raise cls(text)

    import ast

    with open(cfg["tests"], encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), "tests.py")
    namespace: dict = {"__name__": "__main__", "__builtins__": builtins}

    class SolutionModule(types.ModuleType):
        """`import solution` / `from solution import f` in the tests: attributes come from the program."""

        def __getattr__(self, name: str) -> object:
            if name.startswith("__"):
                raise AttributeError(name)
            try:
                return rpc({"op": "get", "name": name})
            except NameError:
                raise AttributeError(name) from None

    sys.modules["solution"] = SolutionModule("solution")
    for name in cfg["names"]:
        if name in cfg["modules"]:  # a stdlib module the tests use without importing it
            try:
                namespace[name] = __import__(name)
                continue
            except ImportError:
                pass
        try:
            namespace[name] = rpc({"op": "get", "name": name})
        except NameError:
            pass
        except BaseException as exc:  # noqa: BLE001
            return {"passed": False, "error": f"{type(exc).__name__}: {exc}", "line": 0, "tests_passed": 0}
    # Top-level statements one by one: a failing assert (or bare call such as `check(f)`) is counted
    # and the next one still runs; a failing setup statement (import, def, assignment) ends the run.
    passed, error, line = 0, None, 0
    for stmt in tree.body:
        is_test = isinstance(stmt, (ast.Assert, ast.Expr))
        try:
            exec(compile(ast.Module([stmt], []), "tests.py", "exec", dont_inherit=True), namespace)
        except BaseException as exc:  # noqa: BLE001 - any escape is a failed test
            if error is None:
                import traceback

                line = stmt.lineno
                for frame, lineno in traceback.walk_tb(exc.__traceback__):
                    if frame.f_code.co_filename == "tests.py":
                        line = lineno
                text = str(exc)[:500]
                error = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            if not is_test or isinstance(exc, RemoteGone):
                break
            continue
        passed += is_test
    return {"passed": error is None, "error": error or "", "line": line, "tests_passed": passed}


def main() -> None:
    mode = sys.argv[1]
    cfg = marshal.loads(bytes.fromhex(sys.argv[2]))
    if mode != "run":  # values cross as decimal text; a plain run keeps Python's default limit
        sys.set_int_max_str_digits(0)
    if mode == "probe":
        report = {"layers": confine(cfg, strict=False), "uid": os.getuid(), "pid": os.getpid()}
        _wire.send(cfg["fds"]["report"], report)
        return
    confine(cfg, strict=True)
    if mode == "run":
        mode_run(cfg)
    elif mode == "serve":
        mode_serve(cfg)
    elif mode == "judge":
        _wire.send(cfg["fds"]["report"], mode_judge(cfg))
    elif mode == "calls":
        _wire.send(cfg["fds"]["report"], _calls.run_jobs(cfg))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
