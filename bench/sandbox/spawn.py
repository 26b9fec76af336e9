"""Starting one sandboxed child: the private run directory, uid, cgroups, bubblewrap argv, waiting and killing.

Each run gets a private directory (stdout/stderr/report files only the parent can reach), a fresh
unprivileged uid when the harness is root, per-run pids/memory/cpu cgroups where available,
bubblewrap namespaces when available (read-only runtime, size-capped tmpfs at /tmp, new
PID/net/IPC/UTS namespaces, --die-with-parent), and inside the child Landlock + seccomp + rlimits
before the program's first line (see `_child.py`). A wall-clock deadline SIGKILLs the whole
process group and cgroup; without a PID namespace every process of the run's uid is killed too.
Used by `runner.run_program` and `grading.run_tests`; not a public API.
"""

from __future__ import annotations

import itertools
import marshal
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdbench.sandbox import _wire
from sdbench.sandbox._info import CHILD_DIR, SandboxInfo, nproc_counts_alone

CHILD = os.path.join(CHILD_DIR, "_child.py")
CONFINE_FAILED = 121
TAIL_BYTES = 4096
TMPFS_MB = 64
_UID_RANGE = (2_000_000, 2_900_000)


@dataclass(frozen=True)
class Limits:
    timeout: float = 10.0
    memory_mb: int = 512
    fsize_mb: int = 16
    nofile: int = 64
    nproc: int = 64
    cpus: float = 1.0       # CPU quota of the whole run, where a cpu cgroup is available


@dataclass
class Child:
    """A started sandbox child and the private directory holding its files."""

    proc: subprocess.Popen[bytes]
    run_dir: Path
    uid: int | None
    info: SandboxInfo
    cgroups: list[Path] = field(default_factory=list)  # the pids cgroup first, then memory/cpu ones if separate

    def file(self, name: str) -> Path:
        return self.run_dir / name

    def _kill_group(self) -> None:
        # Only while the leader is unreaped: a zombie still holds its pid, so the group id is ours.
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def kill(self) -> None:
        """SIGKILL everything the run started: its group, its cgroup, and (no PID namespace) its uid."""
        self._kill_group()
        for cg in self.cgroups:
            _kill_cgroup(cg)
        if self.info.bwrap is None and self.uid is not None:
            # No PID namespace: also kill anything of this run's uid that left the group (setsid).
            # kill(-1) reaches every process the caller may signal (all of this uid), except itself.
            subprocess.run([sys.executable, "-I", "-S", "-c", "import os; os.kill(-1, 9)"], user=self.uid,
                           group=self.uid, extra_groups=[], env={}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)

    def _exited_by(self, deadline: float) -> bool:
        try:
            pidfd = os.pidfd_open(self.proc.pid)
        except OSError:  # pre-5.3 kernel: Popen.wait polls (and reaps) instead
            try:
                self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                return True
            except subprocess.TimeoutExpired:
                return False
        try:
            poller = select.poll()  # not select(): the harness may hold more than FD_SETSIZE fds
            poller.register(pidfd, select.POLLIN)
            return bool(poller.poll(max(0.0, deadline - time.monotonic()) * 1000))
        finally:
            os.close(pidfd)

    def wait(self, deadline: float) -> bool:
        """Wait for the child until the deadline; False (after killing everything) when it passed.

        Either way the rest of its process group is killed before the leader is reaped."""
        finished = self._exited_by(deadline)
        if finished:
            self._kill_group()
        else:
            self.kill()
        self.proc.wait()
        return finished

    def cleanup(self) -> None:
        """Kill whatever is left, reap, and remove the run's directory, cgroup and uid reservation."""
        self.kill()
        self.proc.wait()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if self.uid is not None:
            with _uids_lock:
                _uids_in_use.discard(self.uid)
        for cg in self.cgroups:
            for _ in range(500):  # the last tasks can take a moment to leave an emptied cgroup
                try:
                    os.rmdir(cg)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    _kill_cgroup(cg)
                    time.sleep(0.002)

    def oom_killed(self) -> bool:
        """Whether the kernel OOM-killed a process of the run (its memory cgroup hit the limit)."""
        for cg in self.cgroups:
            for name in ("memory.oom_control", "memory.events"):  # cgroup v1, v2
                try:
                    text = (cg / name).read_text()
                except OSError:
                    continue
                for line in text.splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
                        return True
        return False

    def tail(self, name: str) -> tuple[str, int]:
        path = self.file(name)
        try:
            with open(path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - TAIL_BYTES))
                data = fh.read(TAIL_BYTES)
        except OSError:
            return "", 0
        return data.decode("utf-8", errors="replace"), size

    def report(self) -> dict[str, Any] | None:
        try:
            fd = os.open(self.file("report"), os.O_RDONLY)
        except OSError:
            return None
        try:
            return _wire.recv(fd)
        except (ValueError, _wire.WireError):
            return None
        finally:
            os.close(fd)


