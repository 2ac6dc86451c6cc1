"""Structured logs (issue 17 §1): one JSON object per line, with the context of the request or
job bound once and carried everywhere.

configure(component)   each process's entry point calls it once (gateway, connector, cron,
                       runner, a function image's index.py); library code only logs.
bind(**fields)         adds request_id, function, user, job_id, file_id, app... to every line
                       that follows in this thread or task (structlog contextvars).
request_id()           the id bound now (None outside a request or job).
AccessLog              WSGI middleware: X-Request-Id in and out, one access line per request.
"""

from .context import bind, bound, clear, new_request_id, request_id, valid_request_id
from .setup import configure, get_logger

__all__ = ["bind", "bound", "clear", "configure", "get_logger", "new_request_id", "request_id",
           "valid_request_id"]
