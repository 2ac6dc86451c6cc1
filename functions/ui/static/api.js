// The page's one way to call the functions: the bearer token of this browser, JSON errors
// turned into ApiError (status, code, the option at fault), 401 reported once to the sign-in.

export const BASE = '/function';
const TOKEN_KEY = 'caesar-token';

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.status) || `the server answered ${status}`);
    this.status = status;
    this.body = body || {};
    this.code = this.body.error || '';
    this.option = this.body.option || this.body.field || null;
  }
}

let token = localStorage.getItem(TOKEN_KEY) || '';
let onUnauthorized = () => {};

export function getToken() {
  return token;
}

export function setToken(value) {
  token = (value || '').trim();
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

// For the few requests not made through api() (uploads with progress).
export function notifyUnauthorized() {
  onUnauthorized();
}

// The claims of a JWT, read without checking the signature: only to show who is signed in and
// when the token runs out (the server checks everything else).
export function claimsOf(jwt) {
  try {
    const payload = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const text = atob(payload + '='.repeat((4 - (payload.length % 4)) % 4));
    const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

export function looksLikeJwt(value) {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(value) && claimsOf(value) !== null;
}

export function isExpired(claims, now = Date.now()) {
  return Boolean(claims && typeof claims.exp === 'number' && claims.exp * 1000 <= now);
}

export function authHeaders(extra) {
  return {Authorization: `Bearer ${token}`, ...(extra || {})};
}

async function errorBody(resp) {
  try {
    return await resp.json();
  } catch {
    return {status: `${resp.status} ${resp.statusText}`};
  }
}

// api('/jobs?limit=20') -> parsed JSON; {json} sends a JSON body; {raw: true} answers the
// Response itself (blobs, text).
export async function api(path, {method = 'GET', json, body, signal, raw = false, headers} = {}) {
  const extra = {...(headers || {})};
  if (json !== undefined) {
    extra['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  const resp = await fetch(BASE + path, {method, headers: authHeaders(extra), body, signal, cache: 'no-store'});
  if (resp.status === 401) {
    onUnauthorized();
    throw new ApiError(401, await errorBody(resp));
  }
  if (!resp.ok) throw new ApiError(resp.status, await errorBody(resp));
  if (raw) return resp;
  return (resp.headers.get('Content-Type') || '').includes('json') ? resp.json() : resp.text();
}

// Let the browser download `url` itself (a signed storage URL or an object URL).
export function saveAs(url, filename) {
  const link = document.createElement('a');
  link.href = url;
  link.download = filename || '';
  link.rel = 'noopener';
  document.body.append(link);
  link.click();
  link.remove();
}

// A stored file or product: ask for a signed link with the token, then the browser fetches
// the bytes from storage (large FITS files never pass through the page's memory).
export async function download(path, filename) {
  const sep = path.includes('?') ? '&' : '?';
  const answer = await api(`${path}${sep}link=1`);
  saveAs(answer.url, filename || answer.filename);
}

// Something the server streams (the tar.gz of a job): fetched with the token into a blob.
export async function downloadBlob(path, filename) {
  const resp = await api(path, {raw: true});
  const url = URL.createObjectURL(await resp.blob());
  saveAs(url, filename);
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
