#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the Debian 12 packages heapwatch needs to build and test, only those missing.
# Runs as root (or through sudo); never prompts (CI has no standard input).
set -eu
packages="build-essential autoconf automake libtool pkg-config
libmicrohttpd-dev libjansson-dev libsystemd-dev check libsqlite3-dev libinih-dev
libcurl4-openssl-dev python3 python3-dev prometheus curl valgrind gunicorn
clang libclang-rt-14-dev"

missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "heapwatch: installing missing Debian packages:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends: promtool comes with the prometheus package; we do not want its
# server's recommended extras. policy-rc.d keeps apt from starting prometheus' own service.
if [ -d /usr/sbin ] && [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod +x /usr/sbin/policy-rc.d
	trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends $missing </dev/null
