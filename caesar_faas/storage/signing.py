"""HMAC-SHA256 signed URLs for the file:// storage: the local stand-in for S3 presigned URLs.

A signature covers everything that decides what the URL may do: the HTTP method, the object key,
the exact size of a PUT (or, for a PUT signed without a size, the most it may carry), the CRC32 the
body must have, the upload id and part number of a multipart part, the download file name and the
expiry. Changing any of them (or replaying the URL for another key) breaks the signature.
The key comes from Settings.signing_key, else from <CAESAR_HOME>/signing.key, created once with
mode 0600 so URLs stay valid across restarts and across processes sharing the same home.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings

KEY_FILE = "signing.key"


class SignatureError(Exception):
    """The URL is expired, altered or used for something it was not signed for."""


@dataclass(frozen=True)
class Grant:
    """What one signed URL allows."""

    method: str  # GET or PUT
    key: str
    expires: int  # epoch seconds
    size: int | None = None  # PUT: the exact body size
    upload_id: str | None = None  # multipart part PUT
    part: int | None = None
    filename: str | None = None  # GET: Content-Disposition file name
    max_size: int | None = None  # PUT signed without a size: the largest body allowed
    crc32: str | None = None  # PUT: the body's CRC32 (S3 encoding), also sent as CRC32_HEADER

    def message(self) -> bytes:
        # JSON of a fixed-order list: unambiguous whatever characters the fields hold.
        fields: list[object] = [self.method.upper(), self.key, self.expires, self.size, self.upload_id,
                                self.part, self.filename]
        if self.max_size is not None:
            # Appended only when set: URLs signed before the field existed keep their signature,
            # and the longer list can never equal a shorter one.
            fields.append(self.max_size)
        if self.crc32 is not None:
            fields.append({"crc32": self.crc32})  # tagged: never confused with a max_size
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode()

    def query(self) -> dict[str, str]:
        """The query parameters that carry the grant (without the signature)."""
        out = {"expires": str(self.expires)}
        if self.size is not None:
            out["size"] = str(self.size)
        if self.upload_id is not None:
            out["upload_id"] = self.upload_id
        if self.part is not None:
            out["part"] = str(self.part)
        if self.filename is not None:
            out["filename"] = self.filename
        if self.max_size is not None:
            out["max_size"] = str(self.max_size)
        if self.crc32 is not None:
            out["crc32"] = self.crc32
        return out


def load_signing_key(settings: Settings) -> bytes:
    """Settings.signing_key, else the persisted random key under settings.home (created if missing)."""
    if settings.signing_key:
        return settings.signing_key.encode()
    path = Path(settings.home) / KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        # link() fails when another process created the key first: then everyone uses that one,
        # and nobody ever reads a half-written file.
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    value = path.read_text().strip()
    if not value:
        raise ValueError(f"signing key file {path} is empty")
    return value.encode()


class Signer:
    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("empty signing key")
        self._key = key

    def __repr__(self) -> str:  # never show the key
        return "Signer(<key>)"

    def signature(self, grant: Grant) -> str:
        digest = hmac.new(self._key, grant.message(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, grant: Grant) -> dict[str, str]:
        """Query parameters for a URL carrying `grant`."""
        return {**grant.query(), "sig": self.signature(grant)}

    def verify(self, method: str, key: str, query: dict[str, str], *, now: float | None = None) -> Grant:
        """The grant the query carries for (method, key); SignatureError when it is not valid."""
        try:
            grant = Grant(
                method=method.upper(),
                key=key,
                expires=int(query["expires"]),
                size=_opt_int(query.get("size")),
                upload_id=query.get("upload_id"),
                part=_opt_int(query.get("part")),
                filename=query.get("filename"),
                max_size=_opt_int(query.get("max_size")),
                crc32=query.get("crc32"),
            )
            sig = query["sig"]
        except (KeyError, ValueError) as exc:
            raise SignatureError("malformed signed URL") from exc
        if not hmac.compare_digest(sig.encode(), self.signature(grant).encode()):
            raise SignatureError("invalid signature for this method, key and parameters")
        if (time.time() if now is None else now) > grant.expires:
            raise SignatureError("signed URL expired")
        return grant


def _opt_int(raw: str | None) -> int | None:
    return None if raw is None else int(raw)
