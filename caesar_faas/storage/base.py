"""The object storage contract shared by the file:// and s3:// backends.

Keys are '/'-separated strings chosen by the service (e.g. `files/<owner>/<file_id>`,
`jobs/<owner>/<job_id>/catalog.csv`, `uploads/<owner>/<file_id>`); user-supplied names never
become keys. Reads and writes stream in chunks: no method holds a whole object in memory.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import quote

CHUNK = 1024 * 1024
# S3's multipart rules, enforced by both backends so client code that works on file:// also works on S3.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
# What a PUT URL signed without a size may carry: S3's own limit for a single PUT, which S3
# enforces by itself and the file:// signed endpoint enforces to match. Such URLs exist for
# objects whose size nobody knows when the URL is made (a job's products, presigned at launch).
MAX_UNSIZED_PUT = 5 * 1024 * 1024 * 1024
# A PUT bound to a CRC32 (S3 encoding, checksums.crc32_b64) must carry it in this header: S3 and
# MinIO sign it into the URL and refuse a body with another CRC32; the file:// endpoint does too.
CRC32_HEADER = "x-amz-checksum-crc32"


class ObjectNotFound(KeyError):
    """The key does not exist."""


class BadDigest(ValueError):
    """The body's checksum is not the one the PUT was bound to (S3: BadDigest); nothing is stored."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # S3 ETag without quotes (multipart: "<md5>-<parts>"); file://: a version tag, see storage/local.py
    modified: float  # epoch seconds


@dataclass(frozen=True)
class PartUrl:
    number: int  # 1-based
    url: str
    offset: int
    size: int
    headers: dict[str, str] = field(default_factory=dict)  # to send with the PUT


# Module-level names: inside the Storage classes `list` is the listing method, not the type.
PartUrls = list[PartUrl]
PartPlan = list[tuple[int, int, int]]  # (part number, offset, size)
StoredParts = list[tuple[int, str, int]]  # (part number, ETag, size)
Crc32List = list[str]
PartList = list[tuple[int, str]]  # (part number, ETag)


@dataclass(frozen=True)
class MultipartUpload:
    key: str
    upload_id: str
    part_size: int
    parts: list[PartUrl]


def validate_key(key: str) -> str:
    """Return key when it is a safe object key, else raise ValueError.

    The same rules hold for both backends (a key that works on S3 must work on file:// and the
    reverse): non-empty '/'-separated segments, no '.' or '..', no leading '/', no backslash, no
    control characters (NUL, newlines), at most 1024 UTF-8 bytes, and the first segment may not
    start with '.caesar' (the file:// backend's own bookkeeping lives there).
    """
    if not isinstance(key, str) or not key:
        raise ValueError("object key must be a non-empty string")
    if len(key.encode("utf-8")) > 1024:
        raise ValueError("object key longer than 1024 bytes")
    if "\\" in key or any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise ValueError(f"object key {key!r} contains a backslash or a control character")
    segments = key.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise ValueError(f"object key {key!r} has an empty, '.' or '..' segment")
    if segments[0].startswith(".caesar"):
        raise ValueError(f"object key {key!r} uses the reserved '.caesar' prefix")
    return key


