# SPDX-License-Identifier: MIT
"""A module-level registry of handlers that only grows: the census must show Handler growing
and the chain must start at the module global `registry_app.handlers`."""


class Handler:
    def __init__(self, i):
        self.payload = bytes(64)
        self.i = i


handlers = []


def register(n):
    for i in range(n):
        handlers.append(Handler(len(handlers)))