def _kill_cgroup(cgroup: Path) -> None:
    """SIGKILL every task in the cgroup until it is empty (pids.max bounds how many can appear)."""
    for _ in range(100):
        try:
            pids = [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.001)


_counter = itertools.count()
_uids_lock = threading.Lock()
_uids_in_use: set[int] = set()


def _take_uid() -> int:
    """A uid no other live run of this process uses (random, so other harness processes rarely collide)."""
    with _uids_lock:
        while (uid := random.randrange(*_UID_RANGE)) in _uids_in_use:
            pass
        _uids_in_use.add(uid)
        return uid


def _make_cgroups(info: SandboxInfo, limits: Limits) -> tuple[list[Path], list[int]]:
    """Fresh per-run cgroups (pids; memory and cpu when available) and fds on their cgroup.procs files;
    the child moves itself in through the fds before running anything."""
    name = f"run-{os.getpid()}-{next(_counter)}"
    mem = (limits.memory_mb * 2) << 20  # all the run's processes together; RLIMIT_AS caps each one
    wanted = [(info.cgroup_base, {"pids.max": limits.nproc}),
              (info.memcg_base, {"memory.limit_in_bytes": mem, "memory.memsw.limit_in_bytes": mem,
                                 "memory.max": mem, "memory.swap.max": 0}),
              (info.cpucg_base, {"cpu.cfs_period_us": 100_000, "cpu.cfs_quota_us": int(limits.cpus * 100_000),
                                 "cpu.max": f"{int(limits.cpus * 100_000)} 100000"})]
    made: list[Path] = []
    fds: list[int] = []
    try:
        for base, settings in wanted:
            if base is None:
                continue
            cg = Path(base) / name
            if cg not in made:  # on cgroup v2 both controllers share one directory
                cg.mkdir()
                made.append(cg)
                fds.append(os.open(cg / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC))
            for file, value in settings.items():
                if (cg / file).exists():
                    (cg / file).write_text(str(value))
        return made, fds
    except OSError:
        for fd in fds:
            os.close(fd)
        for cg in made:
            os.rmdir(cg)
        raise


