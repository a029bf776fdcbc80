#!/bin/sh
# SPDX-License-Identifier: MIT
# End-to-end tests of durable history (tests/e2e/test_store.py): run once, under the system
# python3 (what they test is the daemon's storage, not the interpreter; run-e2e.sh covers every
# interpreter). Mounting tmpfs and creating a memory cgroup need root: the tests that need them
# say why they were skipped.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir

. "$top_srcdir/tests/e2e/system-agent.sh"
outdir="$top_builddir/tests/e2e/store-agent"
build_system_agent "store e2e" "$outdir"
HW_TARGET_PYTHON="$py" HW_AGENT_DIR="$outdir" exec "$py" "$top_srcdir/tests/e2e/test_store.py" -v
