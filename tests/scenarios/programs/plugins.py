# SPDX-License-Identifier: MIT
"""The "plugin framework" of leak_registry.py: a module-level registry of event handlers."""

HANDLERS = []  # the registry: nothing ever unregisters


class Handler:
    def __init__(self, event, record):
        self.event = event
        self.record = record  # what the callback closes over: the whole request

    def __call__(self, payload):
        return self.record.get("name"), payload


def subscribe(event, record):
    h = Handler(event, record)
    HANDLERS.append(h)
    return h
