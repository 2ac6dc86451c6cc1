// The page's entry point: sign-in state, the header's account area, and two views chosen by
// the address fragment: #/ (files, submit, jobs) and #/jobs/<id> (one job).

import {claimsOf, getToken, isExpired, whenUnauthorized} from './api.js';
import {accountView, finishOidc, signInView, signOut, takeTokenFromFragment, watchExpiry} from './auth.js';
import {clear, h} from './dom.js';
import {filesView} from './files.js';
import {jobPage} from './jobpage.js';
import {jobsView} from './jobs.js';
import {submitView} from './submit.js';

const main = document.getElementById('main');
const account = document.getElementById('account');
let config = {oidc: null};
let mounted = [];

function unmount() {
  for (const view of mounted) view.dispose();
  mounted = [];
}

function showSignIn(reason) {
  unmount();
  signOut();
  clear(account);
  clear(main, signInView({oidc: config.oidc, reason, onSignedIn: () => route()}));
  document.title = 'Sign in · caesar-faas';
}

const EXPIRED = 'Your sign-in has expired or is no longer accepted. Please sign in again.';

function route() {
  const token = getToken();
  if (!token) return showSignIn(null);
  if (isExpired(claimsOf(token))) return showSignIn(EXPIRED);
  watchExpiry(() => showSignIn(EXPIRED));
  clear(account, accountView(() => showSignIn('You are signed out.')));
  unmount();
  const match = /^#\/jobs\/([0-9a-fA-F-]{36})$/.exec(location.hash);
  if (match) {
    const page = jobPage(match[1]);
    mounted = [page];
    clear(main, page.el);
    document.title = `Job ${match[1].slice(0, 8)} · caesar-faas`;
    page.focus();
    return undefined;
  }
  mounted = [filesView(), submitView(), jobsView()];
  clear(main, h('div', {class: 'home'}, mounted.map((view) => view.el)));
  document.title = 'caesar-faas';
  return undefined;
}

async function start() {
  document.getElementById('skip').addEventListener('click', (event) => {
    event.preventDefault();
    main.focus();
  });
  try {
    const resp = await fetch('/function/ui/config.json', {cache: 'no-store'});
    if (resp.ok) config = await resp.json();
  } catch {
    // the page still works with a token
  }
  whenUnauthorized(() => { if (getToken()) showSignIn(EXPIRED); });
  takeTokenFromFragment();
  try {
    await finishOidc(config.oidc);
  } catch (exc) {
    return showSignIn(exc.message);
  }
  window.addEventListener('hashchange', () => {
    if (!takeTokenFromFragment() && !location.hash.startsWith('#/') && location.hash !== '') return;
    route();
  });
  return route();
}

start();
