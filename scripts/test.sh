#!/bin/sh
# SPDX-License-Identifier: MIT
# The whole test suite, from a fresh clone on Debian 12: installs what is missing, builds with
# warnings as errors, runs `make check` (Check unit tests + end-to-end tests under every
# CPython 3.8-3.13 found), then the same suite again under an AddressSanitizer +
# UndefinedBehaviorSanitizer build, and under a ThreadSanitizer build (all but the tests of
# single-threaded arithmetic: `make check-tsan`), then the fuzzers. Ends with one
# "N passed, N failed" line.
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
"$top/scripts/deps.sh" || exit 1

total_pass=0; total_fail=0; total_skip=0; status=0
# What each failing test said (its assertion and the lines around it), repeated at the very end
# so that a reader of only the tail of a long CI log still sees why it failed.
digest=$(mktemp /tmp/hw-test-digest.XXXXXX)
trap 'rm -f "$digest"' EXIT

# run_suite NAME BUILDDIR [configure args...]; CHECK_TARGET (default check) is what make runs.
run_suite() {
	name=$1; dir=$2; shift 2
	target=${CHECK_TARGET:-check}
	echo "===== $name: build ====="
	if ! "$top/scripts/build.sh" "$dir" "$@"; then
		echo "===== $name: BUILD FAILED ====="
		total_fail=$((total_fail + 1)); status=1
		return
	fi
	echo "===== $name: make $target ====="
	(cd "$top/$dir" && make -j"$(nproc)" "$target" VERBOSE=1 >check.out 2>&1)
	rc=$?
	# The end-to-end logs say which interpreters were tested and which skipped, and why.
	for log in run-e2e.sh.log run-census-e2e.sh.log; do
		sed -n '/=== e2e summary/,$p' "$top/$dir/tests/e2e/$log" 2>/dev/null
	done
	grep -E '^(PASS|FAIL|SKIP|XFAIL|XPASS|ERROR):' "$top/$dir/check.out"
	if [ $rc -ne 0 ]; then
		echo "----- failing test logs ($name) -----"
		for log in $(grep -lE '^(FAIL|ERROR)' $(find "$top/$dir/tests" -name '*.trs') 2>/dev/null); do
			echo "--- ${log%.trs}.log"; tail -n 200 "${log%.trs}.log"
			{
				echo "--- $name: ${log#$top/}"
				grep -E -B2 -A1 '(Error|Exception|error):|^(FAIL|ERROR):|SUMMARY: |timed out' \
					"${log%.trs}.log" | grep -v '^PASS' | head -n 40
			} >>"$digest"
		done
		tail -n 30 "$top/$dir/check.out"
		status=1
	fi
	p=$(grep -c '^PASS:' "$top/$dir/check.out"); f=$(grep -cE '^(FAIL|ERROR|XPASS):' "$top/$dir/check.out")
	s=$(grep -c '^SKIP:' "$top/$dir/check.out")
	echo "===== $name: $p passed, $f failed, $s skipped ====="
	total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + s))
}

run_suite "default build" build
run_suite "ASan+UBSan build" build-asan --enable-sanitizers
# ThreadSanitizer needs the address space layout it was built for; a kernel with more mmap
# randomisation than it supports makes every instrumented program die at start. Then say so.
if tsan_probe=$(printf 'int main(void){return 0;}\n' | ${CC:-gcc} -fsanitize=thread -x c - -o /tmp/hw-tsan-probe.$$ 2>&1 &&
                /tmp/hw-tsan-probe.$$ 2>&1); then
	CHECK_TARGET=check-tsan run_suite "TSan build" build-tsan --enable-sanitizers=thread
else
	echo "===== TSan build: SKIPPED: a ThreadSanitizer program does not run here: $tsan_probe ====="
	total_skip=$((total_skip + 1))
fi
rm -f /tmp/hw-tsan-probe.$$

# Fuzzing (docs/testing.md): each libFuzzer harness for FUZZ_SECONDS (at least 60 s) in its own
# clang build with ASan+UBSan; a crash, hang or leak fails it.
echo "===== fuzzing: build (clang, ASan+UBSan, libFuzzer) ====="
if CC=clang "$top/scripts/build.sh" build-fuzz --enable-sanitizers --enable-fuzzing; then
	fuzz_seconds=${FUZZ_SECONDS:-60}
	[ "$fuzz_seconds" -ge 60 ] 2>/dev/null || fuzz_seconds=60
	if (cd "$top/build-fuzz" && make fuzz FUZZ_SECONDS="$fuzz_seconds"); then
		echo "PASS: make fuzz (${fuzz_seconds}s per harness)"; total_pass=$((total_pass + 1))
	else
		echo "FAIL: make fuzz"; total_fail=$((total_fail + 1)); status=1
	fi
else
	echo "===== fuzzing: BUILD FAILED ====="
	total_fail=$((total_fail + 1)); status=1
fi

if [ -s "$digest" ]; then
	echo "----- why the failing tests failed -----"
	cat "$digest"
fi
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
exit $status
