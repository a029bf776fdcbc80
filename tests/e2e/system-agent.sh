# SPDX-License-Identifier: MIT
# Sourced by the end-to-end drivers that run once, under the system python3 (run-store-e2e.sh,
# run-systemd-e2e.sh): build_system_agent LABEL OUTDIR finds that interpreter (sets $py) and
# builds the agent for it into OUTDIR, or exits the driver: 77 (skip) with a reason when there
# is no python3 or it cannot build extensions, 1 when the agent does not build.
build_system_agent() {
	label=$1
	outdir=$2
	py=/usr/bin/python3
	[ -x "$py" ] || py=$(command -v python3)
	if [ -z "$py" ]; then
		echo "$label: SKIP: no python3"
		exit 77
	fi
	rm -rf "$outdir"
	"$top_srcdir/tests/e2e/build-agent.sh" "$py" "$outdir" >"$outdir.build.log" 2>&1
	rc=$?
	if [ $rc -eq 77 ]; then
		echo "$label: SKIP: $(tail -n 1 "$outdir.build.log")"
		exit 77
	elif [ $rc -ne 0 ]; then
		cat "$outdir.build.log"
		exit 1
	fi
}
