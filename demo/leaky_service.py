# SPDX-License-Identifier: MIT
"""A small "service" that leaks the way real ones do: every request is remembered in a
module-level registry that nobody ever prunes, while the per-request garbage is collected.
It knows nothing of heapwatch: run it with `heapwatch run -- python3 leaky_service.py`."""
import random
import sys
import time

_seen_requests = []  # the leak: grows by one entry per request, forever


def handle_request(n):
    payload = {"id": n, "user": "user-%d" % random.randrange(10000), "body": "x" * 2048}
    scratch = [payload["body"][i:i + 64] for i in range(0, 2048, 64)]  # garbage, freed
    _seen_requests.append(payload)  # kept forever
    return len(scratch)


def main():
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 200.0  # requests per second
    n = 0
    while True:
        for _ in range(int(rate / 10)):
            handle_request(n)
            n += 1
        time.sleep(0.1)


if __name__ == "__main__":
    main()
