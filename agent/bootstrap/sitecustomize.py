# SPDX-License-Identifier: MIT
"""heapwatch bootstrap for `heapwatch run -- python app.py`.

`heapwatch run` puts the directory holding this file (and the one holding the heapwatch
module) first on PYTHONPATH, so the interpreter's `site` imports this as `sitecustomize`
at startup. It starts the agent with the settings from the environment (HEAPWATCH_SERVICE,
HEAPWATCH_SOCKET, HEAPWATCH_INTERVAL), never raises (a failure is one stderr line), then
takes its own directory off sys.path and runs the next `sitecustomize` on sys.path, if any,
as the application would have had it without heapwatch (the ddtrace-run convention).

Kept to syntax every Python 3 (and 2) parses: a child process started with a different
interpreter inherits PYTHONPATH and must only get the one-line note, not a SyntaxError.
"""
import os
import sys


def _heapwatch_start():
    # One note per process tree, in the first process it concerns: a program's children inherit
    # PYTHONPATH, and each one run by another Python version (no agent built for it) printed
    # the note again, into output its caller may parse. A process that loads the agent marks
    # its tree too: its children of another version stay quiet.
    first = not os.environ.get("HEAPWATCH_NOTED")
    try:
        os.environ["HEAPWATCH_NOTED"] = "1"
    except Exception:
        pass
    try:
        import heapwatch

        heapwatch._autostart()
    except Exception as e:  # the host program runs on, whatever happened here
        try:
            if first:
                sys.stderr.write("heapwatch: agent not loaded into Python %d.%d: %s\n"
                                 % (sys.version_info[0], sys.version_info[1], e))
        except Exception:
            pass


def _heapwatch_chain(here):
    """Drop our directory from sys.path and import the next sitecustomize, if there is one."""
    def same(p):
        try:
            return os.path.realpath(p or os.curdir) == here
        except Exception:
            return False

    sys.path[:] = [p for p in sys.path if not same(p)]

    ours = sys.modules.pop("sitecustomize", None)
    # What importlib.util.find_spec() does for a top-level name, without importing
    # importlib.util: that pulls in contextlib, collections, functools, types... and doubled
    # the interpreter's start-up instructions (docs/performance.md, 2026-12-07).
    spec = None
    try:
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec("sitecustomize", None) if find_spec is not None else None
            if spec is not None:
                break
    except Exception:
        spec = None
    if spec is None or (spec.origin and same(os.path.dirname(spec.origin))):
        if ours is not None:
            sys.modules["sitecustomize"] = ours
        return
    try:
        # Errors in the application's own sitecustomize are reported by site.py, exactly as
        # they would be without heapwatch in between.
        __import__("sitecustomize")
    except BaseException:
        if "sitecustomize" not in sys.modules and ours is not None:
            sys.modules["sitecustomize"] = ours
        raise


_heapwatch_start()
_heapwatch_chain(os.path.dirname(os.path.realpath(__file__)))
del _heapwatch_start, _heapwatch_chain
