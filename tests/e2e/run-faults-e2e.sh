#!/bin/sh
# SPDX-License-Identifier: MIT
# Fault end-to-end tests (tests/e2e/test_faults.py): run once, under the system python3 (what
# they test is the daemon's and the agent's behaviour under faults, not the interpreter).
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir

. "$top_srcdir/tests/e2e/system-agent.sh"
mkdir -p "$top_builddir/tests/e2e"
outdir="$top_builddir/tests/e2e/faults-agent"
build_system_agent "faults e2e" "$outdir"
HW_TARGET_PYTHON="$py" HW_AGENT_DIR="$outdir" exec "$py" "$top_srcdir/tests/e2e/test_faults.py" -v
