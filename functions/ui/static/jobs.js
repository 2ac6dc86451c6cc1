// The "Jobs" table, live: the page is long-polled (GET /function/jobs?since=<version>&wait=25),
// so the server answers as soon as any job on it changes, not on a timer. Filters by state and
// app, paging, and Cancel while a job is still active.

import {ApiError, api} from './api.js';
import {FILES_LISTED, fileNames} from './files.js';
import {STATES, append, clear, formatSeconds, h, isActive, progressBar, shortId, sleep, stateBadge, timeEl} from './dom.js';

const WAIT_SECONDS = 25;
const PAGE_SIZES = [10, 20, 50, 100];

export async function cancelJob(jobId) {
  return api(`/cancel/${encodeURIComponent(jobId)}`, {method: 'POST'});
}

// Elapsed seconds, counted on from the moment the answer arrived while the job runs (no clock
// skew between browser and server).
export function elapsedNow(job, receivedAt) {
  if (job.elapsed_time === null || job.elapsed_time === undefined) return null;
  return isActive(job.state) ? job.elapsed_time + (Date.now() - receivedAt) / 1000 : job.elapsed_time;
}

export function jobsView() {
  const stateFilter = h('select', {id: 'jobs-state'},
    h('option', {value: ''}, 'All states'), STATES.map((s) => h('option', {value: s}, s)));
  const appFilter = h('select', {id: 'jobs-app'}, h('option', {value: ''}, 'All apps'));
  const sizeSelect = h('select', {id: 'jobs-size'}, PAGE_SIZES.map((n) => h('option', {value: String(n), selected: n === 20}, String(n))));
  const tbody = h('tbody');
  const pager = h('div', {class: 'pager'});
  const message = h('p', {class: 'table-message', role: 'status'});
  const live = h('span', {class: 'live muted', 'aria-live': 'off'});
  let cursors = [null];
  let page = 0;
  let controller = null;
  let receivedAt = Date.now();
  let shown = [];
  let disposed = false;

  function query(version) {
    const q = new URLSearchParams({limit: sizeSelect.value});
    if (stateFilter.value) q.set('state', stateFilter.value);
    if (appFilter.value) q.set('app', appFilter.value);
    if (cursors[page]) q.set('cursor', cursors[page]);
    if (version) {
      q.set('since', version);
      q.set('wait', String(WAIT_SECONDS));
    }
    return q;
  }

  function row(job) {
    const input = fileNames.get(job.data_inputs) || shortId(job.data_inputs);
    return h('tr', {dataset: {jobId: job.job_id, state: job.state}},
      h('td', {}, h('a', {href: `#/jobs/${job.job_id}`, 'aria-label': `Job ${job.job_id}`}, h('code', {}, shortId(job.job_id)))),
      h('td', {class: 'state'}, stateBadge(job.state)),
      h('td', {}, progressBar(job.progress, `Progress of job ${shortId(job.job_id)}`)),
      h('td', {}, job.app),
      h('td', {class: 'name'}, input),
      h('td', {}, job.tag || ''),
      h('td', {}, timeEl(job.submit_date)),
      h('td', {class: 'num elapsed'}, formatSeconds(elapsedNow(job, receivedAt))),
      h('td', {class: 'actions'}, isActive(job.state) && h('button', {
        type: 'button', class: 'danger', 'aria-label': `Cancel job ${job.job_id}`,
        onclick: async (event) => {
          event.currentTarget.disabled = true;
          try {
            await cancelJob(job.job_id);
          } catch (exc) {
            message.textContent = `Could not cancel job ${shortId(job.job_id)}: ${exc.message}`;
          }
        },
      }, 'Cancel')));
  }

  function render(data) {
    shown = data.jobs;
    cursors[page + 1] = data.next_cursor;
    clear(tbody, shown.length ? shown.map(row)
      : h('tr', {}, h('td', {colspan: 9, class: 'empty'},
        stateFilter.value || appFilter.value ? 'No job matches these filters.' : 'No jobs yet: submit one above.')));
    clear(pager,
      h('button', {type: 'button', disabled: page === 0, onclick: () => { page -= 1; restart(); }}, 'Previous page'),
      h('span', {class: 'muted'}, `Page ${page + 1}`),
      h('button', {type: 'button', disabled: !data.next_cursor, onclick: () => { page += 1; restart(); }}, 'Next page'));
    live.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  }

  async function follow(signal) {
    let version = null;
    while (!signal.aborted) {
      try {
        const data = await api(`/jobs?${query(version)}`, {signal});
        if (signal.aborted) return;
        receivedAt = Date.now();
        message.textContent = '';
        if (data.version !== version) render(data);
        version = data.version;
      } catch (exc) {
        if (signal.aborted || exc.name === 'AbortError') return;
        if (exc instanceof ApiError && exc.status === 401) return;
        message.textContent = `Lost contact with the server (${exc.message}); retrying…`;
        version = null;
        await sleep(2000, signal);
      }
    }
  }

  function restart() {
    if (controller) controller.abort();
    controller = new AbortController();
    follow(controller.signal);
  }

  function refilter() {
    cursors = [null];
    page = 0;
    restart();
  }

  // The elapsed column of running jobs moves on every second; no request is made for it.
  const ticker = setInterval(() => {
    for (const tr of tbody.querySelectorAll('tr[data-job-id]')) {
      const job = shown.find((j) => j.job_id === tr.dataset.jobId);
      if (job && isActive(job.state)) tr.querySelector('.elapsed').textContent = formatSeconds(elapsedNow(job, receivedAt));
    }
  }, 1000);

  // Input names come with the files list, which may arrive after the first page of jobs.
  const onFiles = () => { if (shown.length) clear(tbody, shown.map(row)); };
  document.addEventListener(FILES_LISTED, onFiles);
  stateFilter.addEventListener('change', refilter);
  appFilter.addEventListener('change', refilter);
  sizeSelect.addEventListener('change', refilter);
  api('/describe').then((data) => {
    if (!disposed) append(appFilter, data.apps.map((a) => h('option', {value: a}, a)));
  }).catch(() => {});

  const el = h('section', {class: 'card jobs', 'aria-labelledby': 'jobs-heading'},
    h('div', {class: 'card-head'}, h('h2', {id: 'jobs-heading'}, 'Jobs'), live),
    h('div', {class: 'filters'},
      h('div', {class: 'field'}, h('label', {for: 'jobs-state'}, 'Filter by state'), stateFilter),
      h('div', {class: 'field'}, h('label', {for: 'jobs-app'}, 'Filter by app'), appFilter),
      h('div', {class: 'field'}, h('label', {for: 'jobs-size'}, 'Jobs per page'), sizeSelect)),
    h('div', {class: 'table-wrap', role: 'region', 'aria-label': 'Jobs, scrollable', tabindex: 0},
      h('table', {'aria-labelledby': 'jobs-heading'},
        h('thead', {}, h('tr', {}, // State and progress first: on a narrow window they show before the table scrolls.
        ['Job', 'State', 'Progress', 'App', 'Input', 'Tag', 'Submitted', 'Elapsed', 'Actions']
          .map((name) => h('th', {scope: 'col', class: name === 'Elapsed' ? 'num' : null}, name)))),
        tbody)),
    pager, message);
  restart();
  return {
    el,
    dispose: () => {
      disposed = true;
      clearInterval(ticker);
      document.removeEventListener(FILES_LISTED, onFiles);
      if (controller) controller.abort();
    },
  };
}
