#!/bin/sh
# SPDX-License-Identifier: MIT
# End-to-end tests of identity, access and limits (tests/e2e/test_limits.py, docs/security.md):
# run once under the system python3, mostly with raw protocol clients (what they test is the
# daemon, not the agent); the real agent is built for that interpreter for the pid-namespace
# test, which skips with the reason when it cannot be built. Running clients as another uid and
# in a new pid namespace needs root; those tests say why they were skipped.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir

py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3) || { echo "limits e2e: SKIP: no python3"; exit 77; }
outdir="$top_builddir/tests/e2e/limits-agent"
rm -rf "$outdir"
if "$top_srcdir/tests/e2e/build-agent.sh" "$py" "$outdir" >"$outdir.build.log" 2>&1; then
	HW_AGENT_DIR="$outdir"
else
	echo "limits e2e: the agent did not build for $py (the real-agent test will skip): $(tail -n 1 "$outdir.build.log")"
	HW_AGENT_DIR=
fi
HW_TARGET_PYTHON="$py" HW_AGENT_DIR="$HW_AGENT_DIR" exec "$py" "$top_srcdir/tests/e2e/test_limits.py" -v
