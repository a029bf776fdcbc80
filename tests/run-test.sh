#!/bin/sh
# SPDX-License-Identifier: MIT
# LOG_COMPILER for every test: runs the test binary or script, optionally under valgrind
# (HEAPWATCH_TEST_VALGRIND=1 for compiled tests), and passes exit 77 (skipped) through.
set -u
test="$1"; shift
case "$test" in
*.sh|*.py) exec "$test" "$@" ;;
esac
if [ "${HEAPWATCH_TEST_VALGRIND:-0}" = 1 ]; then
	exec "${top_builddir:-.}/libtool" --mode=execute valgrind --quiet --error-exitcode=99 \
		--leak-check=full --errors-for-leak-kinds=definite "$test" "$@"
fi
exec "$test" "$@"
