#!/usr/bin/env bash
# System packages the tests use; idempotent, safe to run on every CI job.
#   bubblewrap          the sandbox's PID/net/IPC/UTS namespaces and read-only runtime (sdbench.sandbox);
#                       without it the sandbox still works with fewer layers (`sdbench sandbox info`)
#   chromium, chromium-driver   the leaderboard page's browser test (tests/leaderboard, via Playwright)
# Everything else the sandbox uses (Landlock, seccomp, rlimits, cgroups) is reached through the kernel.
set -euo pipefail

missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ ${#missing[@]} -eq 0 ]; then
    echo "setup-system: bubblewrap and chromium present"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-system: no apt-get; install ${missing[*]} with your package manager" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "setup-system: not root and no sudo; cannot install ${missing[*]}" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y "${missing[@]}" \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y "${missing[@]}"; }
echo "setup-system: installed ${missing[*]}"
