#!/bin/sh
# SPDX-License-Identifier: MIT
# The shipped Prometheus files: the alert rules load (promtool check rules), behave as their
# unit tests say (promtool test rules etc/prometheus/heapwatch-alerts.test.yml), and the
# example scrape configuration is valid (promtool check config, with its rule_files path
# pointed at the source tree since nothing is installed here).
set -u
if ! command -v promtool >/dev/null 2>&1; then
	echo "SKIP: promtool (Debian package prometheus) is not installed"
	exit 77
fi
dir=$(cd "${top_srcdir:-.}/etc/prometheus" && pwd) || exit 1
rc=0
promtool check rules "$dir/heapwatch-alerts.yml" || rc=1
promtool test rules "$dir/heapwatch-alerts.test.yml" || rc=1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/share/heapwatch/prometheus/heapwatch-alerts.yml|$dir/heapwatch-alerts.yml|" \
	"$dir/prometheus-scrape.yml" >"$tmp/prometheus.yml"
mkdir -p "$tmp/heapwatch-targets"
promtool check config "$tmp/prometheus.yml" || rc=1
exit $rc
