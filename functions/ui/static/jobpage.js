// A job's page (#/jobs/<id>): state and timings (followed live with the status long-poll),
// options and provenance, and once it has ended its preview, its "Sources", a link per product,
// its log, and for failures the error class and message.

import {ApiError, api, download, downloadBlob} from './api.js';
import {clear, formatSeconds, h, isActive, progressBar, shortId, sleep, stateBadge, timeEl} from './dom.js';
import {cancelJob, elapsedNow} from './jobs.js';
import {fileNames} from './files.js';
import {sourcesTable} from './sources.js';

const WAIT_SECONDS = 25;
const ERROR_CLASSES = {
  usage: 'a usage error: the input or the options do not suit this finder',
  system: 'a system error: the service failed, not your input (resubmitting may work)',
  timeout: 'the job ran out of time',
};

function row(term, ...value) {
  return [h('dt', {}, term), h('dd', {}, ...value)];
}

function section(id, title, ...content) {
  return h('section', {class: 'card', 'aria-labelledby': id}, h('h3', {id}, title), ...content);
}

function valueText(value) {
  if (value === null || value === undefined) return 'not set';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function jobPage(jobId) {
  const summary = h('div', {class: 'job-summary'});
  const failure = h('div');
  const details = h('div', {class: 'job-details'});
  const results = h('div', {class: 'job-results'});
  const message = h('p', {class: 'table-message', role: 'status'});
  const controller = new AbortController();
  let receivedAt = Date.now();
  let resultsShown = false;
  let previewUrl = null;

  function renderSummary(job) {
    const input = fileNames.get(job.data_inputs) || job.data_inputs;
    clear(summary,
      h('dl', {class: 'facts'},
        row('State', stateBadge(job.state)),
        !job.error_class && row('Status', job.status || ''),
        row('Progress', progressBar(job.progress, 'Progress of this job')),
        row('App', job.app),
        row('Input file', input, input !== job.data_inputs && h('span', {class: 'muted'}, ` (${shortId(job.data_inputs)})`)),
        job.tag && row('Tag', job.tag),
        row('Submitted', timeEl(job.submit_date)),
        job.started && row('Started', timeEl(job.started)),
        job.finished && row('Finished', timeEl(job.finished)),
        row('Elapsed', formatSeconds(elapsedNow(job, receivedAt)) || 'not started'),
        row('Timeout', formatSeconds(job.timeout)),
        job.exit_status !== null && job.exit_status !== undefined && row('Exit status', String(job.exit_status)),
        job.expires && row('Results kept until', timeEl(job.expires))),
      isActive(job.state) && h('button', {
        type: 'button', class: 'danger', onclick: (event) => {
          event.currentTarget.disabled = true;
          cancelJob(job.job_id).catch((exc) => { message.textContent = `Could not cancel: ${exc.message}`; });
        },
      }, 'Cancel job'));
    clear(failure, job.error_class || ['FAILURE', 'TIMED-OUT'].includes(job.state)
      ? h('div', {class: 'failure', role: 'alert'},
        h('h3', {}, `${job.state === 'TIMED-OUT' ? 'Timed out' : 'Failed'}: ${job.error_class || 'unknown'} error`),
        h('p', {class: 'error-class'}, `Error class: `, h('code', {}, job.error_class || 'unknown'),
          ` — ${ERROR_CLASSES[job.error_class] || 'no class was recorded'}.`),
        h('p', {class: 'error-message'}, job.status || ''))
      : '');
  }

  function renderOptions(job, provenance) {
    const given = job.job_inputs || {};
    const all = (provenance && provenance.options) || given;
    const names = Object.keys(all);
    const table = names.length
      ? h('div', {class: 'table-wrap', role: 'region', 'aria-label': 'Options, scrollable', tabindex: 0},
        h('table', {'aria-labelledby': 'options-heading', class: 'compact'},
          h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Option'), h('th', {scope: 'col'}, 'Value'),
            h('th', {scope: 'col'}, 'Set by'))),
          h('tbody', {}, names.map((name) => h('tr', {},
            h('td', {}, h('code', {}, name)), h('td', {}, valueText(name in given ? given[name] : all[name])),
            h('td', {}, name in given ? 'you' : 'default'))))))
      : h('p', {class: 'muted'}, 'Default options.');
    const prov = provenance && h('dl', {class: 'facts'},
      row('Finder', `${provenance.app} ${provenance.app_version || ''}`),
      row('Input', provenance.input_filename || '', provenance.input_sha256 && h('div', {class: 'muted small'}, `sha256 ${provenance.input_sha256}`)),
      row('Software', Object.entries(provenance.software || {}).map(([k, v]) => `${k} ${v}`).join(', ')),
      row('Produced', timeEl(provenance.date)));
    clear(details,
      section('options-heading', 'Options', table),
      prov && section('provenance-heading', 'Provenance', prov));
  }

  function productLinks(job) {
    const names = [...(job.products || [])];
    const archive = `${job.job_id}.tar.gz`;
    const link = (name, onclick) => h('li', {}, h('a', {href: '#', class: 'product', dataset: {product: name},
      onclick: (event) => {
        event.preventDefault();
        onclick().catch((exc) => { message.textContent = `Could not download ${name}: ${exc.message}`; });
      }}, name));
    return h('ul', {class: 'products'},
      names.map((name) => link(name, () => download(`/output/${encodeURIComponent(job.job_id)}/${encodeURIComponent(name)}`, name))),
      names.length && link(archive, () => downloadBlob(`/output/${encodeURIComponent(job.job_id)}`, archive)));
  }

  async function renderResults(job) {
    resultsShown = true;
    const has = new Set(job.products || []);
    const base = `/output/${encodeURIComponent(job.job_id)}`;
    const [catalog, preview, log] = await Promise.all([
      has.has('catalog.json') ? api(`${base}/catalog.json`).catch(() => null) : null,
      has.has('preview.png') ? api(`${base}/preview.png`, {raw: true}).then((r) => r.blob()).catch(() => null) : null,
      has.has('job.log') ? api(`${base}/job.log`, {raw: true}).then((r) => r.text()).catch(() => null) : null,
    ]);
    if (controller.signal.aborted) return;
    renderOptions(job, catalog && catalog.provenance);
    previewUrl = preview && URL.createObjectURL(preview);
    const image = preview && h('img', {class: 'preview', src: previewUrl, alt: `Preview of job ${job.job_id}`});
    clear(results,
      section('products-heading', 'Products', has.size ? productLinks(job) : h('p', {class: 'muted'}, 'This job left no products.')),
      image && section('preview-heading', 'Preview', h('figure', {}, image,
        h('figcaption', {class: 'muted'}, 'The image with the sources found drawn on it.'))),
      catalog && h('section', {class: 'card', 'aria-labelledby': 'sources-heading'},
        h('h3', {id: 'sources-heading'}, 'Sources'), sourcesTable(catalog)),
      log !== null && section('log-heading', 'Job log',
        h('pre', {class: 'log', tabindex: 0, 'aria-labelledby': 'log-heading'}, log)));
  }

  async function follow() {
    let known = null;
    let progress = null;
    while (!controller.signal.aborted) {
      try {
        // Held by the server until the state or the progress moves.
        const q = known ? `?wait=${WAIT_SECONDS}&state=${encodeURIComponent(known)}&progress=${progress}` : '';
        const job = await api(`/status/${encodeURIComponent(jobId)}${q}`, {signal: controller.signal});
        if (controller.signal.aborted) return;
        receivedAt = Date.now();
        message.textContent = '';
        renderSummary(job);
        if (!known) renderOptions(job, null);
        known = job.state;
        progress = job.progress || 0;
        if (!isActive(job.state)) {
          if (!resultsShown) await renderResults(job);
          return;
        }
      } catch (exc) {
        if (controller.signal.aborted || exc.name === 'AbortError') return;
        if (exc instanceof ApiError && (exc.status === 401 || exc.status === 404)) {
          if (exc.status === 404) clear(summary, h('p', {class: 'notice', role: 'alert'}, `No job ${jobId} here: ${exc.message}`));
          return;
        }
        message.textContent = `Lost contact with the server (${exc.message}); retrying…`;
        await sleep(2000, controller.signal);
      }
    }
  }

  const el = h('div', {class: 'job-page'},
    h('nav', {'aria-label': 'Breadcrumb', class: 'crumbs'}, h('a', {href: '#/'}, '← Files and jobs')),
    h('h2', {id: 'job-heading', tabindex: -1}, 'Job ', h('code', {}, jobId)),
    h('section', {class: 'card', 'aria-labelledby': 'state-heading'}, h('h3', {id: 'state-heading'}, 'State'),
      summary, failure, message),
    details, results);
  follow();
  const dispose = () => {
    controller.abort();
    if (previewUrl) URL.revokeObjectURL(previewUrl);
  };
  return {el, dispose, focus: () => el.querySelector('#job-heading').focus()};
}
