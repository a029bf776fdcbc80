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

py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
if [ -z "$py" ]; then
	echo "store e2e: SKIP: no python3"
	exit 77
fi
outdir="$top_builddir/tests/e2e/store-agent"
rm -rf "$outdir"
"$top_srcdir/tests/e2e/build-agent.sh" "$py" "$outdir" >"$outdir.build.log" 2>&1
rc=$?
if [ $rc -eq 77 ]; then
	echo "store e2e: SKIP: $(tail -n 1 "$outdir.build.log")"
	exit 77
elif [ $rc -ne 0 ]; then
	cat "$outdir.build.log"
	exit 1
fi
HW_TARGET_PYTHON="$py" HW_AGENT_DIR="$outdir" exec "$py" "$top_srcdir/tests/e2e/test_store.py" -v
