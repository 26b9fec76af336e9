# expect-run: ok error
# ruff: noqa: F821 - __NAMES__ are filled in by the test (sandbox_targets.render)
# Bypasses the socket module: raw socket()/connect() syscalls through ctypes.
import ctypes
import struct

libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(41, 2, 1, 0)  # socket(AF_INET, SOCK_STREAM, 0) on x86_64
print("socket fd", fd, ctypes.get_errno())
if fd >= 0:
    addr = struct.pack("!HH4s8x", 2, __PORT__, bytes([127, 0, 0, 1]))
    addr = struct.pack("=H", 2) + addr[2:]
    print("connect", libc.connect(fd, addr, len(addr)), ctypes.get_errno())
