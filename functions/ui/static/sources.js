// The "Sources" table of a job page: the catalogue (catalog.json: columns with units, sources),
// sortable by any column (a button in each header, aria-sort tells the order), paged.

import {clear, h} from './dom.js';

const PAGE_SIZES = [25, 50, 100, 500];

// Digits worth showing per unit: positions to ~0.01", pixels to 0.01, the rest 4 significant.
function formatValue(value, column) {
  if (value === null || value === undefined) return '';
  if (typeof value !== 'number') return String(value);
  if (Number.isInteger(value) && (column.unit === '' || column.name === 'flags')) return String(value);
  if (column.name === 'ra' || column.name === 'dec') return value.toFixed(6);
  if (column.unit === 'pix') return value.toFixed(2);
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  return magnitude >= 1e-3 && magnitude < 1e5 ? String(Number(value.toPrecision(4))) : value.toExponential(3);
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1; // empty cells last, whatever the direction
  if (b === null || b === undefined) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b));
}

export function headerText(column) {
  return column.unit ? `${column.name} (${column.unit})` : column.name;
}

export function sourcesTable(catalog) {
  const columns = catalog.columns || [];
  const rows = catalog.sources || [];
  let sortKey = null;
  let ascending = true;
  let page = 0;
  let pageSize = PAGE_SIZES[0];

  const headRow = h('tr');
  const tbody = h('tbody');
  const summary = h('span', {class: 'muted', 'aria-live': 'polite'});
  const prev = h('button', {type: 'button', onclick: () => { page -= 1; render(); }}, 'Previous page');
  const next = h('button', {type: 'button', onclick: () => { page += 1; render(); }}, 'Next page');
  const sizeSelect = h('select', {id: 'sources-size'}, PAGE_SIZES.map((n) => h('option', {value: String(n)}, String(n))));
  sizeSelect.addEventListener('change', () => { pageSize = Number(sizeSelect.value); page = 0; render(); });

  function sorted() {
    if (!sortKey) return rows;
    const out = [...rows].sort((x, y) => {
      const order = compare(x[sortKey], y[sortKey]);
      const empty = x[sortKey] === null || x[sortKey] === undefined || y[sortKey] === null || y[sortKey] === undefined;
      return ascending || empty ? order : -order;
    });
    return out;
  }

  function renderHead() {
    clear(headRow, columns.map((column) => {
      const active = sortKey === column.name;
      return h('th', {scope: 'col', 'aria-sort': active ? (ascending ? 'ascending' : 'descending') : 'none',
        title: column.description || null},
      h('button', {type: 'button', class: 'sort', dataset: {column: column.name},
        onclick: () => {
          ascending = active ? !ascending : true;
          sortKey = column.name;
          page = 0;
          render();
        }},
      headerText(column), h('span', {class: 'sort-mark', 'aria-hidden': 'true'}, active ? (ascending ? ' ▲' : ' ▼') : '')));
    }));
  }

  function render() {
    renderHead();
    const all = sorted();
    const pages = Math.max(1, Math.ceil(all.length / pageSize));
    page = Math.min(Math.max(0, page), pages - 1);
    const start = page * pageSize;
    const shown = all.slice(start, start + pageSize);
    clear(tbody, shown.length
      ? shown.map((source) => h('tr', {}, columns.map((column) => h('td', {class: typeof source[column.name] === 'number' ? 'num' : null},
        formatValue(source[column.name], column)))))
      : h('tr', {}, h('td', {colspan: Math.max(1, columns.length), class: 'empty'}, 'The finder found no source.')));
    summary.textContent = all.length
      ? `Sources ${start + 1}–${start + shown.length} of ${all.length}` : 'No sources';
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }

  render();
  return h('div', {class: 'sources'},
    h('div', {class: 'table-wrap', role: 'region', 'aria-label': 'Sources, scrollable', tabindex: 0},
      h('table', {'aria-labelledby': 'sources-heading', class: 'catalog'}, h('thead', {}, headRow), tbody)),
    h('div', {class: 'pager'}, prev, summary, next,
      h('label', {for: 'sources-size', class: 'inline'}, 'Sources per page'), sizeSelect));
}
