#!/bin/sh
# SPDX-License-Identifier: MIT
# Generate ./configure from configure.ac (run once after a fresh clone).
set -e
cd "$(dirname "$0")"
autoreconf --force --install --verbose >/dev/null
echo "Now run ./configure && make"
