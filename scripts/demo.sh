#!/bin/sh
# SPDX-License-Identifier: MIT
# The main job, from a fresh clone on Debian 12: install what is missing, build, start
# heapwatchd and a small demo service that leaks (loaded with `heapwatch run`, no code
# change), and show what heapwatch reports: `heapwatch status`, the JSON API and /metrics.
# Runs for DEMO_SECONDS (default 90), then stops both. --keep leaves them running.
# Leak detection runs accelerated (1 s windows, 20 s minimum horizon instead of 60 s and
# 30 min), so the demo shows a finding after about 65 s (nothing is a leak before three
# minimum horizons); production defaults: docs/detection.md.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
keep=no
[ "${1:-}" = "--keep" ] && keep=yes
seconds=${DEMO_SECONDS:-90}

"$top/scripts/deps.sh"
"$top/scripts/build.sh" build
b="$top/build"

run=$(mktemp -d /tmp/heapwatch-demo.XXXXXX)
sock="$run/agent.sock"
port=${HEAPWATCH_DEMO_PORT:-9847}
url="http://127.0.0.1:$port"
cleanup() {
	[ -n "${svc:-}" ] && kill "$svc" 2>/dev/null
	[ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$run"
}
[ $keep = yes ] || trap cleanup EXIT INT TERM

echo "== starting heapwatchd (agent socket $sock, HTTP $url)"
# Its history database goes into the demo's own directory, not the machine's /var/lib/heapwatch.
"$b/heapwatchd" --socket "$sock" --http "127.0.0.1:$port" --state-dir "$run/state" \
	--detect-window 1 --detect-min-horizon 20 \
	>"$run/heapwatchd.log" 2>&1 &
daemon=$!
for i in $(seq 1 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$url/healthz" || { cat "$run/heapwatchd.log"; exit 1; }
echo

echo "== starting the leaky demo service with: heapwatch run --service demo-leaky -- python3 demo/leaky_service.py"
HEAPWATCH_AGENT_PATH="$b/agent/python" "$b/heapwatch" run --service demo-leaky --socket "$sock" --interval 1 \
	-- python3 "$top/demo/leaky_service.py" &
svc=$!

step=10
elapsed=0
while [ $elapsed -lt "$seconds" ]; do
	sleep $step
	elapsed=$((elapsed + step))
	echo "== after ${elapsed}s: heapwatch status"
	"$b/heapwatch" status --url "$url"
	echo
done

id=$(curl -sf "$url/api/v1/processes?state=live" | python3 -c 'import json,sys; ps=json.load(sys.stdin)["processes"]; print(ps[0]["id"] if ps else "")')
if [ -n "$id" ]; then
	echo "== GET /api/v1/processes/$id (abridged)"
	curl -sf "$url/api/v1/processes/$id" | python3 -c '
import json, sys
d = json.load(sys.stdin); s = d["latest_sample"]
print(json.dumps({"process": {k: d["process"][k] for k in ("id", "pid", "service", "state", "argv")},
                  "rss_bytes": s["process"]["rss_bytes"], "python_allocated_blocks": s["python"]["allocated_blocks"],
                  "gc": [{k: g[k] for k in ("count", "collections", "collected")} for g in s["gc"]["generations"]]}, indent=1))'
	echo "== python_allocated_blocks over the last ${seconds}s (from /series, every 5th point): it only grows"
	curl -sf "$url/api/v1/processes/$id/series?metric=python_allocated_blocks" | python3 -c '
import json, sys
pts = json.load(sys.stdin)["points"]
print("  ".join("%d" % v for _, v in pts[::5]))'
	echo "== GET /api/v1/leaks (abridged): what heapwatch concluded"
	curl -sf "$url/api/v1/leaks" | python3 -c '
import json, sys
for f in json.load(sys.stdin)["leaks"]:
    print("  %s %s (pid %d): %s grows %.2f MiB/h (95%% CI %.2f..%.2f), confidence %.4f, limit (%s) in %s h" % (
        f["verdict"].upper(), f["service"], f["pid"], f["signal"], f["growth_per_second"] * 3600 / 2**20 if f["unit"] == "bytes" else f["growth_per_second"] * 3600,
        f["growth_per_second_low"] * 3600 / 2**20 if f["unit"] == "bytes" else f["growth_per_second_low"] * 3600,
        f["growth_per_second_high"] * 3600 / 2**20 if f["unit"] == "bytes" else f["growth_per_second_high"] * 3600,
        f["confidence"], f["limit_source"], "%.1f" % (f["seconds_to_limit"] / 3600) if f["seconds_to_limit"] else "-"))
' || true
	echo "== heapwatch leaks: why it grows (classification, evidence, remedy)"
	"$b/heapwatch" leaks --url "$url" || true
	echo "== the daemon log"
	grep -E "Leak|Agent connected" "$run/heapwatchd.log" || true
	echo "== a few lines of /metrics"
	curl -sf "$url/metrics" | grep -E '^heapwatch_(process_resident_memory_bytes|python_allocated_blocks|leak_suspected|leak_confirmed|leak_seconds_to_limit|daemon_agents_connected)' | head -n 8
fi
if [ $keep = yes ]; then
	echo "== left running: heapwatchd (pid $daemon) on $url and the demo service (pid $svc)"
fi
