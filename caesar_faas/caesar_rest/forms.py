"""One small form field from a POST body (caesar-rest's `POST /download` with `uuid`), either
application/x-www-form-urlencoded or multipart/form-data, read with a size cap."""

from __future__ import annotations

from typing import Any

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import parse_form_data

from ..errors import BadRequest, PayloadTooLarge

MAX_FORM = 64 * 1024


def field(req: Any, name: str) -> str | None:
    """The value of form field `name`, or None when the body has no such field."""
    content_type = req.header("Content-Type")
    length = req.header("Content-Length")
    if length.isdigit() and int(length) > MAX_FORM:
        raise PayloadTooLarge(f"a form here is at most {MAX_FORM} bytes", code="form_too_large")
    if not content_type.lower().startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None
    environ = {"wsgi.input": req.stream, "CONTENT_TYPE": content_type, "CONTENT_LENGTH": length,
               "REQUEST_METHOD": "POST"}
    try:
        _, form, files = parse_form_data(environ, max_content_length=MAX_FORM, silent=False)
    except RequestEntityTooLarge as exc:
        raise PayloadTooLarge(f"a form here is at most {MAX_FORM} bytes", code="form_too_large") from exc
    except ValueError as exc:
        raise BadRequest(f"the form does not parse: {exc}", code="invalid_form") from exc
    for upload in files.values():
        upload.close()
    value = form.get(name)
    return value if isinstance(value, str) else None
