#!/usr/bin/env bash
# System packages the sandbox (sdbench.sandbox) uses; idempotent, safe to run on every CI job.
#   bubblewrap: PID/net/IPC/UTS namespaces, read-only runtime and a size-capped tmpfs per program.
# Everything else (Landlock, seccomp, rlimits, cgroups) is reached through the kernel directly.
# Without bubblewrap the sandbox still works, with fewer layers: `sdbench sandbox info` says which.
set -euo pipefail

if command -v bwrap >/dev/null 2>&1; then
    echo "setup-system: bubblewrap present ($(bwrap --version))"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-system: no apt-get; install bubblewrap with your package manager" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "setup-system: not root and no sudo; cannot install bubblewrap" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends bubblewrap \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y --no-install-recommends bubblewrap; }
echo "setup-system: installed $(bwrap --version)"
