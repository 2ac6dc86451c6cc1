// "Run a source finder": the App and Input file selects, then a form generated from the app's
// options (GET /function/describe/<app>, caesar-rest's describe format): one labelled field of
// the right kind per option, defaults filled in, descriptions as help, advanced ones folded away.
// The server validates strictly; its 400 names the option at fault and is shown beside it.

import {ApiError, api} from './api.js';
import {FILES_CHANGED, fileNames} from './files.js';
import {clear, formatShape, h, shortId} from './dom.js';

const describeCache = new Map();
const READY_FILES_LIMIT = 200;
const FIELD_OF = {app: 'submit-app', data_inputs: 'submit-file', inputfile: 'submit-file', timeout: 'submit-timeout',
  tag: 'submit-tag'};

async function describe(app) {
  if (!describeCache.has(app)) describeCache.set(app, await api(`/describe/${encodeURIComponent(app)}`));
  return describeCache.get(app);
}

function rangeText(opt) {
  const parts = [];
  if (opt.default !== null && opt.default !== undefined) parts.push(`default ${JSON.stringify(opt.default)}`);
  if (opt.min !== null && opt.min !== undefined && opt.max !== null && opt.max !== undefined) parts.push(`${opt.min} to ${opt.max}`);
  else if (opt.min !== null && opt.min !== undefined) parts.push(`at least ${opt.min}`);
  else if (opt.max !== null && opt.max !== undefined) parts.push(`at most ${opt.max}`);
  return parts.length ? ` (${parts.join('; ')})` : '';
}

// One option: its control, help and error line, and how to read its value back.
function optionField(name, opt) {
  const id = `opt-${name}`;
  const helpId = `help-${name}`;
  const errorId = `error-${name}`;
  const described = `${helpId} ${errorId}`;
  const choices = opt.enum && Array.isArray(opt.allowed_values) ? opt.allowed_values : null;
  const hasDefault = opt.default !== null && opt.default !== undefined;
  let control;
  let read;
  let checkbox = false;
  if (choices) {
    control = h('select', {id, name, 'aria-describedby': described, required: opt.mandatory},
      !hasDefault && h('option', {value: ''}, opt.mandatory ? 'Choose…' : '(not set)'),
      choices.map((value, i) => h('option', {value: String(i), selected: value === opt.default}, String(value))));
    read = () => (control.value === '' ? undefined : choices[Number(control.value)]);
  } else if ((opt.type === 'none' || opt.type === 'bool') && typeof opt.default === 'boolean') {
    checkbox = true;
    control = h('input', {id, name, type: 'checkbox', checked: opt.default, 'aria-describedby': described});
    read = () => control.checked;
  } else if (opt.type === 'none' || opt.type === 'bool') {
    control = h('select', {id, name, 'aria-describedby': described, required: opt.mandatory},
      h('option', {value: ''}, '(not set)'), h('option', {value: 'true'}, 'true'), h('option', {value: 'false'}, 'false'));
    read = () => (control.value === '' ? undefined : control.value === 'true');
  } else if (opt.type === 'int' || opt.type === 'float') {
    control = h('input', {
      id, name, type: 'number', inputmode: opt.type === 'int' ? 'numeric' : 'decimal',
      step: opt.type === 'int' ? '1' : 'any', min: opt.min ?? null, max: opt.max ?? null,
      value: hasDefault ? String(opt.default) : null, required: opt.mandatory, 'aria-describedby': described,
    });
    read = () => {
      if (control.value === '') {
        if (control.validity.badInput) throw new FieldError(name, 'must be a number');
        return undefined;
      }
      const value = Number(control.value);
      if (!Number.isFinite(value)) throw new FieldError(name, 'must be a number');
      if (opt.type === 'int' && !Number.isInteger(value)) throw new FieldError(name, 'must be a whole number');
      if (opt.min !== null && opt.min !== undefined && value < opt.min) throw new FieldError(name, `must be at least ${opt.min}`);
      if (opt.max !== null && opt.max !== undefined && value > opt.max) throw new FieldError(name, `must be at most ${opt.max}`);
      return value;
    };
  } else {
    control = h('input', {id, name, type: 'text', maxlength: 1024, value: hasDefault ? String(opt.default) : null,
      required: opt.mandatory, 'aria-describedby': described, autocomplete: 'off', spellcheck: 'false'});
    read = () => (control.value === '' ? undefined : control.value);
  }
  const label = h('label', {for: id}, name, opt.mandatory && h('span', {class: 'required'}, ' (required)'));
  const help = h('p', {id: helpId, class: 'help'}, opt.description || '', rangeText(opt));
  const error = h('p', {id: errorId, class: 'field-error', hidden: true});
  const el = checkbox
    ? h('div', {class: 'field check'}, h('div', {class: 'check-row'}, control, label), help, error)
    : h('div', {class: 'field'}, label, control, help, error);
  // What the job gets: only values that differ from the default (the job shows what was asked;
  // defaults are filled in by the server and listed in the catalogue's provenance).
  const value = () => {
    const given = read();
    if (given === undefined) {
      if (opt.mandatory) throw new FieldError(name, 'is required');
      return undefined;
    }
    return hasDefault && given === opt.default ? undefined : given;
  };
  return {name, el, control, error, value, advanced: Boolean(opt.advanced), category: opt.category || 'options'};
}

