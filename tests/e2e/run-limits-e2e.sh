#!/bin/sh
# SPDX-License-Identifier: MIT
# End-to-end tests of identity, access and limits (tests/e2e/test_limits.py, docs/security.md):
# run once under the system python3 with raw protocol clients (what they test is the daemon, not
# the agent). Running clients as another uid and in a new pid namespace needs root; those tests
# say why they were skipped.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir

py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3) || { echo "SKIP: no python3"; exit 77; }
exec "$py" "$top_srcdir/tests/e2e/test_limits.py" -v
