# expect-run: ok error
# ruff: noqa: F821 - __NAMES__ are filled in by the test (sandbox_targets.render)
# ptrace, process_vm_readv and /proc/<pid>/mem against the harness.
import ctypes

libc = ctypes.CDLL(None, use_errno=True)
print("ptrace attach", libc.ptrace(16, __HARNESS__, 0, 0), ctypes.get_errno())
buf = ctypes.create_string_buffer(64)
iov = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 64)
remote = (ctypes.c_void_p * 2)(0x400000, 64)
print("process_vm_readv", libc.syscall(310, __HARNESS__, iov, 1, remote, 1, 0), ctypes.get_errno())
try:
    with open("/proc/__HARNESS__/mem", "rb") as fh:
        print("MEM", fh.read(16))
except OSError as exc:
    print("blocked mem", exc.errno)
