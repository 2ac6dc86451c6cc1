// The "Files" card: upload a FITS image (progress bar; large files through presigned URLs) and
// the table of the caller's files with the actions each one allows.

import {ApiError, api, download} from './api.js';
import {clear, formatBytes, formatShape, h, shortId, timeEl} from './dom.js';
import {uploadFile, waitUntilRegistered} from './upload.js';

const PAGE_SIZE = 20;
export const FILES_CHANGED = 'caesar:files-changed'; // a file was added or deleted here
export const FILES_LISTED = 'caesar:files-listed'; // fileNames has new entries

// Names of the files seen so far, for the jobs table's Input column.
export const fileNames = new Map();

function announceChange() {
  document.dispatchEvent(new CustomEvent(FILES_CHANGED));
}

function stateCell(file) {
  const reason = file.state === 'invalid' ? String(file.status || '').replace(/^File refused:\s*/, '') : '';
  return h('td', {},
    h('span', {class: `badge file-${file.state}`}, file.state),
    reason && h('span', {class: 'reason'}, ` ${reason}`));
}

export function filesView() {
  const status = h('span', {id: 'upload-status', class: 'upload-status', role: 'status', 'aria-live': 'polite'});
  const bar = h('progress', {id: 'upload-progress', max: 100, value: 0, 'aria-label': 'Upload progress', hidden: true});
  const fileInput = h('input', {id: 'fits-file', name: 'file', type: 'file', required: true,
    accept: '.fits,.fit,.fts,.gz,application/fits'});
  const tagInput = h('input', {id: 'upload-tag', name: 'tag', type: 'text', maxlength: 128, autocomplete: 'off'});
  const button = h('button', {type: 'submit', class: 'primary'}, 'Upload');
  const tbody = h('tbody');
  const pager = h('div', {class: 'pager'});
  const message = h('p', {class: 'table-message', role: 'status'});
  const cursors = [null];
  let page = 0;
  let disposed = false;
  let latestLoad = 0; // loads overlap (upload, delete, paging): only the newest one may render

  async function load() {
    const mine = ++latestLoad;
    try {
      const q = new URLSearchParams({limit: String(PAGE_SIZE)});
      if (cursors[page]) q.set('cursor', cursors[page]);
      const data = await api(`/files?${q}`);
      if (disposed || mine !== latestLoad) return;
      cursors[page + 1] = data.next_cursor;
      for (const file of data.files) fileNames.set(file.uuid, file.filename_orig);
      render(data.files, data.next_cursor);
      document.dispatchEvent(new CustomEvent(FILES_LISTED));
    } catch (exc) {
      if (!(exc instanceof ApiError && exc.status === 401)) {
        message.classList.remove('ok');
        message.textContent = `Could not list the files: ${exc.message}`;
      }
    }
  }

  function actions(file) {
    const name = file.filename_orig || file.uuid;
    const cell = h('td', {class: 'actions'});
    if (file.state === 'ready') {
      cell.append(h('button', {
        type: 'button', 'aria-label': `Download ${name}`,
        onclick: () => download(`/files/${encodeURIComponent(file.uuid)}/content`, name)
          .catch((exc) => { message.classList.remove('ok'); message.textContent = `Download failed: ${exc.message}`; }),
      }, 'Download'), ' ');
    }
    cell.append(h('button', {
      type: 'button', class: 'danger', 'aria-label': `Delete ${name}`,
      onclick: async () => {
        if (!window.confirm(`Delete ${name}? Jobs that used it keep their results.`)) return;
        try {
          await api(`/files/${encodeURIComponent(file.uuid)}`, {method: 'DELETE'});
          await load();
          message.textContent = `${name} deleted.`;
          message.classList.add('ok');
          announceChange();
        } catch (exc) {
          message.classList.remove('ok');
          message.textContent = `Could not delete ${name}: ${exc.message}`;
        }
      },
    }, 'Delete'));
    return cell;
  }

  function render(files, nextCursor) {
    clear(tbody, files.length ? files.map((file) => h('tr', {dataset: {fileId: file.uuid}},
      h('td', {class: 'name'}, file.filename_orig,
        h('div', {class: 'muted small'}, shortId(file.uuid), file.tag ? ` · tag ${file.tag}` : '')),
      stateCell(file),
      h('td', {class: 'num'}, formatBytes(file.bytes)),
      h('td', {class: 'num', title: 'NAXIS1 × NAXIS2'}, formatShape(file.shape)),
      h('td', {}, timeEl(file.date)),
      actions(file))) : h('tr', {}, h('td', {colspan: 6, class: 'empty'}, 'No files yet: upload a FITS image above.')));
    clear(pager,
      h('button', {type: 'button', disabled: page === 0, onclick: () => { page -= 1; load(); }}, 'Previous page'),
      h('span', {class: 'muted'}, `Page ${page + 1}`),
      h('button', {type: 'button', disabled: !nextCursor, onclick: () => { page += 1; load(); }}, 'Next page'));
  }

  async function submit(event) {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) {
      status.textContent = 'Choose a FITS file first.';
      fileInput.focus();
      return;
    }
    button.disabled = true;
    bar.hidden = false;
    bar.value = 0;
    try {
      let record = await uploadFile(file, tagInput.value.trim(), (phase, fraction) => {
        bar.value = Math.round(fraction * 100);
        status.textContent = `${phase} ${file.name}: ${bar.value}%`;
      });
      bar.value = 100;
      if (record.state === 'pending') {
        status.textContent = `${file.name} uploaded; checking the image…`;
        await load();
        record = await waitUntilRegistered(record.uuid);
      }
      fileInput.value = '';
      page = 0;
      await load(); // the table shows the new state before the status line announces it
      status.textContent = record.state === 'ready'
        ? `${file.name} is ready (${formatShape(record.shape)}).`
        : `${file.name}: ${record.status}`;
      announceChange();
    } catch (exc) {
      status.textContent = `Upload of ${file.name} failed: ${exc.message}`;
    } finally {
      button.disabled = false;
    }
  }

  const el = h('section', {class: 'card files', 'aria-labelledby': 'files-heading'},
    h('h2', {id: 'files-heading'}, 'Files'),
    h('form', {class: 'upload-form', onsubmit: submit},
      h('div', {class: 'field'}, h('label', {for: 'fits-file'}, 'FITS file'), fileInput),
      h('div', {class: 'field'}, h('label', {for: 'upload-tag'}, 'Tag (optional)'), tagInput),
      h('div', {class: 'field submit-row'}, button)),
    h('div', {class: 'upload-feedback'}, bar, status),
    h('div', {class: 'table-wrap', role: 'region', 'aria-label': 'Files, scrollable', tabindex: 0},
      h('table', {'aria-labelledby': 'files-heading'},
        h('thead', {}, h('tr', {},
          ['Name', 'State', 'Size', 'Shape', 'Uploaded', 'Actions'].map((name) => h('th', {
            scope: 'col', class: ['Size', 'Shape'].includes(name) ? 'num' : null}, name)))),
        tbody)),
    pager, message);
  load();
  return {el, dispose: () => { disposed = true; }, reload: load};
}
