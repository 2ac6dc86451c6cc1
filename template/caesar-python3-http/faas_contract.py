"""The python3-http contract in one place: what a handler receives and how its answer becomes
an HTTP response. index.py serves it in the image; the local gateway loads this same file, so the
two cannot drift apart."""

import os

from flask import Response, jsonify


class Event:
    """body (bytes), headers, method, query, path. `stream` is set only by the local gateway
    (uploads read without a copy in memory); in the image it is None and body is complete."""

    def __init__(self, request, path=None, method=None, stream_body=False):
        self._request = request
        self.headers = request.headers
        self.method = method or request.method
        self.query = request.args
        self.path = request.path if path is None else path
        self._body = None if stream_body else request.get_data()

    @property
    def body(self):
        if self._body is None:
            self._body = self._request.get_data()
        return self._body

    @property
    def stream(self):
        return self._request.stream if self._body is None else None


def function_name():
    """This function's name for the logs: CAESAR_FUNCTION when set, else the pod's name without
    the Deployment's two generated suffixes (<name>-<replicaset hash>-<pod id>)."""
    explicit = os.getenv("CAESAR_FUNCTION", "").strip()
    if explicit:
        return explicit
    parts = os.getenv("HOSTNAME", "").split("-")
    return "-".join(parts[:-2]) if len(parts) > 2 else (os.getenv("HOSTNAME") or "function")


class Context:
    def __init__(self):
        self.hostname = os.getenv("HOSTNAME", "localhost")


def format_response(resp):
    if resp is None:
        return ("", 200)
    if isinstance(resp, dict):
        body = resp.get("body", "")
        if isinstance(body, dict):
            body = jsonify(body)
        elif not isinstance(body, Response):
            body = str(body)
        headers = resp.get("headers") or {}
        headers = list(headers.items()) if isinstance(headers, dict) else headers
        return (body, resp.get("statusCode", 200), headers)
    return resp
