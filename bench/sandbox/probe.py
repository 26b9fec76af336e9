"""Which isolation layers work on this machine, probed once per process and cached.

`sandbox_info()` runs cheap checks (bwrap on PATH, Landlock ABI, seccomp support, root) and then
one end-to-end probe child through the real spawn path; each layer is reported as active or with
the reason it is not. Set ``SDBENCH_SANDBOX_DISABLE=bwrap,landlock,seccomp,uid,cgroup,memcg,cpucg`` to switch
layers off (for testing degradation), and ``SDBENCH_SANDBOX_REQUIRE=all`` (or a list) to refuse to run
with fewer layers. Run ``sdbench sandbox info`` to see the result.
"""

from __future__ import annotations

import os
import shutil
import threading

from sdbench.sandbox import _confine, spawn
from sdbench.sandbox._info import (
    CHILD_DIR,
    LAYERS,
    Layer,
    SandboxInfo,
    disabled,
    nproc_counts_alone,
    runtime_roots,
)

__all__ = ["CHILD_DIR", "LAYERS", "Layer", "SandboxInfo", "disabled", "nproc_counts_alone", "runtime_roots",
           "sandbox_info"]

CGROUP_DIR = "sdbench-sandbox"
_lock = threading.Lock()
_cached: SandboxInfo | None = None


def _reap_stale(base: str) -> None:
    """Remove per-run cgroups left behind by harness processes that no longer exist."""
    for name in os.listdir(base):
        parts = name.split("-")
        if len(parts) != 3 or parts[0] != "run" or not parts[1].isdigit() or os.path.exists(f"/proc/{parts[1]}"):
            continue
        try:
            os.rmdir(os.path.join(base, name))
        except OSError:
            pass


_LIMIT_FILES = {"pids": ("pids.max",), "memory": ("memory.limit_in_bytes", "memory.max"),
                "cpu": ("cpu.cfs_quota_us", "cpu.max")}


def _cgroup_base(controller: str) -> tuple[str | None, str]:
    """A writable directory of `controller` (pids | memory) for per-run cgroups, or None and the reason."""
    if os.geteuid() != 0:
        return None, "harness is not root (no delegated cgroup support)"
    try:
        with open("/proc/self/mounts") as fh:
            mounts = [line.split() for line in fh]
    except OSError as exc:
        return None, f"cannot read /proc/self/mounts: {exc.strerror}"
    cands = [m[1] for m in mounts if m[2] == "cgroup" and controller in m[3].split(",")]
    cands += [m[1] for m in mounts if m[2] == "cgroup2"]
    if not cands:
        return None, f"no cgroup filesystem with the {controller} controller is mounted"
    reason = f"no {controller} controller available for new cgroups"
    for mount in cands:
        base = os.path.join(mount, CGROUP_DIR)
        try:
            os.makedirs(base, exist_ok=True)
        except OSError as exc:
            reason = f"cannot create {base}: {exc.strerror}"
            continue
        if any(os.path.exists(os.path.join(base, f)) for f in _LIMIT_FILES[controller]):
            _reap_stale(base)
            return base, ""
        try:
            os.rmdir(base)
        except OSError:
            pass
        reason = f"{mount}: {controller} controller not enabled for child cgroups"
    return None, reason


def sandbox_info(refresh: bool = False) -> SandboxInfo:
    """The probed layers (cached after the first call; `refresh=True` probes again).

    Raises `UserError` when a layer named in ``SDBENCH_SANDBOX_REQUIRE`` (comma-separated, or
    ``all``) is not active, so a misconfigured machine cannot silently grade with weaker isolation."""
    global _cached
    with _lock:
        if _cached is None or refresh:
            _cached = _probe()
        info = _cached
    want = {p.strip() for p in os.environ.get("SDBENCH_SANDBOX_REQUIRE", "").split(",") if p.strip()}
    if "all" in want:
        want = set(LAYERS)
    missing = sorted(n for n in want if n not in info.layers or not info.layers[n].active)
    if missing:
        from sdbench.errors import UserError

        why = "; ".join(f"{n}: {info.layers[n].detail if n in info.layers else 'unknown layer'}" for n in missing)
        raise UserError(f"sandbox layers required by SDBENCH_SANDBOX_REQUIRE are not active: {why}",
                        "install them (.ci/setup-system.sh), or relax SDBENCH_SANDBOX_REQUIRE")
    return info


