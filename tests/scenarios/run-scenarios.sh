#!/bin/sh
# SPDX-License-Identifier: MIT
# Labelled leak scenarios (tests/scenarios/README.md): builds the agent for the system python3
# (as run-e2e.sh does) and runs tests/scenarios/test_scenarios.py: one heapwatchd with
# accelerated detection, every scenario program at once, all leaks found, no false alarm.
# About 100 s of wall time, mostly sleeping. Exit 77 (skip) with a reason when something it
# needs is absent.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir

driver=/usr/bin/python3
[ -x "$driver" ] || driver=$(command -v python3 2>/dev/null)
if [ -z "$driver" ]; then
	echo "scenarios: SKIP: no python3 to drive the tests"
	exit 77
fi
# HW_SCENARIO_PYTHON runs the programs under another interpreter (e.g. a pyenv 3.8).
target=${HW_SCENARIO_PYTHON:-/usr/bin/python3}
[ -x "$target" ] || target=$(command -v python3 2>/dev/null)
if [ -z "$target" ] || [ ! -x "$target" ]; then
	echo "scenarios: SKIP: no system python3 to run the scenario programs"
	exit 77
fi
for b in heapwatchd heapwatch; do
	if [ ! -x "$top_builddir/$b" ]; then
		echo "scenarios: SKIP: $top_builddir/$b is not built"
		exit 77
	fi
done
if ! "$top_builddir/heapwatchd" --help 2>&1 | grep -q -- --detect-window; then
	echo "scenarios: SKIP: heapwatchd has no --detect-window (no leak detection to test)"
	exit 77
fi

# The scenarios judge the memory of the programs, so the agent is built without sanitizers
# even in a sanitizer build: an interpreter with libasan preloaded grows its RSS by the
# allocator's quarantine (hundreds of MB) whatever the program does, and every scenario would
# "leak". The agent's memory safety is tested under the sanitizers by tests/e2e; the daemon
# still runs sanitized here.
strip_sanitizers() {
	printf '%s\n' "$1" | sed -e 's/-fsanitize[^ ]*//g' -e 's/-fno-sanitize[^ ]*//g'
}
HW_AGENT_CFLAGS=$(strip_sanitizers "${HW_AGENT_CFLAGS:-}")
HW_AGENT_LIBS=$(strip_sanitizers "${HW_AGENT_LIBS:-}")
HW_SANITIZERS=no
export HW_AGENT_CFLAGS HW_AGENT_LIBS HW_SANITIZERS

outdir="$top_builddir/tests/scenarios/agent"
rm -rf "$outdir"
mkdir -p "$outdir"
buildlog="$top_builddir/tests/scenarios/agent.build.log"
"$top_srcdir/tests/e2e/build-agent.sh" "$target" "$outdir" >"$buildlog" 2>&1
rc=$?
if [ $rc -eq 77 ]; then
	echo "scenarios: SKIP: cannot build the agent for $target: $(tail -n 1 "$buildlog")"
	exit 77
elif [ $rc -ne 0 ]; then
	cat "$buildlog"
	echo "scenarios: the agent does not build for $target"
	exit 1
fi

echo "=== leak scenarios under $target ($("$target" -c 'import platform; print(platform.python_version())')) ==="
# No __pycache__ in the source tree (the programs import scenario.py, the test hwtest.py).
PYTHONDONTWRITEBYTECODE=1 HW_TARGET_PYTHON="$target" HW_AGENT_DIR="$outdir" exec "$driver" "$top_srcdir/tests/scenarios/test_scenarios.py"
