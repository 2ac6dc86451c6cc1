"""The shape of a multipart/form-data body, read the strict way: one part's headers and what
follows a part, for the one-pass readers of inline uploads (multipart_mapped.py,
multipart_streamed.py), which leave anything unusual to werkzeug's parser."""

from __future__ import annotations

from werkzeug.http import parse_options_header


def part_disposition(block: bytes) -> tuple[str, str | None] | None:
    """(name, filename or None) from a part's header block, or None if it is not plain form-data."""
    try:
        lines = block.decode("utf-8").split("\r\n")  # as werkzeug decodes them
    except UnicodeDecodeError:
        return None
    disposition = None
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            return None  # folded or malformed headers: werkzeug's reading applies
        if name.lower() == "content-disposition":
            if disposition is not None:
                return None
            disposition = value.strip()
    if disposition is None:
        return None
    kind, options = parse_options_header(disposition)
    if kind != "form-data" or not options.get("name"):
        return None
    return options["name"], options.get("filename")


def closes_form(tail: bytes) -> bool | None:
    """What the two bytes after a part's closing delimiter say: True for the close delimiter
    (`--`; an epilogue after it is ignored, as werkzeug does), False for another part (CRLF),
    None for anything else (werkzeug's reading applies)."""
    if tail == b"--":
        return True
    return False if tail == b"\r\n" else None
