#!/bin/sh
# SPDX-License-Identifier: MIT
# Build the heapwatch agent for any CPython, outside automake: the e2e tests run the agent under
# every interpreter they find, each against its own headers.
#
#   tests/e2e/build-agent.sh PYTHON OUTDIR
#
# Writes OUTDIR/heapwatch<EXT_SUFFIX> and OUTDIR/sitecustomize.py (put OUTDIR on PYTHONPATH).
# Compiler and flags from the environment: CC (default cc), CFLAGS (default -O2 -g), plus
# HW_AGENT_CFLAGS (e.g. warning, -Werror or sanitizer flags), HW_AGENT_LIBS (e.g. the sanitizer
# link flags) and LDFLAGS. The interpreter's headers are included with -isystem: warnings are
# about our code, not theirs.
# Exit 77 (skip) when the interpreter is not a CPython with development headers.
set -eu

if [ $# -ne 2 ]; then
        echo "usage: $0 PYTHON OUTDIR" >&2
        exit 2
fi
PYTHON=$1
OUTDIR=$2
SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)

info=$("$PYTHON" -c '
import sys, sysconfig
paths = sysconfig.get_paths()
print(sys.implementation.name)
print(paths.get("include") or "")
print(paths.get("platinclude") or "")
print(sysconfig.get_config_var("EXT_SUFFIX") or ".so")
print("%d.%d" % sys.version_info[:2])
' 2>/dev/null) || { echo "$0: cannot run $PYTHON" >&2; exit 77; }

impl=$(echo "$info" | sed -n 1p)
inc=$(echo "$info" | sed -n 2p)
platinc=$(echo "$info" | sed -n 3p)
suffix=$(echo "$info" | sed -n 4p)
version=$(echo "$info" | sed -n 5p)

if [ "$impl" != cpython ]; then
        echo "$0: $PYTHON is $impl, not CPython: the agent supports CPython only" >&2
        exit 77
fi
if [ -z "$inc" ] || [ ! -f "$inc/Python.h" ]; then
        echo "$0: $PYTHON ($version) has no development headers (no Python.h in '${inc}')" >&2
        exit 77
fi

jansson_cflags=$(pkg-config --cflags jansson 2>/dev/null || true)
jansson_libs=$(pkg-config --libs jansson 2>/dev/null || echo -ljansson)

mkdir -p "$OUTDIR"
out="$OUTDIR/heapwatch$suffix"

# shellcheck disable=SC2086 # flags are word lists on purpose
${CC:-cc} ${CFLAGS:--O2 -g} ${HW_AGENT_CFLAGS:-} \
        -shared -fPIC -fvisibility=hidden -pthread \
        -I"$SRCDIR/include" -I"$SRCDIR/agent" -isystem "$inc" ${platinc:+-isystem "$platinc"} $jansson_cflags \
        "$SRCDIR/agent/module.c" \
        "$SRCDIR/agent/memhooks.c" \
        "$SRCDIR/agent/agent-sample.c" \
        "$SRCDIR/agent/procstat.c" \
        "$SRCDIR/agent/encode.c" \
        "$SRCDIR/agent/connector.c" \
        "$SRCDIR/agent/transport.c" \
        "$SRCDIR/agent/sampler.c" \
        "$SRCDIR/agent/heapprof.c" \
        "$SRCDIR/agent/census.c" \
        "$SRCDIR/agent/gilshare.c" \
        "$SRCDIR/agent/pages.c" \
        "$SRCDIR/agent/heapwalk.c" \
        "$SRCDIR/agent/handoff.c" \
        "$SRCDIR/agent/threadstate.c" \
        "$SRCDIR/agent/mallocstat.c" \
        "$SRCDIR/agent/holdstats.c" \
        -o "$out.tmp" ${LDFLAGS:-} ${HW_AGENT_LIBS:-} $jansson_libs -lpthread -lm
mv -f "$out.tmp" "$out"
cp -f "$SRCDIR/agent/bootstrap/sitecustomize.py" "$OUTDIR/sitecustomize.py"
echo "$out"
