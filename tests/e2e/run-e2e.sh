#!/bin/sh
# SPDX-License-Identifier: MIT
# End-to-end suite driver: finds every CPython 3.8-3.13 on this machine (the system python3,
# python3.X on PATH, pyenv versions), builds the agent for each against its own headers, and
# runs tests/e2e/test_e2e.py (a real heapwatchd, real interpreters, real HTTP) once per
# interpreter. Says which interpreters were tested and which were skipped, and why.
# Passes with the system python3 alone; fails if any tested interpreter fails.
# HW_E2E_TESTS (default test_e2e.py) names the test files to run, HW_E2E_AGENTS the directory
# under tests/e2e/ of the build tree for the agents built: run-census-e2e.sh runs
# test_census.py the same way, as a test of its own so that make -j runs the two side by side.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir
e2e_tests=${HW_E2E_TESTS:-test_e2e.py}

driver=/usr/bin/python3
[ -x "$driver" ] || driver=$(command -v python3)
if [ -z "$driver" ]; then
	echo "e2e: SKIP: no python3 to drive the tests"
	exit 77
fi

workdir="$top_builddir/tests/e2e/${HW_E2E_AGENTS:-agents}"
mkdir -p "$workdir"
candidates="/usr/bin/python3"
for v in 8 9 10 11 12 13; do
	p=$(command -v "python3.$v" 2>/dev/null) && candidates="$candidates $p"
done
for p in /root/.pyenv/versions/*/bin/python3 "${PYENV_ROOT:-/nonexistent}"/versions/*/bin/python3; do
	[ -x "$p" ] && candidates="$candidates $p"
done
[ -n "${HEAPWATCH_E2E_PYTHONS:-}" ] && candidates="$HEAPWATCH_E2E_PYTHONS"

tested=""; skipped=""; failed=""; seen=""
for py in $candidates; do
	case "$py" in
	*/shims/*) continue ;; # pyenv shims only proxy to the versions found directly below
	esac
	info=$("$py" -c 'import os, sys, platform, sysconfig; print("%d.%d %s %s %s %s" % (sys.version_info[0], sys.version_info[1], platform.python_version(), platform.python_implementation(), sysconfig.get_config_var("Py_GIL_DISABLED") or 0, os.path.realpath(sys.executable)))' 2>/dev/null)
	if [ -z "$info" ]; then
		skipped="$skipped\n  $py: does not run"
		continue
	fi
	set -- $info
	mm=$1 full=$2 impl=$3 ft=$4 real=$5
	# One run per real interpreter, however many names lead to it.
	case " $seen " in *" $real "*) continue ;; esac
	seen="$seen $real"
	case "$mm" in
	3.8|3.9|3.10|3.11|3.12|3.13) ;;
	*) skipped="$skipped\n  $py ($full): outside the supported 3.8-3.13"; continue ;;
	esac
	if [ "$impl" != CPython ]; then
		skipped="$skipped\n  $py ($full $impl): not CPython"; continue
	fi
	if [ "$ft" != 0 ]; then
		skipped="$skipped\n  $py ($full): free-threaded build (the agent refuses it at import)"; continue
	fi
	tag=$(echo "$real" | tr '/' '_')
	outdir="$workdir/$tag"
	rm -rf "$outdir"
	buildlog="$workdir/$tag.build.log"
	"$top_srcdir/tests/e2e/build-agent.sh" "$py" "$outdir" >"$buildlog" 2>&1
	rc=$?
	if [ $rc -eq 77 ]; then
		skipped="$skipped\n  $py ($full): $(tail -n 1 "$buildlog")"; continue
	elif [ $rc -ne 0 ]; then
		cat "$buildlog"
		failed="$failed\n  $py ($full): the agent does not build"; continue
	fi
	echo "=== e2e ($e2e_tests) under $py (Python $full) ==="
	ok=true
	for t in $e2e_tests; do
		HW_TARGET_PYTHON="$py" HW_AGENT_DIR="$outdir" "$driver" "$top_srcdir/tests/e2e/$t" -v || ok=false
	done
	if $ok; then
		tested="$tested\n  $py ($full)"
	else
		failed="$failed\n  $py ($full)"
	fi
done

echo "=== e2e summary ($e2e_tests) ==="
printf "interpreters tested and passed:%b\n" "${tested:-\n  (none)}"
[ -n "$skipped" ] && printf "interpreters skipped:%b\n" "$skipped"
[ -n "$failed" ] && printf "interpreters FAILED:%b\n" "$failed"
[ -n "$failed" ] && exit 1
[ -z "$tested" ] && { echo "e2e: no interpreter could be tested"; exit 1; }
exit 0
