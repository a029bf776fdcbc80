#!/bin/sh
# SPDX-License-Identifier: MIT
# Configure and build heapwatch in ./build (or $1), warnings as errors. Extra arguments after
# the directory go to ./configure (e.g. --enable-sanitizers).
set -eu
cd "$(dirname "$0")/.."
builddir="${1:-build}"
[ $# -gt 0 ] && shift
[ -x configure ] || ./autogen.sh
mkdir -p "$builddir"
cd "$builddir"
if [ ! -f Makefile ] || [ ../configure -nt Makefile ] || [ $# -gt 0 ]; then
	../configure --enable-werror "$@" >configure.out || { cat configure.out; exit 1; }
	tail -n 9 configure.out
fi
make -j"$(nproc)" >make.out 2>&1 || { cat make.out; exit 1; }
echo "heapwatch: built in $(pwd)"
