#!/bin/sh
# SPDX-License-Identifier: MIT
# The shipped Prometheus alert rules must load: promtool check rules.
if ! command -v promtool >/dev/null 2>&1; then
	echo "SKIP: promtool (Debian package prometheus) is not installed"
	exit 77
fi
exec promtool check rules "${top_srcdir:-.}/etc/prometheus/heapwatch-alerts.yml"
