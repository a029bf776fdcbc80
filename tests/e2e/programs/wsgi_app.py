# SPDX-License-Identifier: MIT
"""A minimal WSGI app for gunicorn: answers with the worker's pid and its parent's, so the test
can tell which worker served a request."""
import os


def app(environ, start_response):
    body = ("%d %d\n" % (os.getpid(), os.getppid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
