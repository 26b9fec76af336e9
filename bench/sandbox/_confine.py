"""In-process confinement for a sandbox child: Landlock, seccomp, rlimits, privilege drop.

Used by `_child.py` inside the sandbox before any untrusted code runs, and by `probe.py` in the
trusted parent only for the side-effect-free checks (`landlock_abi`, `seccomp_arch`). Stdlib only:
the child runs `python -I -S`, so this file must not import sdbench or third-party packages.
Not meant to be run directly; `sdbench sandbox info` shows what it can apply on this machine.

Landlock: the runtime is read-only (read, execute, list), one directory is fully writable, and
from ABI 4 TCP bind/connect are denied, from ABI 6 signals and abstract unix sockets are scoped to
the sandbox. seccomp: a hand-assembled classic-BPF filter that returns EPERM for sockets, ptrace,
mount, namespaces, bpf, keyrings, cross-process memory access, exec, kernel modules, etc.
"""

from __future__ import annotations

import ctypes
import os
import resource
import stat
import struct

# --- Landlock -------------------------------------------------------------------------------

_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_ABI1 = (1 << 13) - 1          # EXECUTE .. MAKE_SYM
_MAKE_CHAR, _MAKE_BLOCK = 1 << 6, 1 << 11
_REFER, _TRUNCATE, _IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FILE_ONLY = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2

