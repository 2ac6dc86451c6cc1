// Small DOM and formatting helpers. Elements are built with h(), never from HTML strings, so
// nothing a user uploaded or typed (file names, tags, log lines) can become markup.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function shortId(id) {
  return String(id || '').slice(0, 8);
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

// FITS order: NAXIS1 x NAXIS2 (x then y); the API gives numpy's order, slowest axis first.
export function formatShape(shape) {
  return Array.isArray(shape) && shape.length ? [...shape].reverse().join(' × ') : '';
}

export function formatDate(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  // The year only when it is not this one: dates stay short enough for the tables.
  const sameYear = date.getFullYear() === new Date().getFullYear();
  return date.toLocaleString(undefined, {
    year: sameYear ? undefined : 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
}

export function timeEl(iso) {
  return iso ? h('time', {datetime: iso}, formatDate(iso)) : '';
}

export function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export const ACTIVE_STATES = ['PENDING', 'STARTED', 'RUNNING'];
export const STATES = ['PENDING', 'STARTED', 'RUNNING', 'SUCCESS', 'FAILURE', 'TIMED-OUT', 'ABORTED'];

export function isActive(state) {
  return ACTIVE_STATES.includes(state);
}

export function stateBadge(state) {
  return h('span', {class: `badge state-${String(state || '').toLowerCase()}`}, state || '');
}

export function progressBar(value, label) {
  const pct = Math.max(0, Math.min(100, Number(value) || 0));
  return h('span', {class: 'progress'},
    h('progress', {max: 100, value: pct, 'aria-label': label}),
    h('span', {class: 'progress-text', 'aria-hidden': 'true'}, `${pct}%`));
}

// Waits `ms`, or less when `signal` aborts (then resolves all the same: callers check it).
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, {once: true});
  });
}

// One id per page for elements made many times (fields, errors).
let counter = 0;
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}
