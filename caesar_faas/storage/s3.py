"""s3:// storage through boto3 (AWS S3, MinIO, moto).

Credentials: the secret files caesar-s3-access-key / caesar-s3-secret-key (OpenFaaS secrets) when
both are present, else boto3's normal chain (AWS_ACCESS_KEY_ID..., profiles, IRSA).
Presigned URLs are signed for `public_endpoint_url` when given: the signature covers the host, so a
URL handed to a client outside the cluster must be signed for the host that client will call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ..config import read_secret
from .base import (
    CHUNK,
    MIN_PART_SIZE,
    Crc32List,
    MultipartUpload,
    ObjectInfo,
    ObjectNotFound,
    PartList,
    PartPlan,
    PartUrl,
    PartUrls,
    Storage,
    StoredParts,
    checksum_headers,
    content_disposition,
    plan_parts,
    validate_key,
    validate_prefix,
)

log = logging.getLogger(__name__)

# put() streams in parts of this size: memory stays at about one part whatever the object size.
PUT_PART_SIZE = max(8 * 1024 * 1024, MIN_PART_SIZE)

_MISSING = {"404", "NoSuchKey", "NotFound"}
_NO_UPLOAD = {"404", "NoSuchUpload"}
_BAD_PARTS = {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML", "InvalidRequest"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _etag(raw: str) -> str:
    return raw.strip('"')


def _read_block(stream: BinaryIO, limit: int, head: bytes = b"") -> bytearray:
    """head + up to limit - len(head) bytes from stream, read in CHUNK pieces into one buffer
    allocated up front (growing it would briefly need twice the memory); shorter only at the end
    of the stream."""
    buf = bytearray(limit)
    buf[:len(head)] = head
    pos = len(head)
    while pos < limit:
        chunk = stream.read(min(CHUNK, limit - pos))
        if not chunk:
            break
        buf[pos:pos + len(chunk)] = chunk
        pos += len(chunk)
    del buf[pos:]
    return buf


class BodyChunks:
    """Chunks of a get_object body; close() releases the HTTP connection early."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self._chunks = body.iter_chunks(CHUNK)

    def __iter__(self) -> BodyChunks:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except StopIteration:
            self.close()
            raise

    def close(self) -> None:
        self._body.close()


