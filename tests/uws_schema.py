"""The UWS 1.1 schema (tests/fixtures/ivoa), loaded once, offline, and helpers to check documents."""

from __future__ import annotations

import functools
from pathlib import Path

import xmlschema

IVOA = Path(__file__).resolve().parent / "fixtures" / "ivoa"


@functools.cache
def uws_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(IVOA / "UWS-1.1.xsd"),
                               locations={"http://www.w3.org/1999/xlink": str(IVOA / "xlink.xsd")})


def assert_valid(document: bytes | str) -> None:
    """Raise with the schema's own explanation when the document is not valid UWS 1.1."""
    text = document.decode("utf-8") if isinstance(document, bytes) else document
    uws_schema().validate(text)
