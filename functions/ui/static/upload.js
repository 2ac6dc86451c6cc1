// Uploads from the browser. Up to the inline limit: one multipart/form-data POST to the upload
// function. Above it, the presigned flow (docs/large-uploads.md): the CRC32 of every part is
// computed here first and signed into its URL, the parts go straight to storage (S3/MinIO or the
// local signed endpoint, a few at a time, retried), then the upload is completed.

import {ApiError, BASE, api, authHeaders, notifyUnauthorized} from './api.js';

const PARALLEL_PARTS = 3;
const PART_TRIES = 3;
const MIB = 1024 * 1024;

let limitsCache = null;

export async function uploadLimits() {
  limitsCache = limitsCache || await api('/upload');
  return limitsCache;
}

// One XMLHttpRequest (fetch cannot report upload progress). Resolves {status, etag, json};
// network failures reject with an Error whose `retry` is true.
function send({method, url, headers, body, onProgress}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers || {})) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => onProgress && event.lengthComputable && onProgress(event.loaded);
    xhr.onload = () => {
      let json = null;
      try {
        json = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        json = null;
      }
      resolve({status: xhr.status, etag: xhr.getResponseHeader('ETag'), json});
    };
    xhr.onerror = () => reject(Object.assign(new Error(`the connection to ${new URL(url, location.href).host} failed`),
      {retry: true}));
    xhr.send(body);
  });
}

// CRC-32 (IEEE, as zlib and S3's x-amz-checksum-crc32), table driven.
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes, start = 0xffffffff) {
  let c = start;
  for (let i = 0; i < bytes.length; i += 1) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return c;
}

// S3's encoding: base64 of the 4 big-endian bytes.
export function crc32Base64(bytes) {
  const value = (crc32(bytes) ^ 0xffffffff) >>> 0;
  return btoa(String.fromCharCode(value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff));
}

// The part size the service will plan with: its default, raised in whole MiB when the file
// would otherwise need more parts than S3 allows.
export function partPlan(size, limits) {
  let partSize = Math.max(limits.part_size, limits.min_part_size || 0);
  if (Math.ceil(size / partSize) > limits.max_parts) partSize = Math.ceil(size / limits.max_parts / MIB) * MIB;
  const parts = [];
  for (let offset = 0, number = 1; offset < size; offset += partSize, number += 1) {
    parts.push({number, offset, size: Math.min(partSize, size - offset)});
  }
  return {partSize, parts: size <= partSize ? [{number: 1, offset: 0, size}] : parts};
}

function failure(answer, fallback) {
  return new ApiError(answer.status, answer.json || {status: fallback});
}

async function inline(file, tag, progress) {
  const form = new FormData();
  form.append('file', file, file.name);
  if (tag) form.append('tag', tag);
  progress('Uploading', 0);
  const answer = await send({
    method: 'POST', url: `${BASE}/upload`, headers: authHeaders(), body: form,
    onProgress: (loaded) => progress('Uploading', loaded / file.size),
  });
  if (answer.status === 401) notifyUnauthorized();
  if (answer.status !== 201) throw failure(answer, `the upload answered ${answer.status}`);
  return answer.json;
}

async function putPart(url, headers, blob, onProgress) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const answer = await send({method: 'PUT', url, headers, body: blob, onProgress});
      if (answer.status >= 200 && answer.status < 300 && answer.etag) return answer.etag;
      if (answer.status >= 200 && answer.status < 300) {
        throw new Error('the storage did not show the part\'s ETag (its CORS rules must expose ETag: infra/s3/cors.json)');
      }
      if (answer.status < 500 || attempt >= PART_TRIES) throw failure(answer, `the storage answered ${answer.status}`);
    } catch (exc) {
      if (!exc.retry || attempt >= PART_TRIES) throw exc;
    }
    onProgress(0);
    await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
  }
}

async function presigned(file, tag, limits, progress) {
  const {partSize, parts} = partPlan(file.size, limits);
  const crcs = [];
  for (const part of parts) {
    const bytes = new Uint8Array(await file.slice(part.offset, part.offset + part.size).arrayBuffer());
    crcs.push(crc32Base64(bytes));
    progress('Checking', (part.offset + part.size) / file.size);
  }
  const created = await api('/upload', {
    method: 'POST', json: {filename: file.name, size: file.size, part_size: partSize, part_crc32: crcs, ...(tag ? {tag} : {})},
  });
  const targets = created.multipart
    ? created.multipart.parts
    : [{number: 1, offset: 0, size: file.size, url: created.single.url, headers: created.single.headers}];
  const sent = new Map();
  const report = () => progress('Uploading', [...sent.values()].reduce((a, b) => a + b, 0) / file.size);
  const etags = [];
  let next = 0;
  async function worker() {
    while (next < targets.length) {
      const part = targets[next];
      next += 1;
      const blob = file.slice(part.offset, part.offset + part.size);
      const etag = await putPart(part.url, part.headers, blob, (loaded) => { sent.set(part.number, loaded); report(); });
      sent.set(part.number, part.size);
      report();
      etags.push({number: part.number, etag});
    }
  }
  progress('Uploading', 0);
  await Promise.all(Array.from({length: Math.min(PARALLEL_PARTS, targets.length)}, worker));
  progress('Registering', 1);
  const body = created.multipart ? {parts: etags.sort((a, b) => a.number - b.number)} : {};
  await api(`/upload/${encodeURIComponent(created.uuid)}/complete`, {method: 'POST', json: body});
  return created;
}

// Upload `file`; progress(phase, fraction 0..1). Resolves the file's record (maybe pending).
export async function uploadFile(file, tag, progress) {
  const limits = await uploadLimits();
  if (file.size <= limits.max_inline_upload) return inline(file, tag, progress);
  return presigned(file, tag, limits, progress);
}

// A presigned upload is registered when the storage's event has been handled: wait for it.
export async function waitUntilRegistered(fileId, {timeoutMs = 120_000} = {}) {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 250; ; delay = Math.min(delay * 2, 2000)) {
    const record = await api(`/files/${encodeURIComponent(fileId)}`);
    if (record.state !== 'pending' || Date.now() > deadline) return record;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
