// Signing in: a #token=<jwt> link (the fragment never reaches a server), a pasted token, or
// an OIDC provider through the authorization-code flow with PKCE, all in this browser.

import {BASE, claimsOf, getToken, isExpired, looksLikeJwt, setToken} from './api.js';
import {h} from './dom.js';

const OIDC_KEY = 'caesar-oidc';
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout's limit; a 30-day token is re-checked later

let expiryTimer = null;

// #token=<jwt> (the link `make run` prints): keep the token, drop it from the address bar and
// the history at once.
export function takeTokenFromFragment() {
  const match = /^#token=([^&]*)/.exec(location.hash);
  if (!match) return false;
  setToken(decodeURIComponent(match[1]));
  history.replaceState(null, '', location.pathname + location.search);
  return true;
}

export function currentClaims() {
  const token = getToken();
  return token ? claimsOf(token) : null;
}

// Calls onExpire when the signed-in token runs out, so the page asks to sign in again instead
// of failing request after request.
export function watchExpiry(onExpire) {
  clearTimeout(expiryTimer);
  const claims = currentClaims();
  if (!claims || typeof claims.exp !== 'number') return;
  const left = claims.exp * 1000 - Date.now();
  expiryTimer = setTimeout(() => (isExpired(currentClaims()) ? onExpire() : watchExpiry(onExpire)),
    Math.max(0, Math.min(left, MAX_TIMER_MS)));
}

export function signOut() {
  clearTimeout(expiryTimer);
  setToken('');
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(size) {
  return base64url(crypto.getRandomValues(new Uint8Array(size)));
}

async function discovery(issuer) {
  const resp = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  if (!resp.ok) throw new Error(`the provider's discovery document answered ${resp.status}`);
  return resp.json();
}

function redirectUri() {
  return location.origin + location.pathname;
}

// Step 1: to the provider, with a fresh PKCE verifier (kept in this tab only) and state.
export async function startOidc(oidc) {
  const doc = await discovery(oidc.issuer);
  const verifier = randomString(48);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  const state = randomString(24);
  sessionStorage.setItem(OIDC_KEY, JSON.stringify({
    state, verifier, redirect: redirectUri(), tokenEndpoint: doc.token_endpoint, back: location.hash,
  }));
  const url = new URL(doc.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code', client_id: oidc.client_id, redirect_uri: redirectUri(), scope: oidc.scope || 'openid',
    state, code_challenge: base64url(new Uint8Array(digest)), code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

// Step 2, on the way back (?code=...&state=...): check the state, trade the code and the
// verifier for a token at the provider's token endpoint. False when this is no such return.
export async function finishOidc(oidc) {
  const query = new URLSearchParams(location.search);
  if (!query.has('code') && !query.has('error')) return false;
  const pending = JSON.parse(sessionStorage.getItem(OIDC_KEY) || 'null');
  sessionStorage.removeItem(OIDC_KEY);
  history.replaceState(null, '', location.pathname + ((pending && pending.back) || ''));
  if (query.has('error')) {
    throw new Error(`${oidc ? oidc.provider : 'The provider'} refused the sign-in: ${
      query.get('error_description') || query.get('error')}`);
  }
  if (!oidc || !pending || query.get('state') !== pending.state) {
    throw new Error('This sign-in answer does not belong to a sign-in started here; please try again.');
  }
  const resp = await fetch(pending.tokenEndpoint, {
    method: 'POST',
    headers: {'Content-Type': 'application/x-www-form-urlencoded'},
    body: new URLSearchParams({
      grant_type: 'authorization_code', code: query.get('code'), redirect_uri: pending.redirect,
      client_id: oidc.client_id, code_verifier: pending.verifier,
    }),
  });
  const answer = await resp.json().catch(() => ({}));
  if (!resp.ok || !answer.access_token) {
    throw new Error(`${oidc.provider} did not give a token: ${answer.error_description || answer.error || resp.status}`);
  }
  setToken(answer.access_token);
  return true;
}

// The sign-in card. `reason` explains why it shows (expired, refused, ...).
export function signInView({oidc, reason, onSignedIn}) {
  const tokenId = 'token';
  const error = h('p', {id: 'token-error', class: 'field-error', hidden: true});
  const input = h('input', {
    id: tokenId, name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true,
    'aria-describedby': 'token-help token-error',
  });
  const button = h('button', {type: 'submit', class: 'primary'}, 'Sign in');

  function fail(message) {
    error.textContent = message;
    error.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }

  async function submit(event) {
    event.preventDefault();
    const value = input.value.trim();
    error.hidden = true;
    input.removeAttribute('aria-invalid');
    if (!looksLikeJwt(value)) return fail('This is not a token: a token has three parts separated by dots (eyJ...).');
    if (isExpired(claimsOf(value))) return fail('This token has expired: get a new one.');
    button.disabled = true;
    try {
      // The server decides whether the token is good; it is kept only once it has said yes.
      const resp = await fetch(`${BASE}/files?limit=1`, {headers: {Authorization: `Bearer ${value}`}, cache: 'no-store'});
      if (resp.status === 401) return fail('The server did not accept this token (wrong signature, issuer or audience).');
      if (!resp.ok) return fail(`Could not check the token: the server answered ${resp.status}.`);
      setToken(value);
      onSignedIn();
    } catch (exc) {
      fail(`Could not check the token: ${exc.message}`);
    } finally {
      button.disabled = false;
    }
    return undefined;
  }

  const providerButton = oidc && h('button', {
    type: 'button', class: 'primary',
    onclick: (event) => {
      const self = event.currentTarget;
      self.disabled = true;
      startOidc(oidc).catch((exc) => {
        self.disabled = false;
        fail(`Could not reach ${oidc.provider}: ${exc.message}`);
      });
    },
  }, `Sign in with ${oidc.provider}`);

  return h('section', {class: 'card signin', 'aria-labelledby': 'signin-heading'},
    h('h2', {id: 'signin-heading'}, 'Sign in'),
    reason && h('p', {class: 'notice', role: 'alert'}, reason),
    providerButton && h('p', {}, providerButton),
    providerButton && h('p', {class: 'muted'}, 'or paste a token:'),
    h('form', {class: 'token-form', onsubmit: submit},
      h('label', {for: tokenId}, 'Token'),
      input,
      h('p', {id: 'token-help', class: 'help'},
        'A bearer token (JWT), kept in this browser only. ', h('code', {}, 'make run'),
        ' prints a sign-in link and a token; ', h('code', {}, 'make token ARGS="--user bob"'), ' mints more.'),
      error,
      button));
}

// Who is signed in, and the Sign out button, for the page header.
export function accountView(onSignOut) {
  const claims = currentClaims() || {};
  const left = typeof claims.exp === 'number' ? claims.exp * 1000 - Date.now() : null;
  const days = left === null ? null : Math.floor(left / 86_400_000);
  const until = left === null ? '' : days >= 1 ? ` · ${days} d left` : ` · ${Math.max(1, Math.round(left / 60_000))} min left`;
  return h('div', {class: 'account-inner'},
    h('span', {class: 'who'}, 'Signed in as ', h('strong', {}, claims.sub || 'unknown'),
      h('span', {class: 'muted'}, until)),
    h('button', {type: 'button', onclick: onSignOut}, 'Sign out'));
}
