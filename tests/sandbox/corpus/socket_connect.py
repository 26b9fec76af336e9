# expect-run: ok error
# ruff: noqa: F821 - __NAMES__ are filled in by the test (sandbox_targets.render)
# Tries to reach a listener the test opened on the host's loopback.
import socket

for family, addr in [(socket.AF_INET, ("127.0.0.1", __PORT__)), (socket.AF_INET6, ("::1", __PORT__))]:
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(1)
        s.connect(addr)
        s.sendall(b"pwned")
        print("CONNECTED", addr)
    except OSError as exc:
        print("blocked", addr, exc.errno)
try:
    socket.socketpair()
    print("SOCKETPAIR")
except OSError as exc:
    print("blocked socketpair", exc.errno)