def _probe() -> SandboxInfo:
    off = disabled()
    info = SandboxInfo(layers={}, runtime_roots=runtime_roots())
    reasons: dict[str, str] = {}
    root = os.geteuid() == 0

    try:
        info.landlock_abi = _confine.landlock_abi()
    except OSError as exc:
        reasons["landlock"] = f"kernel refuses landlock_create_ruleset: {exc.strerror or exc}"
    try:
        _confine.seccomp_arch()
        with open("/proc/self/status") as fh:
            info.seccomp = "Seccomp:" in fh.read()
        if not info.seccomp:
            reasons["seccomp"] = "kernel built without CONFIG_SECCOMP"
    except OSError as exc:
        reasons["seccomp"] = str(exc.strerror or exc)
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        reasons["bwrap"] = "bwrap not found on PATH (apt-get install -y bubblewrap; see .ci/setup-system.sh)"
    info.bwrap = bwrap
    for name in ("landlock", "seccomp", "bwrap", "uid"):
        if name in off:
            reasons[name] = "disabled by SDBENCH_SANDBOX_DISABLE"
    if "landlock" in reasons:
        info.landlock_abi = None
    if "seccomp" in reasons:
        info.seccomp = False
    if "bwrap" in reasons:
        info.bwrap = None
    if not root:
        reasons.setdefault("uid", "harness is not root: the sandbox keeps the harness's uid")
    info.cgroup_base, why = (None, "disabled by SDBENCH_SANDBOX_DISABLE") if "cgroup" in off else _cgroup_base("pids")
    if why:
        reasons["cgroup"] = why
    else:
        if "memcg" not in off:
            info.memcg_base, reasons["memcg"] = _cgroup_base("memory")
        if "cpucg" not in off:
            info.cpucg_base, reasons["cpucg"] = _cgroup_base("cpu")

    # End to end: try the strongest configuration, then step down until the probe child works.
    attempts: list[tuple[str | None, str | None]] = []
    if not root or "uid" in off:
        attempts = [(info.bwrap, None), (None, None)]
    else:
        attempts = [(info.bwrap, "inside"), (None, "popen"), (None, None)]
    report, last_err = None, ""
    for bw, uid_mode in attempts:
        if bw is None and info.bwrap is not None:
            reasons["bwrap"] = f"bwrap failed: {last_err or 'no report'}"
        if bw is None and uid_mode == "inside":
            continue
        info.bwrap, info.uid_mode = bw, uid_mode
        report, last_err = spawn.probe_child(info)
        if report is not None:
            break
        if uid_mode == "popen":
            reasons["uid"] = f"the Python runtime does not start as an unprivileged uid: {last_err}"
    if report is None:
        raise RuntimeError(f"sdbench sandbox: no sandbox configuration starts on this machine: {last_err}")
    applied = report.get("layers", {})
    for name in ("landlock", "seccomp"):
        status = applied.get(name)
        if status is not None and not str(status).startswith("ok"):
            reasons[name] = f"failed to apply: {status}"
            if name == "landlock":
                info.landlock_abi = None
            else:
                info.seccomp = False
    if info.cgroup_base and not str(applied.get("cgroup", "ok")).startswith("ok"):
        reasons["cgroup"] = f"could not join a cgroup: {applied.get('cgroup')}"
        info.cgroup_base = info.memcg_base = info.cpucg_base = None
    if info.uid_mode and not str(applied.get("uid", "ok")).startswith("ok"):
        reasons["uid"] = f"failed to drop privileges: {applied.get('uid')}"
        info.uid_mode = None

    bw_on = info.bwrap is not None
    unpriv = nproc_counts_alone(info)
    layers = {
        "process": (True, "fresh interpreter per program (python -I -S), never exec in the harness"),
        "env": (True, "environment cleared"),
        "setsid": (True, "own session and process group; the wall timeout kills the group"),
        "rlimits": (True, "RLIMIT_AS, CPU, FSIZE, NOFILE, CORE=0"),
        "timeout": (True, "wall-clock deadline, SIGKILL to the whole group"),
        "bwrap": (bw_on, f"bubblewrap {info.bwrap}: read-only runtime, size-capped tmpfs /tmp"
                  if bw_on else reasons.get("bwrap", "unavailable")),
        "pidns": (bw_on, "private PID namespace: everything dies with it" if bw_on else "needs bwrap"),
        "netns": (bw_on, "private network namespace (no interfaces but lo)" if bw_on else "needs bwrap"),
        "uid": (info.uid_mode is not None, f"fresh unprivileged uid per run ({info.uid_mode})"
                if info.uid_mode else reasons.get("uid", "unavailable")),
        "nproc": (unpriv, "RLIMIT_NPROC (enforced: the sandbox is not root)" if unpriv
                  else "RLIMIT_NPROC is not enforced for root and no uid drop is possible" if root
                  else "RLIMIT_NPROC would count every process of the harness's user (no user namespace)"),
        "cgroup": (info.cgroup_base is not None, f"pids cgroup per run under {info.cgroup_base} (pids.max, kill-all)"
                   + (f"; memory cgroup under {info.memcg_base} (all processes together: 2x --memory-mb)"
                      if info.memcg_base else f"; no memory cgroup: {reasons.get('memcg') or 'disabled'}")
                   + (f"; cpu cgroup under {info.cpucg_base} (quota: 1 CPU)"
                      if info.cpucg_base else f"; no cpu cgroup: {reasons.get('cpucg') or 'disabled'}")
                   if info.cgroup_base else reasons.get("cgroup", "unavailable")),
        "landlock": (info.landlock_abi is not None, f"ABI {info.landlock_abi}: read-only runtime, writable temp dir"
                     + (", no TCP" if (info.landlock_abi or 0) >= 4 else "")
                     + (", signals scoped" if (info.landlock_abi or 0) >= 6 else "")
                     if info.landlock_abi is not None else reasons.get("landlock", "unavailable")),
        "seccomp": (info.seccomp, "BPF filter: EPERM for socket, ptrace, mount, unshare, bpf, keyctl, "
                    "process_vm_*, exec, modules, ..." if info.seccomp else reasons.get("seccomp", "unavailable")),
    }
    info.layers = {name: Layer(name, *layers[name]) for name in LAYERS}
    return info