def _bwrap_argv(info: SandboxInfo, inputs: dict[str, Path]) -> list[str]:
    argv = [info.bwrap or "bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv", "--hostname", "sandbox",
            "--cap-drop", "ALL"]
    if os.geteuid() == 0:
        if info.uid_mode == "inside":
            argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user"]
    # /tmp first: a runtime root below /tmp (a venv there, say) is bound on top of it, not hidden by it.
    argv += ["--perms", "1777", "--size", str(TMPFS_MB << 20), "--tmpfs", "/tmp"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    made: set[str] = set()
    for root in info.runtime_roots:
        parts = Path(root).parts[1:-1]
        for i in range(len(parts)):
            anc = "/" + "/".join(parts[: i + 1])
            if anc not in made:
                made.add(anc)
                argv += ["--perms", "0755", "--dir", anc]
        argv += ["--ro-bind", root, root]
    for extra in ("/etc/ld.so.cache", "/etc/localtime"):
        argv += ["--ro-bind-try", extra, extra]
    argv += ["--dev", "/dev", "--proc", "/proc", "--chdir", "/tmp", "--setenv", "HOME", "/tmp",
             "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8"]
    for name, src in inputs.items():
        argv += ["--ro-bind", str(src), f"/tmp/{name}"]
    return argv


def start(mode: str, inputs: dict[str, str], limits: Limits, *, info: SandboxInfo,
          fds: dict[str, int] | None = None, stdin: bytes | None = None,
          extra: dict[str, Any] | None = None) -> Child:
    """Start a child in `mode` with the given input files (name -> text) under the layers of `info`
    (`sdbench.sandbox.probe.sandbox_info()`, which probes by calling this); the caller waits/cleans up."""
    # With bwrap the program writes only to its size-capped tmpfs, so our own small files can live in
    # RAM (unlinking on ext4 with discard costs milliseconds); without it the program's writable dir
    # lives under run_dir too, so keep that on disk.
    shm = "/dev/shm" if info.bwrap and os.access("/dev/shm", os.W_OK) else None
    run_dir = Path(tempfile.mkdtemp(prefix="sdbench-sbx-", dir=shm))
    cgroups: list[Path] = []
    cgroup_fds: list[int] = []
    uid: int | None = None
    try:
        os.chmod(run_dir, 0o711)
        uid = _take_uid() if info.uid_mode else None
        work = run_dir / "work"
        work.mkdir(mode=0o700)
        indir = run_dir / "in"
        indir.mkdir(mode=0o755)
        if uid is not None:
            os.chown(work, uid, uid)
        placed: dict[str, Path] = {}
        for name, text in inputs.items():
            path = indir / name
            path.write_text(text, encoding="utf-8", errors="surrogateescape")
            os.chmod(path, 0o644)
            placed[name] = path
        inside = "/tmp" if info.bwrap else str(work)
        if not info.bwrap:
            for name, path in placed.items():
                shutil.copyfile(path, work / name)
        fds = dict(fds or {})
        cgroups, cgroup_fds = _make_cgroups(info, limits)
        report_fd = os.open(run_dir / "report", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        fds["report"] = report_fd
        devnull = "/dev/null"
        cfg: dict[str, Any] = {
            "mode": mode,
            "uid": uid if info.uid_mode == "inside" else None,
            "seccomp": info.seccomp and ("metadata" if os.geteuid() == 0 and uid is None else "base"),
            "landlock": {"read": [*info.runtime_roots, "/bin", "/sbin", "/lib", "/lib64", "/lib32",
                                  "/etc/ld.so.cache", "/etc/localtime", "/dev/urandom", "/dev/random", "/dev/zero"],
                         "write": [inside], "rw_files": [devnull]} if info.landlock_abi else None,
            "rlimits": {"memory_mb": limits.memory_mb, "cpu_s": int(limits.timeout) + 1,
                        "fsize_mb": limits.fsize_mb, "nofile": limits.nofile,
                        "nproc": limits.nproc if nproc_counts_alone(info) else None},
            "fds": fds,
            "cgroup_fds": cgroup_fds,
            **{key: f"{inside}/{name}" for key, name in (extra or {}).items() if key in ("program", "tests", "jobs")},
            **{key: val for key, val in (extra or {}).items() if key not in ("program", "tests", "jobs")},
        }
        py = [sys.executable, "-I", "-S", CHILD, mode, marshal.dumps(cfg).hex()]
        argv = (_bwrap_argv(info, placed) + ["--", *py]) if info.bwrap else py
        stdin_file = None
        if stdin is not None:
            (run_dir / "stdin").write_bytes(stdin)
            stdin_file = open(run_dir / "stdin", "rb")  # noqa: SIM115 - closed below
        with open(run_dir / "stdout", "wb") as out, open(run_dir / "stderr", "wb") as err:
            try:
                popen_user = {"user": uid, "group": uid, "extra_groups": []} if info.uid_mode == "popen" else {}
                proc = subprocess.Popen(argv, stdin=stdin_file or subprocess.DEVNULL, stdout=out, stderr=err,
                                        pass_fds=(*fds.values(), *cgroup_fds), close_fds=True,
                                        start_new_session=True,
                                        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                                        cwd=None if info.bwrap else work, **popen_user)
            finally:
                os.close(report_fd)
                for fd in cgroup_fds:
                    os.close(fd)
                cgroup_fds = []
                if stdin_file is not None:
                    stdin_file.close()
        return Child(proc=proc, run_dir=run_dir, uid=uid, info=info, cgroups=cgroups)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        if uid is not None:
            with _uids_lock:
                _uids_in_use.discard(uid)
        for fd in cgroup_fds:
            os.close(fd)
        for cg in cgroups:
            os.rmdir(cg)
        raise


def probe_child(info: SandboxInfo) -> tuple[dict[str, Any] | None, str]:
    """Run the probe mode once with `info`'s configuration; (report or None, stderr)."""
    try:
        child = start("probe", {}, Limits(timeout=10), info=info)
    except OSError as exc:
        return None, str(exc)
    try:
        child.wait(time.monotonic() + 10)
        report = child.report()
        err = child.tail("stderr")[0].strip().splitlines()
        return report, (err[-1] if err else f"exit code {child.proc.returncode}")
    finally:
        child.cleanup()


def classify(child: Child, finished: bool) -> tuple[str, int | None, str]:
    """(status, exit_code, detail) for a finished or killed child."""
    rc = child.proc.returncode
    if not finished:
        return "timeout", rc, "wall-clock timeout"
    sig = -rc if rc < 0 else (rc - 128 if child.info.bwrap and rc > 128 else 0)
    err = child.tail("stderr")[0]
    if rc == CONFINE_FAILED and "sdbench-sandbox: could not apply" in err:
        return "error", rc, "sandbox layer failed to apply: " + err.strip().splitlines()[-1]
    if sig == signal.SIGXCPU:
        return "timeout", rc, "CPU time limit"
    if sig and child.oom_killed():
        return "memory", rc, "memory limit (cgroup OOM kill)"
    if sig:
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return "killed", rc, f"killed by {name}"
    if rc != 0 and "MemoryError" in err:
        return "memory", rc, "memory limit"
    if rc != 0:
        return "error", rc, f"exit code {rc}"
    return "ok", rc, ""