class FieldError extends Error {
  constructor(option, message) {
    super(`option '${option}': ${message}`);
    this.option = option;
  }
}

function grouped(fields) {
  const groups = new Map();
  for (const field of fields) {
    if (!groups.has(field.category)) groups.set(field.category, []);
    groups.get(field.category).push(field);
  }
  return h('div', {class: 'option-groups'}, [...groups].map(([category, members]) => h('fieldset', {class: 'group'},
    h('legend', {}, category[0].toUpperCase() + category.slice(1)), members.map((f) => f.el))));
}

export function submitView() {
  const appSelect = h('select', {id: 'submit-app', name: 'app', required: true, 'aria-describedby': 'error-submit-app'});
  const fileSelect = h('select', {id: 'submit-file', name: 'data_inputs', required: true,
    'aria-describedby': 'error-submit-file'});
  const timeoutInput = h('input', {id: 'submit-timeout', name: 'timeout', type: 'number', min: 1, step: 1,
    inputmode: 'numeric', placeholder: 'the app’s default', 'aria-describedby': 'help-submit-timeout error-submit-timeout'});
  const tagInput = h('input', {id: 'submit-tag', name: 'tag', type: 'text', maxlength: 128, autocomplete: 'off',
    'aria-describedby': 'error-submit-tag'});
  const options = h('div', {class: 'options'});
  const result = h('p', {class: 'submit-result', role: 'status', 'aria-live': 'polite'});
  const button = h('button', {type: 'submit', class: 'primary'}, 'Submit');
  const errorLine = (id) => h('p', {id: `error-${id}`, class: 'field-error', hidden: true});
  let fields = [];
  let disposed = false;

  function clearErrors(form) {
    for (const el of form.querySelectorAll('.field-error')) {
      el.hidden = true;
      el.textContent = '';
    }
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  }

  // Show `message` beside the control the server (or the form) names; false when none matches.
  function showFieldError(form, option, message) {
    const control = form.querySelector(`#${CSS.escape(FIELD_OF[option] || `opt-${option}`)}`);
    if (!control) return false;
    const error = form.querySelector(`#${CSS.escape(FIELD_OF[option] ? `error-${FIELD_OF[option]}` : `error-${option}`)}`);
    error.textContent = message;
    error.hidden = false;
    control.setAttribute('aria-invalid', 'true');
    const folded = control.closest('details');
    if (folded) folded.open = true;
    control.focus();
    return true;
  }

  async function loadApps() {
    const data = await api('/describe');
    if (disposed) return;
    clear(appSelect, data.apps.map((app) => h('option', {value: app}, app)));
    const preferred = data.apps.includes('sep') ? 'sep' : data.apps[0];
    appSelect.value = preferred;
    await loadOptions();
  }

  async function loadOptions() {
    const app = appSelect.value;
    clear(options, h('p', {class: 'muted'}, `Loading the options of ${app}…`));
    const spec = await describe(app);
    if (disposed || appSelect.value !== app) return;
    fields = Object.entries(spec).map(([name, opt]) => optionField(name, opt));
    const basic = fields.filter((f) => !f.advanced);
    const advanced = fields.filter((f) => f.advanced);
    clear(options,
      h('h3', {class: 'options-title'}, `Options of ${app}`),
      grouped(basic),
      advanced.length && h('details', {class: 'advanced'}, h('summary', {}, 'Advanced options'), grouped(advanced)));
  }

  async function loadFiles() {
    const data = await api(`/files?limit=${READY_FILES_LIMIT}`);
    if (disposed) return;
    for (const f of data.files) fileNames.set(f.uuid, f.filename_orig);
    const ready = data.files.filter((f) => f.state === 'ready');
    const keep = fileSelect.value;
    clear(fileSelect, ready.length
      ? ready.map((f) => h('option', {value: f.uuid}, `${f.filename_orig} (${formatShape(f.shape)}, ${shortId(f.uuid)})`))
      : h('option', {value: ''}, 'No ready file: upload a FITS image first'));
    if (ready.some((f) => f.uuid === keep)) fileSelect.value = keep;
  }

  async function submit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    clearErrors(form);
    result.textContent = '';
    const body = {app: appSelect.value, data_inputs: fileSelect.value, job_inputs: {}};
    try {
      if (!fileSelect.value) throw new FieldError('data_inputs', 'upload a FITS image and choose it here');
      for (const field of fields) {
        const value = field.value();
        if (value !== undefined) body.job_inputs[field.name] = value;
      }
      if (timeoutInput.value !== '') {
        const timeout = Number(timeoutInput.value);
        if (!Number.isInteger(timeout) || timeout < 1) throw new FieldError('timeout', 'must be a whole number of seconds, at least 1');
        body.timeout = timeout;
      }
      if (tagInput.value.trim()) body.tag = tagInput.value.trim();
    } catch (exc) {
      if (!showFieldError(form, exc.option, exc.message)) result.textContent = exc.message;
      return;
    }
    button.disabled = true;
    try {
      const job = await api('/submit', {method: 'POST', json: body});
      clear(result, 'Submitted: ', h('a', {href: `#/jobs/${job.job_id}`}, `job ${shortId(job.job_id)}`),
        ` (${job.app}), ${job.state}.`);
    } catch (exc) {
      const named = exc instanceof ApiError && exc.option && showFieldError(form, exc.option, exc.message);
      if (!named) result.textContent = `Not submitted: ${exc.message}`;
    } finally {
      button.disabled = false;
    }
  }

  appSelect.addEventListener('change', () => loadOptions().catch((exc) => { result.textContent = exc.message; }));
  const onFiles = () => loadFiles().catch(() => {});
  document.addEventListener(FILES_CHANGED, onFiles);

  const el = h('section', {class: 'card submit', 'aria-labelledby': 'submit-heading'},
    h('h2', {id: 'submit-heading'}, 'Run a source finder'),
    h('form', {class: 'submit-form', onsubmit: submit, novalidate: true},
      h('div', {class: 'row'},
        h('div', {class: 'field'}, h('label', {for: 'submit-app'}, 'App'), appSelect, errorLine('submit-app')),
        h('div', {class: 'field'}, h('label', {for: 'submit-file'}, 'Input file'), fileSelect, errorLine('submit-file'))),
      options,
      h('fieldset', {class: 'group'}, h('legend', {}, 'Job'),
        h('div', {class: 'row'},
          h('div', {class: 'field'}, h('label', {for: 'submit-timeout'}, 'Timeout (s)'), timeoutInput,
            h('p', {id: 'help-submit-timeout', class: 'help'}, 'Seconds the job may run; empty: the app’s default.'),
            errorLine('submit-timeout')),
          h('div', {class: 'field'}, h('label', {for: 'submit-tag'}, 'Tag'), tagInput, errorLine('submit-tag')))),
      h('div', {class: 'submit-row'}, button, result)));
  loadApps().catch((exc) => { result.textContent = `Could not load the apps: ${exc.message}`; });
  loadFiles().catch(() => {});
  return {el, dispose: () => { disposed = true; document.removeEventListener(FILES_CHANGED, onFiles); }};
}
