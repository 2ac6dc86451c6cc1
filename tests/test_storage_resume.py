"""Resuming a multipart upload, on both storage backends: list_parts() names the parts stored so
far (number, ETag, size) and part_urls() signs fresh URLs for the others, bound to their CRC32."""

from __future__ import annotations

import zlib

import pytest
import requests

from caesar_faas.checksums import crc32_b64
from caesar_faas.storage import MIN_PART_SIZE, Storage
from caesar_faas.storage.base import CRC32_HEADER, ObjectNotFound
from tests.test_storage_contract import payload


def test_resume_a_multipart_upload(storage_backend: Storage) -> None:
    data = payload(2 * MIN_PART_SIZE + 321, seed=9)
    chunks = [data[i:i + MIN_PART_SIZE] for i in range(0, len(data), MIN_PART_SIZE)]
    crcs = [crc32_b64(zlib.crc32(c)) for c in chunks]
    key = "files/u1/resumed"
    upload = storage_backend.create_multipart(key, size=len(data), part_size=MIN_PART_SIZE, crc32s=crcs)
    assert storage_backend.list_parts(key, upload.upload_id) == []
    first = upload.parts[1]  # part 2 arrives first: parts are independent
    etag2 = requests.put(first.url, data=chunks[1], headers=first.headers, timeout=60).headers["ETag"].strip('"')
    assert storage_backend.list_parts(key, upload.upload_id) == [(2, etag2, MIN_PART_SIZE)]

    fresh = storage_backend.part_urls(key, upload.upload_id, size=len(data), part_size=MIN_PART_SIZE,
                                      numbers=[1, 3], expires=300, crc32s=crcs)
    assert [(p.number, p.offset, p.size) for p in fresh] == [(1, 0, MIN_PART_SIZE),
                                                              (3, 2 * MIN_PART_SIZE, 321)]
    assert [p.headers for p in fresh] == [{CRC32_HEADER: crcs[0]}, {CRC32_HEADER: crcs[2]}]
    parts = {2: etag2}
    for part in fresh:
        answer = requests.put(part.url, data=chunks[part.number - 1], headers=part.headers, timeout=60)
        assert answer.status_code == 200, answer.text
        parts[part.number] = answer.headers["ETag"].strip('"')
    assert [n for n, _, _ in storage_backend.list_parts(key, upload.upload_id)] == [1, 2, 3]
    info = storage_backend.complete_multipart(key, upload.upload_id, sorted(parts.items()), crc32s=crcs)
    assert info.size == len(data) and b"".join(storage_backend.open(key)) == data
    with pytest.raises(ObjectNotFound):
        storage_backend.list_parts(key, upload.upload_id)  # finished: nothing to resume


def test_list_parts_of_an_unknown_upload(storage_backend: Storage) -> None:
    upload = storage_backend.create_multipart("files/u1/other", size=MIN_PART_SIZE + 1, part_size=MIN_PART_SIZE)
    storage_backend.abort_multipart("files/u1/other", upload.upload_id)
    with pytest.raises(ObjectNotFound):
        storage_backend.list_parts("files/u1/other", upload.upload_id)
