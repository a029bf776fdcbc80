#!/bin/sh
# SPDX-License-Identifier: MIT
# LOG_COMPILER for every test: runs the test binary or script, optionally under valgrind
# (HEAPWATCH_TEST_VALGRIND=1 for compiled tests), and passes exit 77 (skipped) through.
set -u
test="$1"; shift
# Check's per-test timeouts catch hangs, not slowness: a sanitizer build on a loaded 2-core
# machine ran test-cli-analyze's 60 s case in 88 s of wall time (25 s of CPU). Stretch them.
CK_TIMEOUT_MULTIPLIER="${CK_TIMEOUT_MULTIPLIER:-5}"
export CK_TIMEOUT_MULTIPLIER
case "$test" in
*.sh|*.py) exec "$test" "$@" ;;
esac
if [ "${HEAPWATCH_TEST_VALGRIND:-0}" = 1 ]; then
	exec "${top_builddir:-.}/libtool" --mode=execute valgrind --quiet --error-exitcode=99 \
		--leak-check=full --errors-for-leak-kinds=definite "$test" "$@"
fi
exec "$test" "$@"
