#!/bin/sh
# SPDX-License-Identifier: MIT
# End-to-end tests of heapwatchd as a systemd service (tests/e2e/test_systemd.py: socket
# activation, sd_notify readiness/watchdog/reload, the configuration file, the unit files'
# verify and security score) and of zero-code rollout (tests/e2e/test_rollout.py: gunicorn,
# multiprocessing, the HEAPWATCH=1 autoload hook). Run once, under the system python3 (what
# Debian's gunicorn runs under).
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir

. "$top_srcdir/tests/e2e/system-agent.sh"
outdir="$top_builddir/tests/e2e/systemd-agent"
build_system_agent "systemd e2e" "$outdir"
rc=0
export HW_TARGET_PYTHON="$py" HW_AGENT_DIR="$outdir"
"$py" "$top_srcdir/tests/e2e/test_systemd.py" -v || rc=1
"$py" "$top_srcdir/tests/e2e/test_rollout.py" -v || rc=1
exit $rc
