#!/bin/sh
# SPDX-License-Identifier: MIT
# `make fuzz`: run each libFuzzer harness for FUZZ_SECONDS (default 60) from its seed corpus.
# Usage: run-fuzz.sh SRCDIR/tests/fuzz BUILDDIR/tests/fuzz [harness...] (default: all four).
# New inputs go to BUILDDIR/tests/fuzz/work/<harness>/ (the committed seeds stay as they are);
# a crash is written to BUILDDIR/tests/fuzz/crash-<harness>-<sha1> and fails the run.
# FUZZ_JOBS harnesses (default: one per CPU) run at a time, each a single-threaded libFuzzer
# process on its own core for its FUZZ_SECONDS: one after the other, the four took 4 minutes
# of CI on a 2-core machine with one core idle.
set -u
src=$1; build=$2; shift 2
seconds=${FUZZ_SECONDS:-60}
harnesses=${*:-"agent-protocol analyze config http-route"}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1

# fuzz_one HARNESS: runs it; its report goes to $build/HARNESS.fuzz.report, and the file
# $build/HARNESS.fuzz.failed exists afterwards if it failed.
fuzz_one() {
	h=$1
	bin="$build/fuzz-$h"
	rm -f "$build/$h.fuzz.failed"
	if [ ! -x "$bin" ]; then
		echo "fuzz: $bin not built"
		: >"$build/$h.fuzz.failed"
		return
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
		: >"$build/$h.fuzz.failed"
	fi
}

# In batches of $jobs (the harnesses all run for the same time), each report printed whole.
batch=""; n=0
for h in $harnesses; do
	h=${h#fuzz-}
	fuzz_one "$h" >"$build/$h.fuzz.report" 2>&1 &
	batch="$batch $h"; n=$((n + 1))
	if [ "$n" -ge "$jobs" ]; then
		wait
		for b in $batch; do cat "$build/$b.fuzz.report"; done
		batch=""; n=0
	fi
done
wait
for b in $batch; do cat "$build/$b.fuzz.report"; done

status=0
for h in $harnesses; do
	[ -e "$build/${h#fuzz-}.fuzz.failed" ] && status=1
done
exit $status
