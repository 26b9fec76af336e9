"""Fixtures for the sandbox tests (targets in `sandbox_targets.py`). Run: ``pytest tests/sandbox``."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_targets import SECRET_ENV, Targets


@pytest.fixture(scope="session")
def _session_targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Targets]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    victim = subprocess.Popen(["sleep", "600"])
    canary = Path(tmp_path_factory.mktemp("canary_root", numbered=True)) / "canary"
    targets = Targets(canary=canary, secret=secrets.token_hex(16), listener=listener, victim=victim)
    try:
        yield targets
    finally:
        victim.kill()
        victim.wait()
        listener.close()


@pytest.fixture
def targets(_session_targets: Targets, monkeypatch: pytest.MonkeyPatch) -> Iterator[Targets]:
    """Fresh world-writable canary files, the secret in the harness's env, signal receipts recorded."""
    t = _session_targets
    if t.canary.exists():
        for path in sorted(t.canary.rglob("*"), reverse=True):
            path.unlink() if not path.is_dir() else path.rmdir()
        t.canary.rmdir()
    t.canary.mkdir()
    os.chmod(t.canary.parent, 0o755)
    os.chmod(t.canary, 0o777)  # DAC would let anyone write: only the sandbox may stop it
    for name, text in [("canary.txt", "original\n"), ("keep.txt", "keep\n"), ("secret.txt", t.secret)]:
        (t.canary / name).write_text(text)
        os.chmod(t.canary / name, 0o666)
    monkeypatch.setenv(SECRET_ENV, t.secret)
    t.signals.clear()
    old = {s: signal.signal(s, lambda signum, _frame: t.signals.append(signum))
           for s in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)}
    t.connections()
    try:
        yield t
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
