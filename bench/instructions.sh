#!/bin/sh
# SPDX-License-Identifier: MIT
# Instructions executed by each workload of bench/workloads.py with no agent, with the agent and
# its heap profiler off, and with the agent at its defaults (heap profiler on, 512 KiB), counted
# by valgrind's cachegrind ("I refs"). Unlike wall or CPU time this does not depend on what else
# the machine runs, so it measures what the heap profiler adds even on a busy shared host. Both
# agent runs use a 3600 s interval: only the per-allocation work differs between them (the
# periodic sample's cost is measured by agent_overhead.py's probes).
#
#   bench/instructions.sh BUILDDIR [PYTHON] [SCALE] [WORKLOADS...]
#
# PYTHON defaults to the interpreter of BUILDDIR/agent/python, SCALE to 0.2 (cachegrind runs
# ~30x slower), WORKLOADS to all of them. Prints one Markdown table. Needs valgrind; pyflakes
# from Debian's python3-pyflakes is found as agent_overhead.py finds it.
set -eu
builddir=$(cd "${1:?usage: $0 BUILDDIR [PYTHON] [SCALE] [WORKLOADS...]}" && pwd)
py=${2:-python3}
scale=${3:-0.2}
[ $# -gt 3 ] && shift 3 || set --
workloads=${*:-pyflakes ast_compile tokenize json minidom gc_cycles sympy networkx}
here=$(cd "$(dirname "$0")" && pwd)
command -v valgrind >/dev/null || { echo "$0: valgrind is not installed" >&2; exit 77; }

tmp=$(mktemp -d /tmp/hw-instr.XXXXXX)
trap 'kill $daemon 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
sock=$tmp/agent.sock
"$builddir/heapwatchd" --socket "$sock" --no-http --log-level warning >"$tmp/heapwatchd.log" 2>&1 &
daemon=$!
mkdir -p "$tmp/pf"
[ -d /usr/lib/python3/dist-packages/pyflakes ] && ln -s /usr/lib/python3/dist-packages/pyflakes "$tmp/pf/pyflakes"

count() { # config workload -> I refs
	case $1 in
	none) pp= sb= ;;
	off) pp=$builddir/agent/python sb=0 ;;
	on) pp=$builddir/agent/python sb= ;;
	esac
	env PYTHONHASHSEED=0 PYTHONPYCACHEPREFIX="$tmp/pycache" PYTHONPATH="$pp" HEAPWATCH_SOCKET="$sock" \
		HEAPWATCH_INTERVAL=3600 ${sb:+HEAPWATCH_SAMPLE_BYTES=$sb} \
		valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
		"$py" "$here/workloads.py" "$2" --scale "$scale" --extra-path "$tmp/pf" 2>&1 >/dev/null |
		sed -n 's/.*I *refs: *//p' | tr -d ,
}

echo "| workload | no agent | agent, heap profiler off | agent, heap profiler on | heap profiler's share |"
echo "|---|---|---|---|---|"
for w in $workloads; do
	case $w in
	pyflakes | sympy | networkx) mod=$w ;;
	*) mod=json ;;
	esac
	if ! PYTHONPATH="$tmp/pf" "$py" -c "import $mod" >/dev/null 2>&1; then
		echo "| $w | skipped: not available for $py | | | |"
		continue
	fi
	n=$(count none "$w")
	off=$(count off "$w")
	on=$(count on "$w")
	awk -v w="$w" -v n="$n" -v off="$off" -v on="$on" 'BEGIN {
		printf "| %s | %.4g | x%.4f | x%.4f | %+.2f %% |\n", w, n, off / n, on / n, (on / off - 1) * 100 }'
done
