// ui.js - small DOM helpers: elements, times, tables, the confirmation dialog

export const session = { scope: 'read', team: '', teamId: '' };
export const canWrite = () => session.scope === 'full';

// h('a', {href: '#/x', class: 'c', onclick: f}, 'text', child, ...)
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

// Replaces el's children, leaving out null, undefined and false.
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// SVG elements (the chart)
export function s(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs || {})) el.setAttribute(name, value);
  append(el, children);
  return el;
}

const format = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric',
  hour: '2-digit', minute: '2-digit', second: '2-digit',
});

// A timestamp in the browser's zone, the UTC value on hover.
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const date = new Date(iso);
  if (isNaN(date)) return iso;
  return h('time', { datetime: iso, title: iso + ' (UTC)' }, format.format(date));
}

export function badge(status) {
  return h('span', { class: 'badge st-' + status }, status);
}

// A table: columns [{title, cell(row) -> node}], rows, a caption.
export function table(caption, columns, rows, empty) {
  if (!rows.length) return h('p', { class: 'muted' }, empty || 'Nothing here.');
  return h('div', { class: 'scroll' },
    h('table', {},
      h('caption', { class: 'sr' }, caption),
      h('thead', {}, h('tr', {}, columns.map(c => h('th', { scope: 'col' }, c.title)))),
      h('tbody', {}, rows.map(row => h('tr', {}, columns.map(c => h('td', { 'data-label': c.title }, c.cell(row))))))));
}

// Definition list of [term, value] pairs, skipping empty values.
export function fields(pairs) {
  return h('dl', { class: 'fields' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

export function button(label, onclick, attrs) {
  return h('button', Object.assign({ type: 'button', onclick }, attrs || {}), label);
}

// The shared dialog: resolves true when the user confirms; danger marks
// an action that throws something away.
export function confirm(text, action, danger) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  const ok = document.getElementById('confirm-ok');
  ok.textContent = action || 'Confirm';
  ok.className = danger ? 'danger' : '';
  return new Promise(resolve => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.returnValue = 'cancel';
    dialog.showModal();
  });
}

// A message for screen readers and sighted users alike.
export function announce(text, error) {
  const el = document.getElementById('status');
  el.textContent = text;
  el.className = 'live' + (error ? ' error' : '');
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => { el.textContent = ''; }, 6000);
}

export function plural(n, word) { return n + ' ' + word + (n === 1 ? '' : 's'); }
