"""Process containment: nothing a program starts outlives its run, and each run is its own uid/cgroup.

Uses the low-level `spawn.start` so the test knows the run's uid and cgroup. Run:
``pytest tests/sandbox/test_sandbox_processes.py``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sdbench.sandbox import run_program, sandbox_info
from sdbench.sandbox.spawn import Limits, start

ESCAPES = {
    "fork_bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "setsid_double_fork": "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                          "        time.sleep(600)\n    os._exit(0)\ntime.sleep(600)\n",
    "threads": "import threading, time\nfor _ in range(8):\n"
               "    threading.Thread(target=time.sleep, args=(600,)).start()\n",
}


def processes_of(uid: int) -> list[str]:
    """Live (not zombie) processes of `uid`, as "pid state"."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{entry}/status").read_text().splitlines())
        except (OSError, ValueError):
            continue
        if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith(("Z", "X")):
            found.append(f"{entry} {fields['State'].strip()}")
    return found


def settle(uid: int, seconds: float = 3.0) -> list[str]:
    """Processes of `uid` still alive after giving SIGKILLed ones time to finish exiting."""
    deadline = time.monotonic() + seconds
    while (left := processes_of(uid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_nothing_survives_the_run(name: str) -> None:
    layers = sandbox_info().layers
    if name == "fork_bomb" and not (layers["nproc"].active or layers["cgroup"].active):
        pytest.skip("no process-count limit here (RLIMIT_NPROC or a pids cgroup): a fork bomb would hurt the host")
    child = start("run", {"prog.py": ESCAPES[name]}, Limits(timeout=1.5), info=sandbox_info(),
                  extra={"program": "prog.py"})
    try:
        finished = child.wait(time.monotonic() + 1.5)
        assert not finished
    finally:
        child.cleanup()
    if child.uid is not None:
        assert settle(child.uid) == []
    for cg in child.cgroups:
        assert not cg.exists()
    assert not child.run_dir.exists()


def test_run_is_inside_its_cgroup() -> None:
    info = sandbox_info()
    if info.cgroup_base is None:
        pytest.skip(info.layers["cgroup"].detail)
    child = start("run", {"prog.py": "import time\ntime.sleep(30)\n"}, Limits(timeout=5), info=sandbox_info(),
                  extra={"program": "prog.py"})
    try:
        pids_cg = child.cgroups[0]
        assert (pids_cg / "pids.max").read_text().strip() == str(Limits().nproc)
        for cg in child.cgroups:
            deadline = time.monotonic() + 5
            while not (cg / "cgroup.procs").read_text().split() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert (cg / "cgroup.procs").read_text().split()
    finally:
        child.cleanup()


def test_fresh_uid_per_run() -> None:
    info = sandbox_info()
    if not info.layers["uid"].active:
        pytest.skip(info.layers["uid"].detail)
    uids = {run_program("import os\nprint(os.getuid(), os.geteuid(), os.getgroups())").stdout_tail for _ in range(2)}
    assert len(uids) == 2
    for line in uids:
        uid, euid, groups = line.split(" ", 2)
        assert uid == euid and int(uid) >= 1_000_000 and groups.strip() == "[]"


def test_concurrent_runs_from_threads() -> None:
    """A grading pool: runs from several threads at once stay separate (own uid, cgroup, files)."""
    from concurrent.futures import ThreadPoolExecutor

    from sdbench.sandbox import run_tests

    def grade(i: int) -> bool:
        return run_tests(f"def f(x):\n    return x + {i}\n", f"assert f(1) == {1 + i}\n", timeout=20).passed

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(grade, range(8)))


def test_no_privileges_left() -> None:
    """The program cannot regain root, gain privileges through exec, or see the harness's processes."""
    info = sandbox_info()
    if not info.layers["uid"].active:
        pytest.skip(info.layers["uid"].detail)
    src = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print('nnp', libc.prctl(39, 0, 0, 0, 0))\n"  # PR_GET_NO_NEW_PRIVS
        "for name, call in [('setuid', lambda: os.setuid(0)), ('setgid', lambda: os.setgid(0)),\n"
        "                   ('setgroups', lambda: os.setgroups([0]))]:\n"
        "    try:\n"
        "        call()\n"
        "        print('GAINED', name)\n"
        "    except OSError as exc:\n"
        "        print('denied', name, exc.errno)\n"
    )
    result = run_program(src)
    assert result.status == "ok", result
    assert "nnp 1" in result.stdout_tail and "GAINED" not in result.stdout_tail
    assert result.stdout_tail.count("denied") == 3
