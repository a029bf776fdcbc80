#!/bin/sh
# SPDX-License-Identifier: MIT
# The daemon's end-to-end tests (test_e2e.py, test_faults.py, test_store.py) once, under the
# system python3, with every heapwatchd under valgrind memcheck (HW_E2E_VALGRIND=1, see
# hwtest.py): a memory error or a definite leak makes the daemon exit non-zero on SIGTERM, which
# fails the test, and any report of any daemon (also one killed) fails the test program at exit.
# Skipped in a sanitizer build (neither ASan nor TSan mixes with valgrind) and without valgrind.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir

if [ "${HW_SANITIZERS:-no}" != no ]; then
	echo "valgrind e2e: SKIP: sanitizer build (${HW_SANITIZERS}; the default build runs it)"
	exit 77
fi
if ! command -v valgrind >/dev/null 2>&1; then
	echo "valgrind e2e: SKIP: valgrind not installed (scripts/deps.sh installs it)"
	exit 77
fi

. "$top_srcdir/tests/e2e/system-agent.sh"
outdir="$top_builddir/tests/e2e/valgrind-agent"
mkdir -p "$top_builddir/tests/e2e"
build_system_agent "valgrind e2e" "$outdir"
# Deadlines bound failing tests only; the daemon runs ~20-50x slower under memcheck.
export HW_E2E_VALGRIND=1 HW_E2E_DEADLINE="${HW_E2E_DEADLINE:-120}" HW_TARGET_PYTHON="$py" HW_AGENT_DIR="$outdir"
status=0
for t in test_e2e.py test_faults.py test_store.py; do
	[ -f "$top_srcdir/tests/e2e/$t" ] || continue
	echo "=== $t, heapwatchd under valgrind memcheck ==="
	"$py" "$top_srcdir/tests/e2e/$t" -v || status=1
done
exit $status
