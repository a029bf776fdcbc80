#!/bin/sh
# SPDX-License-Identifier: MIT
# `make fuzz`: run each libFuzzer harness for FUZZ_SECONDS (default 60) from its seed corpus.
# Usage: run-fuzz.sh SRCDIR/tests/fuzz BUILDDIR/tests/fuzz [harness...] (default: all four).
# New inputs go to BUILDDIR/tests/fuzz/work/<harness>/ (the committed seeds stay as they are);
# a crash is written to BUILDDIR/tests/fuzz/crash-<harness>-<sha1> and fails the run.
set -u
src=$1; build=$2; shift 2
seconds=${FUZZ_SECONDS:-60}
harnesses=${*:-"agent-protocol analyze config http-route"}
status=0
for h in $harnesses; do
	h=${h#fuzz-}
	bin="$build/fuzz-$h"
	if [ ! -x "$bin" ]; then
		echo "fuzz: $bin not built" >&2
		status=1
		continue
	fi
	mkdir -p "$build/work/$h"
	# The dictionary (protocol members, config keys, URL pieces) helps past the parsers' first checks.
	dict=""
	[ -f "$src/$h.dict" ] && dict="-dict=$src/$h.dict"
	echo "fuzz: $h for ${seconds}s (seeds: $src/corpus/$h)"
	# -timeout: one input taking longer is a hang, reported like a crash.
	# ASan's leak check stays on: a leak is a finding too.
	if "$bin" -max_total_time="$seconds" -timeout=25 -print_final_stats=1 $dict \
		-artifact_prefix="$build/crash-$h-" "$build/work/$h" "$src/corpus/$h" >"$build/$h.fuzz.log" 2>&1; then
		grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+.*DONE)' "$build/$h.fuzz.log" | sed "s/^/fuzz: $h: /"
	else
		echo "fuzz: $h FAILED; the end of its log ($build/$h.fuzz.log):"
		tail -n 60 "$build/$h.fuzz.log"
		ls "$build"/crash-"$h"-* 2>/dev/null | sed 's/^/fuzz: reproducer: /'
		status=1
	fi
done
exit $status
