#!/bin/sh
# SPDX-License-Identifier: MIT
# Instructions executed by each workload of bench/workloads.py with no agent, with the agent and
# its heap profiler off, and with the agent at its defaults (heap profiler on, 512 KiB), counted
# by valgrind's cachegrind ("I refs"). Unlike wall or CPU time this does not depend on what else
# the machine runs, so it measures what the heap profiler adds even on a busy shared host. Both
# agent runs use a 3600 s interval unless INTERVAL is set: only the per-allocation work differs
# between them (the periodic sample's cost is measured by agent_overhead.py's probes).
#
#   [CACHESIM=1] [AGENT_DIR=DIR] [INTERVAL=S] bench/instructions.sh BUILDDIR [PYTHON] [SCALE] [WORKLOADS...]
#
# PYTHON defaults to the interpreter of BUILDDIR/agent/python, SCALE to 0.2 (cachegrind runs
# ~30x slower), WORKLOADS to all of them. Prints one Markdown table. Needs valgrind; pyflakes
# from Debian's python3-pyflakes is found as agent_overhead.py finds it.
#
# CACHESIM=1 also simulates the caches (a fixed model of this VM's Xeon: 48 KiB 12-way L1d,
# 32 KiB L1i, 4 MiB last level; about 2x slower) and prints a second table: L1 data misses and
# last-level data misses (reads + writes) per configuration. Cycles that instructions do not
# count show up there -- a cache line the agent's fast path loads, or evicts from under the
# host -- deterministically, whatever else the machine runs. AGENT_DIR: the agent's directory
# to put on PYTHONPATH instead of BUILDDIR/agent/python (another build's, for before/after).
#
# INTERVAL=1 (the default interval) counts the sampler's ticks too, and prints a third table:
# the samples each agent run sent (before its final one). cachegrind runs every thread of the
# process (it serialises them), so the sampler thread's instructions are in the counts, and its
# ticks: but a run under valgrind lasts ~50x longer, so it takes ~50x more ticks per unit of
# work than a native run. Divide the difference to INTERVAL=3600 by the difference in samples
# to get a tick's cost, and scale by the native run's ticks (its wall time / interval).
set -eu
builddir=$(cd "${1:?usage: $0 BUILDDIR [PYTHON] [SCALE] [WORKLOADS...]}" && pwd)
py=${2:-python3}
scale=${3:-0.2}
[ $# -gt 3 ] && shift 3 || set --
workloads=${*:-pyflakes ast_compile tokenize json minidom gc_cycles sympy networkx}
here=$(cd "$(dirname "$0")" && pwd)
agent=${AGENT_DIR:-$builddir/agent/python}
if [ "${CACHESIM:-0}" = 1 ]; then
	cachesim="--cache-sim=yes --I1=32768,8,64 --D1=49152,12,64 --LL=4194304,16,64"
else
	cachesim=--cache-sim=no
fi
command -v valgrind >/dev/null || { echo "$0: valgrind is not installed" >&2; exit 77; }

tmp=$(mktemp -d /tmp/hw-instr.XXXXXX)
trap 'kill $daemon 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
sock=$tmp/agent.sock
"$builddir/heapwatchd" --socket "$sock" --no-http --log-level warning >"$tmp/heapwatchd.log" 2>&1 &
daemon=$!
mkdir -p "$tmp/pf"
[ -d /usr/lib/python3/dist-packages/pyflakes ] && ln -s /usr/lib/python3/dist-packages/pyflakes "$tmp/pf/pyflakes"

interval=${INTERVAL:-3600}
count() { # config workload -> "I refs D1 misses LLd misses samples" (misses 0 without CACHESIM)
	case $1 in
	none) pp= sb= ;;
	off) pp=$agent sb=0 ;;
	on) pp=$agent sb= ;;
	esac
	# Once natively first, tiny: the modules this configuration imports (the bootstrap's
	# sitecustomize, importlib.util...) are compiled into the private bytecode cache here, not
	# counted as the agent's cost. PYTHONDONTWRITEBYTECODE would leave the cache empty, and with
	# the prefix set every run would compile every module it imports from source.
	env -u PYTHONDONTWRITEBYTECODE PYTHONHASHSEED=0 PYTHONPYCACHEPREFIX="$tmp/pycache" PYTHONPATH="$pp" HEAPWATCH_SOCKET="$sock" \
		HEAPWATCH_INTERVAL="$interval" ${sb:+HEAPWATCH_SAMPLE_BYTES=$sb} \
		"$py" "$here/workloads.py" "$2" --scale 0.01 --extra-path "$tmp/pf" >/dev/null 2>&1 || true
	# shellcheck disable=SC2086 # $cachesim is a list of options
	env -u PYTHONDONTWRITEBYTECODE PYTHONHASHSEED=0 PYTHONPYCACHEPREFIX="$tmp/pycache" PYTHONPATH="$pp" HEAPWATCH_SOCKET="$sock" \
		HEAPWATCH_INTERVAL="$interval" ${sb:+HEAPWATCH_SAMPLE_BYTES=$sb} \
		valgrind --tool=cachegrind $cachesim --cachegrind-out-file=/dev/null \
		"$py" "$here/workloads.py" "$2" --scale "$scale" --extra-path "$tmp/pf" 2>&1 >"$tmp/out" | tr -d , |
		awk '/I +refs:/ { i = $4 } /D1 +misses:/ { d = $4 } /LLd +misses:/ { l = $4 }
			END { printf "%s %d %d ", i, d + 0, l + 0 }'
	# the samples sent before the final one (workloads.py reports status() at its end)
	sed -n 's/.*"agent_samples_sent": \([0-9]*\).*/\1/p' "$tmp/out" | awk '{ n = $1 } END { print n + 0 }'
}

echo "| workload | no agent | agent, heap profiler off | agent, heap profiler on | heap profiler's share |"
echo "|---|---|---|---|---|"
: >"$tmp/cache"
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
	echo "$w $n $off $on" >>"$tmp/cache"
	echo "$n $off $on" | awk -v w="$w" '{
		printf "| %s | %.4g | x%.4f | x%.4f | %+.2f %% |\n", w, $1, $5 / $1, $9 / $1, ($9 / $5 - 1) * 100 }'
done
if [ -n "${INTERVAL:-}" ]; then
	echo
	echo "Interval $interval s: samples the agent sent under valgrind (before the final one)"
	echo
	echo "| workload | heap profiler off | heap profiler on |"
	echo "|---|---|---|"
	awk '{ printf "| %s | %d | %d |\n", $1, $9, $13 }' "$tmp/cache"
fi
[ "${CACHESIM:-0}" = 1 ] || exit 0
echo
echo "| workload | L1d misses: no agent | heap off | heap on | heap profiler's share | LLd misses: no agent | heap off | heap on | heap profiler's share |"
echo "|---|---|---|---|---|---|---|---|---|"
awk '{
	printf "| %s | %.4g | x%.4f | x%.4f | %+.2f %% (%+d) | %.4g | x%.4f | x%.4f | %+.2f %% (%+d) |\n", $1,
		$3, $7 / $3, $11 / $3, ($11 / $7 - 1) * 100, $11 - $7,
		$4, $8 / $4, $12 / $4, ($12 / $8 - 1) * 100, $12 - $8 }' "$tmp/cache"