class S3Storage(Storage):
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None, public_endpoint_url: str | None = None,
                 url: str | None = None) -> None:
        if not bucket:
            raise ValueError("s3:// storage needs a bucket name")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = url or f"s3://{bucket}/{self.prefix}"
        access, secret = (read_secret("caesar-s3-access-key", "AWS_ACCESS_KEY_ID"),
                          read_secret("caesar-s3-secret-key", "AWS_SECRET_ACCESS_KEY"))
        session = boto3.session.Session(
            aws_access_key_id=access if access and secret else None,
            aws_secret_access_key=secret if access and secret else None,
            region_name=region,
        )
        region_name = session.region_name or "us-east-1"
        config = Config(
            signature_version="s3v4",
            # MinIO and moto answer on one host: path-style addressing for any custom endpoint.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            # Newer botocore adds CRC checksums by default, which some S3-compatible stores and
            # presigned-URL clients do not handle; ask for them only where the API requires them.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 5, "mode": "standard"},
        )
        self.client = session.client("s3", endpoint_url=endpoint_url, region_name=region_name, config=config)
        self._presigner = (session.client("s3", endpoint_url=public_endpoint_url, region_name=region_name,
                                          config=config)
                           if public_endpoint_url and public_endpoint_url != endpoint_url else self.client)

    def __repr__(self) -> str:
        return f"S3Storage({self.url!r})"

    def _k(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _info(self, key: str, size: int, etag: str, modified: Any) -> ObjectInfo:
        return ObjectInfo(key=key, size=int(size), etag=_etag(etag), modified=modified.timestamp())

    # ---- the Storage contract -----------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO, *, size: int | None = None,
            content_type: str = "application/octet-stream") -> ObjectInfo:
        full = self._k(key)
        first = _read_block(stream, PUT_PART_SIZE)
        # One byte of lookahead tells a one-part object (a single PUT) from a longer stream.
        carry = stream.read(1) if len(first) == PUT_PART_SIZE else b""
        if not carry:
            if size is not None and len(first) != size:
                raise ValueError(f"stream gave {len(first)} bytes, {size} declared")
            self.client.put_object(Bucket=self.bucket, Key=full, Body=first, ContentType=content_type)
            return self.stat(key)
        upload_id = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=full, ContentType=content_type)["UploadId"]
        block: bytearray | None = first
        del first
        try:
            parts: list[dict[str, Any]] = []
            total = 0
            while block is not None:
                total += len(block)
                if size is not None and total > size:
                    raise ValueError(f"stream longer than the declared {size} bytes")
                number = len(parts) + 1
                answer = self.client.upload_part(Bucket=self.bucket, Key=full, UploadId=upload_id,
                                                 PartNumber=number, Body=block)
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
                block = None  # drop this part before reading the next: memory stays at one part
                if carry:
                    block = _read_block(stream, PUT_PART_SIZE, carry)
                    carry = stream.read(1) if len(block) == PUT_PART_SIZE else b""
            if size is not None and total != size:
                raise ValueError(f"stream ended after {total} of the declared {size} bytes")
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id,
                                                  MultipartUpload={"Parts": parts})
        except BaseException:
            self.abort_multipart(key, upload_id)
            raise
        return self.stat(key)

    def open(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if start < 0 or (end is not None and end < 0):
            raise ValueError("byte range offsets must be >= 0")
        full = self._k(key)
        if end is not None and end <= start:
            self.stat(key)  # still report a missing key
            return iter(())
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": full}
        if start or end is not None:
            params["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            answer = self.client.get_object(**params)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise ObjectNotFound(key) from None
            if _code(exc) in ("InvalidRange", "416"):  # start at or past the end: nothing to read
                self.stat(key)
                return iter(())
            raise
        return BodyChunks(answer["Body"])

    def stat(self, key: str) -> ObjectInfo:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._k(key))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise ObjectNotFound(key) from None
            raise
        return self._info(key, head["ContentLength"], head["ETag"], head["LastModified"])

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                yield self._info(obj["Key"][len(self.prefix):], obj["Size"], obj["ETag"], obj["LastModified"])

    def delete(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self._k(key))
        return True

    def delete_prefix(self, prefix: str) -> int:
        """Batched deletes (1000 keys per request) instead of one request per object."""
        keys = [self.prefix + info.key for info in self.list(prefix)]
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i:i + 1000]]
            answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):
                raise OSError(f"delete_objects failed for {len(answer['Errors'])} keys")
        return len(keys)

    def ping(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    # ---- presigned URLs -----------------------------------------------------------------------

    def presign_get(self, key: str, *, expires: int = 3600, filename: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._k(key)}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename)
        return self._presigner.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)

    def presign_put(self, key: str, *, size: int | None = None, expires: int = 3600,
                    crc32: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._k(key)}
        if size is not None:
            if size < 0:
                raise ValueError("size must be >= 0")
            # ContentLength becomes a signed header: S3 refuses a body of any other size.
            params["ContentLength"] = size
        if crc32:
            params["ChecksumCRC32"] = crc32  # a signed header too: S3 checks the body against it
        # Without a size only `host` is signed: any body up to S3's single-PUT limit
        # (MAX_UNSIZED_PUT), which S3 itself enforces.
        return self._presigner.generate_presigned_url("put_object", Params=params, ExpiresIn=expires)

    def create_multipart(self, key: str, *, size: int, part_size: int, expires: int = 3600,
                         crc32s: Crc32List | None = None) -> MultipartUpload:
        full = self._k(key)
        plan = plan_parts(size, part_size)
        if crc32s is not None and len(crc32s) != len(plan):
            raise ValueError(f"{len(crc32s)} CRC32 values for {len(plan)} parts")
        extra = {"ChecksumAlgorithm": "CRC32"} if crc32s else {}
        # CRC32 composite checksums are what boto3's own upload_file uses: S3 checks each part on
        # arrival, and completion combines 4-byte part CRCs instead of reading the object again.
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=full, **extra)["UploadId"]
        parts = self._part_urls(full, upload_id, plan, expires, crc32s)
        return MultipartUpload(key=key, upload_id=upload_id, part_size=part_size, parts=parts)

    def _part_urls(self, full: str, upload_id: str, plan: PartPlan, expires: int,
                   crc32s: Sequence[str] | None) -> PartUrls:
        parts: PartUrls = []
        for n, offset, length in plan:
            params: dict[str, Any] = {"Bucket": self.bucket, "Key": full, "UploadId": upload_id, "PartNumber": n}
            crc32 = crc32s[n - 1] if crc32s else None
            if crc32:
                params["ChecksumCRC32"] = crc32
            url = self._presigner.generate_presigned_url("upload_part", Params=params, ExpiresIn=expires)
            parts.append(PartUrl(number=n, offset=offset, size=length, url=url, headers=checksum_headers(crc32)))
        return parts

    def part_urls(self, key: str, upload_id: str, *, size: int, part_size: int, numbers: Sequence[int],
                  expires: int = 3600, crc32s: Sequence[str] | None = None) -> PartUrls:
        wanted = set(numbers)
        plan = [p for p in plan_parts(size, part_size) if p[0] in wanted]
        return self._part_urls(self._k(key), upload_id, plan, expires, crc32s)

    def list_parts(self, key: str, upload_id: str) -> StoredParts:
        found: StoredParts = []
        try:
            pages = self.client.get_paginator("list_parts").paginate(Bucket=self.bucket, Key=self._k(key),
                                                                     UploadId=upload_id)
            for page in pages:
                for part in page.get("Parts", []):
                    found.append((int(part["PartNumber"]), _etag(part["ETag"]), int(part["Size"])))
        except ClientError as exc:
            if _code(exc) in _NO_UPLOAD:
                raise ObjectNotFound(f"no such upload {upload_id}") from None
            raise
        return sorted(found)

    def complete_multipart(self, key: str, upload_id: str, parts: PartList, *,
                           crc32s: Crc32List | None = None) -> ObjectInfo:
        listed: list[dict[str, Any]] = [{"PartNumber": int(n), "ETag": f'"{_etag(str(etag))}"'} for n, etag in parts]
        if crc32s:
            for part in listed:
                if not 1 <= part["PartNumber"] <= len(crc32s):
                    raise ValueError(f"part {part['PartNumber']} is not part of this upload")
                part["ChecksumCRC32"] = crc32s[part["PartNumber"] - 1]
        try:
            # Ask first whether the upload exists: S3 answers NoSuchUpload here, while some
            # S3-compatible servers answer a completion of an aborted upload with a 500.
            self.client.list_parts(Bucket=self.bucket, Key=self._k(key), UploadId=upload_id, MaxParts=1)
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=self._k(key), UploadId=upload_id,
                                                  MultipartUpload={"Parts": listed})
        except ClientError as exc:
            if _code(exc) in _NO_UPLOAD:
                raise ObjectNotFound(f"no such upload {upload_id}") from None
            if _code(exc) in _BAD_PARTS:
                raise ValueError(f"parts refused by S3: {_code(exc)}") from None
            raise
        return self.stat(key)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._k(key), UploadId=upload_id)
        except ClientError as exc:
            if _code(exc) not in _NO_UPLOAD:
                raise

    def list_multipart(self, prefix: str) -> Iterator[tuple[str, str, float]]:
        validate_prefix(prefix)
        found = []
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix)
        for page in pages:
            for upload in page.get("Uploads", []):
                found.append((upload["Key"][len(self.prefix):], upload["UploadId"],
                              upload["Initiated"].timestamp()))
        yield from sorted(found, key=lambda item: (item[0], item[2]))