def validate_prefix(prefix: str) -> str:
    """'' or a key-like prefix (one trailing '/' allowed); no '..' tricks."""
    if prefix:
        validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def plan_parts(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """(part number, offset, size) for a multipart upload of `size` bytes, S3 rules applied."""
    if size <= 0:
        raise ValueError("a multipart upload needs at least one byte")
    if part_size < MIN_PART_SIZE:
        raise ValueError(f"part size must be at least {MIN_PART_SIZE} bytes")
    count = -(-size // part_size)
    if count > MAX_PARTS:
        raise ValueError(f"{size} bytes in parts of {part_size} needs more than {MAX_PARTS} parts")
    return [(n + 1, n * part_size, min(part_size, size - n * part_size)) for n in range(count)]


def checksum_headers(crc32: str | None) -> dict[str, str]:
    """The headers a PUT bound to `crc32` must send (none without one)."""
    return {CRC32_HEADER: crc32} if crc32 else {}


def content_disposition(filename: str) -> str:
    """An attachment Content-Disposition for a download name, safe for any characters (RFC 6266)."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%;' else "_" for c in filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class Storage(ABC):
    """A bucket-like namespace of keys."""

    url: str
    bucket: str = ""  # the bucket name MinIO-format notifications carry for this storage

    @abstractmethod
    def put(self, key: str, stream: BinaryIO, *, size: int | None = None,
            content_type: str = "application/octet-stream") -> ObjectInfo:
        """Store everything read from `stream` (read in CHUNK pieces) under key, atomically:
        readers never see a partial object."""

    def put_file(self, key: str, path: str, *, size: int,
                 content_type: str = "application/octet-stream") -> ObjectInfo:
        """Store the finished local file at `path` (which the caller then no longer needs): read
        once and sent here; file:// moves it into place instead (see LocalStorage)."""
        with open(path, "rb") as fh:
            return self.put(key, fh, size=size, content_type=content_type)

    @abstractmethod
    def open(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Chunks of the object (optionally the byte range [start, end), like a ranged GET).
        Raises ObjectNotFound before yielding anything when the key is missing."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Raises ObjectNotFound."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """All objects whose key starts with prefix, sorted by key."""

    @abstractmethod
    def delete(self, key: str) -> bool:
        """True when something was deleted; a missing key is not an error."""

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        for info in list(self.list(prefix)):
            count += int(self.delete(info.key))
        return count

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
            return True
        except ObjectNotFound:
            return False

    def read_bytes(self, key: str, *, start: int = 0, end: int | None = None) -> bytes:
        """Small reads only (headers, manifests)."""
        return b"".join(self.open(key, start=start, end=end))

    def download_to(self, key: str, path: str) -> ObjectInfo:
        with open(path, "wb") as fh:
            for chunk in self.open(key):
                fh.write(chunk)
        return self.stat(key)

    @abstractmethod
    def presign_get(self, key: str, *, expires: int = 3600, filename: str | None = None) -> str:
        """A URL that GETs the object without credentials until it expires."""

    @abstractmethod
    def presign_put(self, key: str, *, size: int | None = None, expires: int = 3600,
                    crc32: str | None = None) -> str:
        """A URL that PUTs to key without credentials until it expires: exactly `size` bytes, or,
        with size None, any body of at most MAX_UNSIZED_PUT bytes. The client sends the body with
        a Content-Length header (S3 refuses chunked bodies on presigned PUTs). With crc32 the
        body must have that CRC32 and the PUT must send checksum_headers(crc32)."""

    @abstractmethod
    def create_multipart(self, key: str, *, size: int, part_size: int, expires: int = 3600,
                         crc32s: Crc32List | None = None) -> MultipartUpload:
        """Start a multipart upload; one presigned URL per part. crc32s (one per part, in order)
        binds each part to its CRC32, which the store checks on the part PUT (S3's composite
        CRC32 checksum); each PartUrl then lists the header its PUT must send."""

    @abstractmethod
    def list_parts(self, key: str, upload_id: str) -> StoredParts:
        """(part number, ETag, size) of the parts of an unfinished upload stored so far, by
        number; ObjectNotFound for an unknown (or finished) upload."""

    @abstractmethod
    def part_urls(self, key: str, upload_id: str, *, size: int, part_size: int, numbers: Sequence[int],
                  expires: int = 3600, crc32s: Sequence[str] | None = None) -> PartUrls:
        """Fresh presigned URLs for some parts of an unfinished upload (a client resuming it)."""

    @abstractmethod
    def complete_multipart(self, key: str, upload_id: str, parts: PartList, *,
                           crc32s: Crc32List | None = None) -> ObjectInfo:
        """parts: (part number, ETag) as the client got them from each part PUT; crc32s: those
        given to create_multipart (S3 wants them again at completion)."""

    @abstractmethod
    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop the parts of an unfinished upload; unknown upload ids are not an error."""

    @abstractmethod
    def list_multipart(self, prefix: str) -> Iterator[tuple[str, str, float]]:
        """Unfinished multipart uploads: (key, upload_id, initiated epoch seconds)."""

    def ping(self) -> None:
        """Raise when the storage cannot be reached."""
        list(self.list("__ping__/"))
