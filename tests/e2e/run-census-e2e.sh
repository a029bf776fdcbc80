#!/bin/sh
# SPDX-License-Identifier: MIT
# The census and referrer-chain tests (tests/e2e/test_census.py) under every CPython 3.8-3.13
# found, as run-e2e.sh runs test_e2e.py, with agents built in a directory of their own: a test
# of its own so that make -j runs the two side by side (one after the other they were 10
# minutes of the ThreadSanitizer build's suite on one core).
HW_E2E_TESTS=test_census.py HW_E2E_AGENTS=census-agents exec "$(dirname "$0")/run-e2e.sh"