_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def _syscall(nr: int, *args: object) -> int:
    res = _lib().syscall(ctypes.c_long(nr), *args)
    if res < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"syscall {nr}: {os.strerror(err)}")
    return int(res)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; raises OSError when Landlock is unavailable."""
    if os.uname().machine not in ("x86_64", "aarch64"):
        raise OSError(0, f"no landlock syscall numbers for {os.uname().machine}")
    return _syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                    ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION))


def no_new_privs() -> None:
    if _lib().prctl(_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")


def apply_landlock(read_paths: list[str], write_paths: list[str], rw_files: list[str]) -> int:
    """Restrict this process (and its future children) to the given paths; returns the ABI used.

    `read_paths` get read/execute/list, `write_paths` everything, `rw_files` (e.g. /dev/null)
    read+write. Missing paths are skipped. TCP and (ABI >= 6) signals/abstract sockets are denied.
    """
    abi = landlock_abi()
    fs = _FS_ABI1 | (_REFER if abi >= 2 else 0) | (_TRUNCATE if abi >= 3 else 0) | (_IOCTL_DEV if abi >= 5 else 0)
    net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    scoped = (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0
    if abi >= 6:
        attr = struct.pack("=QQQ", fs, net, scoped)
    elif abi >= 4:
        attr = struct.pack("=QQ", fs, net)
    else:
        attr = struct.pack("=Q", fs)
    buf = ctypes.create_string_buffer(attr, len(attr))
    rfd = _syscall(_SYS_LANDLOCK_CREATE_RULESET, buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    try:
        rules = [(p, _EXECUTE | _READ_FILE | _READ_DIR) for p in read_paths]
        rules += [(p, _READ_FILE | _WRITE_FILE | (_TRUNCATE if abi >= 3 else 0)) for p in rw_files]
        rules += [(p, fs & ~(_MAKE_CHAR | _MAKE_BLOCK)) for p in write_paths]  # no device nodes
        for path, access in rules:
            try:
                pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not stat.S_ISDIR(os.fstat(pfd).st_mode):
                    access &= _FILE_ONLY
                rule = ctypes.create_string_buffer(struct.pack("=Qi", access & fs, pfd), 12)
                _syscall(_SYS_LANDLOCK_ADD_RULE, ctypes.c_int(rfd), ctypes.c_int(_RULE_PATH_BENEATH),
                         rule, ctypes.c_uint32(0))
            finally:
                os.close(pfd)
        no_new_privs()
        _syscall(_SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(rfd), ctypes.c_uint32(0))
    finally:
        os.close(rfd)
    return abi


# --- seccomp --------------------------------------------------------------------------------

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# name -> (x86_64, aarch64). aarch64 numbers come from the generic table (not tested here).
_DENIED: dict[str, tuple[int, int]] = {
    "socket": (41, 198), "socketpair": (53, 199), "ptrace": (101, 117), "mount": (165, 40),
    "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51), "unshare": (272, 97),
    "setns": (308, 268), "bpf": (321, 280), "keyctl": (250, 219), "add_key": (248, 217),
    "request_key": (249, 218), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "kexec_load": (246, 104), "kexec_file_load": (320, 294), "init_module": (175, 105),
    "finit_module": (313, 273), "delete_module": (176, 106), "perf_event_open": (298, 241),
    "userfaultfd": (323, 282), "io_uring_setup": (425, 425), "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427), "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264),
    "swapon": (167, 224), "swapoff": (168, 225), "reboot": (169, 142), "syslog": (103, 116),
    "acct": (163, 89), "settimeofday": (164, 170), "clock_settime": (227, 112), "adjtimex": (159, 171),
    "clock_adjtime": (305, 266), "sethostname": (170, 161), "setdomainname": (171, 162),
    "quotactl": (179, 60), "fanotify_init": (300, 262), "open_tree": (428, 428), "move_mount": (429, 429),
    "fsopen": (430, 430), "fsconfig": (431, 431), "fsmount": (432, 432), "fspick": (433, 433),
    "mount_setattr": (442, 442), "pidfd_getfd": (438, 438), "kcmp": (312, 272),
    "lookup_dcookie": (212, 18), "execve": (59, 221), "execveat": (322, 281), "personality": (135, 92),
}
_X86_ONLY = {"iopl": 172, "ioperm": 173, "uselib": 134}
# Landlock does not cover metadata changes; when the sandbox still runs as root (no uid drop), deny them.
_METADATA: dict[str, tuple[int | None, int | None]] = {
    "chmod": (90, None), "fchmod": (91, 52), "fchmodat": (268, 53), "fchmodat2": (452, 452),
    "chown": (92, None), "fchown": (93, 55), "lchown": (94, None), "fchownat": (260, 54),
    "utime": (132, None), "utimes": (235, None), "futimesat": (261, None), "utimensat": (280, 88),
}
_CLONE, _CLONE3 = (56, 220), (435, 435)
# CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME
_CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80
# Calls allowed only on the calling process itself: argument `index` (a pid) must be 0. Without them a
# sandbox that is still root could lower the harness's rlimits (prlimit64) or pin/renice it.
_SELF_ONLY: dict[str, tuple[int, int, int]] = {  # name -> (x86_64, aarch64, arg index)
    "prlimit64": (302, 261, 0), "sched_setaffinity": (203, 122, 0), "sched_setscheduler": (144, 119, 0),
    "sched_setparam": (142, 118, 0), "sched_setattr": (314, 274, 0), "migrate_pages": (256, 238, 0),
    "move_pages": (279, 239, 0), "setpriority": (141, 140, 1),  # also needs which == PRIO_PROCESS
}
_ALWAYS_DENIED_EXTRA: dict[str, tuple[int | None, int | None]] = {
    "mknod": (133, None), "mknodat": (259, 33), "ioprio_set": (251, 30),
}
_EPERM, _ENOSYS = 1, 38
_RET_ALLOW, _RET_ERRNO, _RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06


def seccomp_arch() -> str:
    """The machine name when a syscall table exists for it; raises OSError otherwise."""
    arch = os.uname().machine
    if arch not in _AUDIT_ARCH:
        raise OSError(0, f"no seccomp syscall table for {arch}")
    return arch


def seccomp_filter(metadata: bool = False) -> bytes:
    """The BPF program (packed `struct sock_filter` array) for this architecture.

    `metadata=True` also denies chmod/chown/utime-style calls (for a sandbox that is still root)."""
    arch = seccomp_arch()
    col = 0 if arch == "x86_64" else 1
    nrs = {v[col] for v in _DENIED.values()} | (set(_X86_ONLY.values()) if col == 0 else set())
    nrs |= {nr for v in _ALWAYS_DENIED_EXTRA.values() if (nr := v[col]) is not None}
    if metadata:
        nrs |= {nr for v in _METADATA.values() if (nr := v[col]) is not None}
    ins: list[tuple[int, int, int | str, int | str]] = []   # (code, k, jump-if-true, jump-if-false)
    labels: dict[str, int] = {}

    def op(code: int, k: int, jt: int | str = 0, jf: int | str = 0) -> None:
        ins.append((code, k, jt, jf))

    def label(name: str) -> None:
        labels[name] = len(ins)

    def arg_lo(index: int) -> int:        # offset of args[index]'s low word in struct seccomp_data
        return 16 + 8 * index

    op(_LD_W_ABS, 4)                                   # seccomp_data.arch
    op(_JEQ, _AUDIT_ARCH[arch], 0, "kill")
    op(_LD_W_ABS, 0)                                   # seccomp_data.nr
    if col == 0:
        op(_JGE, 0x40000000, "eperm", 0)               # x32 ABI: refuse outright
    op(_JEQ, _CLONE3[col], "enosys", 0)                # glibc falls back to clone()
    op(_JEQ, _CLONE[col], "clone", 0)
    for name, (*nr_by_arch, index) in _SELF_ONLY.items():
        op(_JEQ, nr_by_arch[col], "setpriority" if name == "setpriority" else f"self{index}", 0)
    for nr in sorted(nrs):
        op(_JEQ, nr, "eperm", 0)
    op(_RET, _RET_ALLOW)
    label("clone")
    op(_LD_W_ABS, arg_lo(0))                           # clone flags
    op(_JSET, _CLONE_NS_FLAGS, "eperm", "allow")
    label("setpriority")
    op(_LD_W_ABS, arg_lo(0))                           # which must be PRIO_PROCESS (0)
    op(_JEQ, 0, "self1", "eperm")
    for index in (0, 1):
        label(f"self{index}")
        op(_LD_W_ABS, arg_lo(index))                   # pid_t: the kernel reads the low word only
        op(_JEQ, 0, "allow", "eperm")
    label("allow")
    op(_RET, _RET_ALLOW)
    label("eperm")
    op(_RET, _RET_ERRNO | _EPERM)
    label("enosys")
    op(_RET, _RET_ERRNO | _ENOSYS)
    label("kill")
    op(_RET, _RET_KILL_PROCESS)

    out = []
    for i, (code, k, jt, jf) in enumerate(ins):
        offsets = [labels[j] - i - 1 if isinstance(j, str) else j for j in (jt, jf)]
        if not all(0 <= o <= 255 for o in offsets):
            raise ValueError(f"BPF jump out of range at {i}")
        out.append(struct.pack("=HBBI", code, offsets[0], offsets[1], k))
    return b"".join(out)


def apply_seccomp(metadata: bool = False) -> int:
    """Install the filter on this process (inherited across fork); returns the denied-call count."""
    prog = seccomp_filter(metadata)
    n = len(prog) // 8
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = struct.pack("=HxxxxxxQ", n, ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog, len(fprog))
    no_new_privs()
    if _lib().prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, fbuf, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")
    return len(prog) // 8


# --- rlimits and identity -------------------------------------------------------------------


def apply_rlimits(*, memory_mb: int, cpu_s: int, fsize_mb: int, nofile: int, nproc: int | None) -> None:
    def lim(res: int, value: int, hard: int | None = None) -> None:
        resource.setrlimit(res, (value, value if hard is None else hard))

    lim(resource.RLIMIT_AS, memory_mb << 20)
    lim(resource.RLIMIT_CPU, cpu_s, cpu_s + 1)
    lim(resource.RLIMIT_FSIZE, fsize_mb << 20)
    lim(resource.RLIMIT_NOFILE, nofile)
    lim(resource.RLIMIT_CORE, 0)
    if nproc is not None:
        lim(resource.RLIMIT_NPROC, nproc)


def drop_privileges(uid: int) -> None:
    """Become `uid` (and gid `uid`) with no supplementary groups and no capabilities."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError(0, "setuid did not take effect")
