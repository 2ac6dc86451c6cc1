"""file:// storage: each object is a plain file under the root, written atomically.

Layout under the root:
  <key>                              the object's bytes (a key "a/b" is the file root/a/b)
  .caesar/meta/<h[:2]>/<h>.json      etag, content type and the identity (inode, size, mtime) of the
                                     data file it describes, h = sha256(key); a sidecar that does not
                                     match the data file (a crash or race between the two renames,
                                     a file put there by hand) is ignored and a fresh one written
  .caesar/tmp/                       files being written; os.replace() publishes them (same filesystem)
  .caesar/multipart/<upload_id>/     unfinished multipart uploads: upload.json, the object being
                                     assembled and one marker per part in place (local_parts.py)

ETags name versions: a file:// object's ETag is version_tag() of the very file that holds it.
Every write makes a new file (a temp file renamed into place), so every version has its own tag,
and none costs a read. (It used to be the md5 of the bytes, as S3's single PUT: md5 runs at
about half of cp's speed here and capped every upload, issue 11.) A part's ETag comes from its
CRC32 and size (part_tag: retries of a part answer the same ETag), and a completed multipart
object keeps S3's form, md5(part ETags)-<parts>. Clients treat ETags as opaque, as S3 asks.

Signed URLs (the presigned equivalent) are served by local_http.py on Settings.public_url.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, BinaryIO
from urllib.parse import quote, urlencode

from ..bodyfile import body_file, copy_range, crc32_range, write_stream
from ..checksums import crc32_b64
from ..config import Settings, load_settings
from .base import (
    CHUNK,
    MAX_UNSIZED_PUT,
    BadDigest,
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
    plan_parts,
    validate_key,
    validate_prefix,
)
from .local_parts import assembled, part_tag, receive_part, stored_parts, write_part
from .notifications import COMPLETE_MULTIPART, PUT, minio_record
from .signing import Grant, Signer, load_signing_key

log = logging.getLogger(__name__)

Notify = Callable[[dict[str, Any]], None]

INTERNAL = ".caesar"
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
ROUTE_PREFIX = "/storage/o/"  # where local_http.py serves signed URLs


class FileChunks:
    """Chunks of an open file between two offsets; closes the file when done or closed.

    A class rather than a generator so the file is opened (and a missing key reported) at call
    time, and so WSGI servers can close() it when a client goes away mid-download.
    """

    def __init__(self, fh: BinaryIO, start: int, end: int) -> None:
        self._fh = fh
        self._left = max(0, end - start)
        if self._left:
            fh.seek(start)

    def __iter__(self) -> FileChunks:
        return self

    def __next__(self) -> bytes:
        if self._left <= 0:
            self.close()
            raise StopIteration
        chunk = self._fh.read(min(CHUNK, self._left))
        if not chunk:  # the file shrank under us: stop rather than loop
            self.close()
            raise StopIteration
        self._left -= len(chunk)
        return chunk

    def close(self) -> None:
        self._left = 0
        self._fh.close()


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def version_tag(st: os.stat_result) -> str:
    """The ETag of the file st describes: 32 hex digits from its identity (see the module doc)."""
    identity = ":".join(str(n) for n in _identity(st))
    return hashlib.md5(identity.encode(), usedforsecurity=False).hexdigest()


def _check_held(fd: int, size: int | None, *, limit: int | None, crc32: str | None,
                want_crc: bool) -> tuple[int, str | None]:
    """(bytes, CRC32 when wanted) of a body the server holds in the file fd, checked as
    _receive checks a stream: exactly size bytes (else at most limit), the signed CRC32."""
    held = os.fstat(fd).st_size
    if size is not None and held != size:
        raise ValueError(f"stream ended after {held} of the declared {size} bytes" if held < size
                         else f"stream longer than the declared {size} bytes")
    if size is None and limit is not None and held > limit:
        raise ValueError(f"stream longer than the allowed {limit} bytes")
    got = crc32_b64(crc32_range(fd, 0, held)) if want_crc or crc32 is not None else None
    if crc32 is not None and got != crc32:
        raise BadDigest(f"the body's CRC32 is {got}, the URL was signed for {crc32}")
    return held, got


class LocalStorage(Storage):
    def __init__(self, root: str | Path, *, settings: Settings | None = None, notify: Notify | None = None,
                 bucket: str | None = None) -> None:
        self.root = Path(root).resolve()
        self.url = f"file://{self.root}"
        self.bucket = bucket or self.root.name or "objects"
        self.notify = notify
        self._settings = settings
        self._signer: Signer | None = None
        self._internal = self.root / INTERNAL
        self._tmp = self._internal / "tmp"
        self._meta = self._internal / "meta"
        self._uploads = self._internal / "multipart"
        for folder in (self._tmp, self._meta, self._uploads):
            folder.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalStorage({self.url!r})"

    # ---- paths and sidecars -------------------------------------------------------------------

    def path(self, key: str) -> Path:
        """The data file of key (validated). Readers inside the service should prefer open()."""
        return self.root / validate_key(key)

    def _meta_path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self._meta / digest[:2] / f"{digest}.json"

    def _tmp_file(self, folder: Path | None = None) -> Path:
        return (folder or self._tmp) / f".tmp-{uuid.uuid4().hex}"

    def _write_json(self, path: Path, doc: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp_file()
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)

    def _read_meta(self, key: str, st: os.stat_result) -> dict[str, Any]:
        """The sidecar of key if it describes this very data file (st), else a fresh one."""
        meta_path = self._meta_path(key)
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("identity") == _identity(st):
                return meta
        except (OSError, ValueError):
            pass
        meta = {"etag": version_tag(st), "content_type": "application/octet-stream", "identity": _identity(st)}
        try:
            self._write_json(meta_path, meta)
        except OSError:
            log.warning("could not cache the etag of %s", key)
        return meta

    def _publish(self, tmp: Path, key: str, content_type: str, etag: str | None = None) -> ObjectInfo:
        """Move a finished temp file to key and record its sidecar (etag: its version tag unless
        given). The rename keeps the inode and mtime, so the identity recorded stays true."""
        target = self.root / key
        st = os.stat(tmp)
        etag = etag or version_tag(st)
        self._write_json(self._meta_path(key), {"etag": etag, "content_type": content_type,
                                                "identity": _identity(st)})
        for _ in range(5):  # a concurrent delete may prune the parent folder between mkdir and replace
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(tmp, target)
                break
            except FileNotFoundError:
                if not tmp.exists():
                    raise
        else:
            raise OSError(f"could not create the folder of {key}")
        st = os.stat(target)
        return ObjectInfo(key=key, size=st.st_size, etag=etag, modified=st.st_mtime)

    def _publish_new(self, tmp: Path, key: str, content_type: str) -> ObjectInfo:
        """_publish, with a key that collides with a folder (or a file above it) as ValueError."""
        try:
            return self._publish(tmp, key, content_type)
        except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
            raise ValueError(f"key {key!r} conflicts with an existing object or folder") from exc

    def _prune(self, folder: Path, top: Path) -> None:
        """Remove empty folders from folder up to (not including) top."""
        while folder != top and top in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    # ---- the Storage contract -----------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO, *, size: int | None = None,
            content_type: str = "application/octet-stream") -> ObjectInfo:
        return self._put(key, stream, size=size, limit=None, content_type=content_type)

    @property
    def staging_dir(self) -> Path:
        """Where a file meant for put_file should be written: on the storage's filesystem, so
        put_file is a rename, not a copy."""
        return self._tmp

    def put_file(self, key: str, path: str, *, size: int,
                 content_type: str = "application/octet-stream") -> ObjectInfo:
        """Move the file into place when it is on this filesystem (nothing is read); otherwise
        copy it once like put()."""
        validate_key(key)
        if os.stat(path).st_size != size:
            raise ValueError(f"{path} does not hold the declared {size} bytes")
        tmp = self._tmp_file()
        try:
            os.replace(path, tmp)
        except OSError:  # another filesystem (EXDEV): one copy
            with open(path, "rb") as fh:
                return self.put(key, fh, size=size, content_type=content_type)
        try:
            return self._publish_new(tmp, key, content_type)
        finally:
            tmp.unlink(missing_ok=True)

    def _put(self, key: str, stream: IO[bytes], *, size: int | None, limit: int | None,
             content_type: str, crc32: str | None = None) -> ObjectInfo:
        validate_key(key)
        tmp = self._tmp_file()
        try:
            self._receive(stream, tmp, size, limit=limit, crc32=crc32)
            return self._publish_new(tmp, key, content_type)
        finally:
            tmp.unlink(missing_ok=True)

    def _receive(self, stream: IO[bytes], target: Path, size: int | None, *, limit: int | None = None,
                 crc32: str | None = None, want_crc: bool = False) -> str | None:
        """Copy stream to target (bodyfile.write_stream). With size, exactly size bytes, else with limit
        at most limit bytes; ValueError otherwise. With crc32, BadDigest unless the bytes have
        that CRC32. The bytes' CRC32 (S3's encoding) when it was computed (crc32 or want_crc)."""
        want_crc = want_crc or crc32 is not None
        fd = body_file(stream)
        if fd is not None:  # the server holds the whole body in a file: copy it kernel-side
            return self._receive_file(fd, target, size, limit=limit, crc32=crc32, want_crc=want_crc)
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            _, crc = write_stream(stream, out, size=size, limit=limit, crc=want_crc)
        finally:
            os.close(out)
        if crc32 is not None and crc32_b64(crc) != crc32:
            raise BadDigest(f"the body's CRC32 is {crc32_b64(crc)}, the URL was signed for {crc32}")
        return crc32_b64(crc) if want_crc else None

    def _receive_file(self, fd: int, target: Path, size: int | None, *, limit: int | None, crc32: str | None,
                      want_crc: bool) -> str | None:
        """_receive of a body the server holds in the file fd."""
        held, got = _check_held(fd, size, limit=limit, crc32=crc32, want_crc=want_crc)
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if copy_range(fd, out, 0, held) != held:
                raise ValueError("the body ended early")
        finally:
            os.close(out)
        return got

    def _stat_file(self, key: str) -> os.stat_result:
        try:
            st = os.stat(self.root / validate_key(key))
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        if not os.path.isfile(self.root / key):
            raise ObjectNotFound(key)
        return st

    def stat(self, key: str) -> ObjectInfo:
        st = self._stat_file(key)
        meta = self._read_meta(key, st)
        return ObjectInfo(key=key, size=st.st_size, etag=meta["etag"], modified=st.st_mtime)

    def open_object(self, key: str) -> tuple[BinaryIO, ObjectInfo, str]:
        """An open handle on the current version of key, its info and content type, all describing
        that same version even if the key is replaced meanwhile (the HTTP layer needs that)."""
        try:
            fh = open(self.root / validate_key(key), "rb")  # noqa: SIM115 - handed to the caller
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(key) from None
        try:
            st = os.fstat(fh.fileno())
            meta = self._read_meta(key, st)
        except BaseException:
            fh.close()
            raise
        info = ObjectInfo(key=key, size=st.st_size, etag=meta["etag"], modified=st.st_mtime)
        return fh, info, str(meta.get("content_type") or "application/octet-stream")

    def open(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if start < 0 or (end is not None and end < 0):
            raise ValueError("byte range offsets must be >= 0")
        try:
            fh = open(self.root / validate_key(key), "rb")  # noqa: SIM115 - FileChunks closes it
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(key) from None
        # The size of the open handle: a concurrent replace cannot mix two versions.
        size = os.fstat(fh.fileno()).st_size
        return FileChunks(fh, start, size if end is None else min(end, size))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        base = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        keys: list[str] = []
        for folder, dirs, files in os.walk(base):
            if Path(folder) == self.root and INTERNAL in dirs:
                dirs.remove(INTERNAL)
            rel = os.path.relpath(folder, self.root)
            for name in files:
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        for key in sorted(keys):
            try:
                yield self.stat(key)
            except (ObjectNotFound, ValueError):
                continue  # deleted meanwhile, or a hand-made file whose name is no valid key

    def delete(self, key: str) -> bool:
        target = self.root / validate_key(key)
        try:
            if not target.is_file():
                return False
            target.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return False
        meta = self._meta_path(key)
        meta.unlink(missing_ok=True)
        self._prune(target.parent, self.root)
        self._prune(meta.parent, self._meta)
        return True

    # ---- signed URLs (served by local_http.py) --------------------------------------------------

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            self._signer = Signer(load_signing_key(self.settings))
        return self._signer

    def _signed_url(self, grant: Grant) -> str:
        base = self.settings.public_url.rstrip("/")
        return f"{base}{ROUTE_PREFIX}{quote(grant.key, safe='/')}?{urlencode(self.signer.sign(grant))}"

    def presign_get(self, key: str, *, expires: int = 3600, filename: str | None = None) -> str:
        validate_key(key)
        return self._signed_url(Grant("GET", key, int(time.time()) + expires, filename=filename))

    def presign_put(self, key: str, *, size: int | None = None, expires: int = 3600,
                    crc32: str | None = None) -> str:
        validate_key(key)
        deadline = int(time.time()) + expires
        if size is None:
            # Like an S3 URL signed without ContentLength: any body up to S3's single-PUT limit.
            return self._signed_url(Grant("PUT", key, deadline, max_size=MAX_UNSIZED_PUT, crc32=crc32))
        if size < 0:
            raise ValueError("size must be >= 0")
        return self._signed_url(Grant("PUT", key, deadline, size=size, crc32=crc32))

    def signed_put(self, key: str, stream: IO[bytes], *, size: int | None = None, max_size: int | None = None,
                   content_type: str = "application/octet-stream", crc32: str | None = None) -> ObjectInfo:
        """A PUT through a signed URL (exactly `size` bytes, else at most `max_size`, with the
        CRC32 `crc32` when given): store, then announce it like MinIO would."""
        if size is None and max_size is None:
            raise ValueError("a signed PUT needs a size or a maximum size")
        info = self._put(key, stream, size=size, limit=None if size is not None else max_size,
                         content_type=content_type, crc32=crc32)
        self._announce(info, PUT)
        return info

    def _announce(self, info: ObjectInfo, event_name: str) -> None:
        if self.notify is None:
            return
        try:
            self.notify(minio_record(self.bucket, info, event_name))
        except Exception:  # noqa: BLE001 - the object is stored; the monitor catches missed events
            log.exception("object-created notification for %s failed", info.key)

    # ---- multipart ----------------------------------------------------------------------------

    def _upload_dir(self, upload_id: str) -> Path:
        if not isinstance(upload_id, str) or not UPLOAD_ID.fullmatch(upload_id):
            raise ObjectNotFound(f"no such upload {upload_id!r}")
        return self._uploads / upload_id

    def _upload_doc(self, folder: Path, key: str) -> dict[str, Any]:
        try:
            doc = json.loads((folder / "upload.json").read_text())
        except (OSError, ValueError):
            raise ObjectNotFound(f"no such upload {folder.name}") from None
        if doc.get("key") != key:  # like S3: an upload id only exists together with its key
            raise ObjectNotFound(f"no such upload {folder.name} for {key!r}")
        return doc

    def create_multipart(self, key: str, *, size: int, part_size: int, expires: int = 3600,
                         crc32s: Crc32List | None = None) -> MultipartUpload:
        validate_key(key)
        plan = plan_parts(size, part_size)
        if crc32s is not None and len(crc32s) != len(plan):
            raise ValueError(f"{len(crc32s)} CRC32 values for {len(plan)} parts")
        upload_id = uuid.uuid4().hex
        folder = self._uploads / upload_id
        folder.mkdir()
        deadline = int(time.time()) + expires
        self._write_json(folder / "upload.json", {
            "key": key, "size": size, "part_size": part_size, "initiated": time.time(), "expires": deadline,
            "plan": plan,
        })
        parts = self._part_urls(key, upload_id, plan, deadline, crc32s)
        return MultipartUpload(key=key, upload_id=upload_id, part_size=part_size, parts=parts)

    def _part_urls(self, key: str, upload_id: str, plan: PartPlan, deadline: int,
                   crc32s: Sequence[str] | None) -> PartUrls:
        """plan: the parts to sign; crc32s: one per part of the whole upload."""
        urls: PartUrls = []
        for n, offset, length in plan:
            crc = crc32s[n - 1] if crc32s else None
            urls.append(PartUrl(number=n, offset=offset, size=length, headers=checksum_headers(crc),
                                url=self._signed_url(Grant("PUT", key, deadline, size=length, upload_id=upload_id,
                                                           part=n, crc32=crc))))
        return urls

    def part_urls(self, key: str, upload_id: str, *, size: int, part_size: int, numbers: Sequence[int],
                  expires: int = 3600, crc32s: Sequence[str] | None = None) -> PartUrls:
        doc = self._upload_doc(self._upload_dir(upload_id), key)
        wanted = set(numbers)
        plan: PartPlan = [(int(n), int(offset), int(length)) for n, offset, length in doc["plan"] if n in wanted]
        return self._part_urls(key, upload_id, plan, int(time.time()) + expires, crc32s)

    def list_parts(self, key: str, upload_id: str) -> StoredParts:
        folder = self._upload_dir(upload_id)
        doc = self._upload_doc(folder, key)
        return stored_parts(folder, doc["plan"])

    def put_part(self, key: str, upload_id: str, number: int, stream: IO[bytes], *, size: int,
                 crc32: str | None = None) -> str:
        """Store one part (a retry replaces it); its ETag (local_parts.part_tag), which the
        client sends back with the completion. With crc32, a body with another CRC32 is refused
        (BadDigest) and replaces nothing."""
        folder = self._upload_dir(upload_id)
        doc = self._upload_doc(folder, key)
        planned = {n: length for n, _, length in doc["plan"]}
        if planned.get(number) != size:
            raise ValueError(f"part {number} of this upload must be {planned.get(number)} bytes, not {size}")
        offset = next(start for n, start, _ in doc["plan"] if n == number)
        try:
            if body_file(stream) is None:  # a stream: read once, into the object (local_parts.receive_part)
                etag = receive_part(folder, number, offset, size, stream, crc32)
                if etag is not None:
                    return etag
            with self._checked_part(stream, size, crc32, self._tmp_file(folder)) as (src, crc):
                return write_part(folder, number, offset, size, src, part_tag(crc, size))
        except FileNotFoundError:
            raise ObjectNotFound(f"no such upload {upload_id}") from None  # completed or aborted meanwhile

    @contextlib.contextmanager
    def _checked_part(self, stream: IO[bytes], size: int, crc32: str | None, tmp: Path) -> Iterator[tuple[int, str]]:
        """(a descriptor holding the part's checked bytes, their CRC32): the server's own body file
        when it holds the whole body, else tmp after receiving the stream into it."""
        fd = body_file(stream)
        if fd is not None:
            _, got = _check_held(fd, size, limit=None, crc32=crc32, want_crc=True)
            assert got is not None
            yield fd, got
            return
        try:
            received = self._receive(stream, tmp, size, crc32=crc32, want_crc=True)
            assert received is not None
            with open(tmp, "rb") as src:
                yield src.fileno(), received
        finally:
            tmp.unlink(missing_ok=True)

    def complete_multipart(self, key: str, upload_id: str, parts: PartList, *,
                           crc32s: Crc32List | None = None) -> ObjectInfo:
        # crc32s is not needed here: each part's CRC32 was checked when it arrived.
        folder = self._upload_dir(upload_id)
        doc = self._upload_doc(folder, key)
        numbers = [n for n, _ in parts]
        planned = [n for n, _, _ in doc["plan"]]
        if numbers != planned:
            raise ValueError(f"parts must be exactly {planned[0]}..{planned[-1]} in order")
        # Claim the upload with an atomic rename: of two concurrent completions one wins, the
        # other sees 'no such upload' (as S3 answers a second completion).
        claimed = folder.with_name(f"{upload_id}.completing")
        try:
            os.rename(folder, claimed)
        except FileNotFoundError:
            raise ObjectNotFound(f"no such upload {upload_id}") from None
        try:
            with assembled(claimed, doc["plan"], list(parts), int(doc["size"])) as (target, etags):
                digests = b"".join(bytes.fromhex(etag) for etag in etags)
                etag = f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(etags)}"
                info = self._publish(target, key, "application/octet-stream", etag)
        except BaseException:
            os.rename(claimed, folder)  # give the upload back: the client may fix its list and retry
            raise
        shutil.rmtree(claimed, ignore_errors=True)
        self._announce(info, COMPLETE_MULTIPART)
        return info

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            folder = self._upload_dir(upload_id)
            self._upload_doc(folder, key)
        except ObjectNotFound:
            return
        doomed = folder.with_name(f"{upload_id}.aborting")
        try:
            os.rename(folder, doomed)
        except OSError:
            return
        shutil.rmtree(doomed, ignore_errors=True)

    def list_multipart(self, prefix: str) -> Iterator[tuple[str, str, float]]:
        validate_prefix(prefix)
        found = []
        for entry in os.scandir(self._uploads):
            if not UPLOAD_ID.fullmatch(entry.name):
                continue  # being completed or aborted
            try:
                doc = json.loads(Path(entry.path, "upload.json").read_text())
            except (OSError, ValueError):
                continue
            if doc["key"].startswith(prefix):
                found.append((doc["key"], entry.name, float(doc["initiated"])))
        yield from sorted(found, key=lambda item: (item[0], item[2]))
