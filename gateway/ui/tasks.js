// tasks.js - the task list with the SPEC 11 filters, paging, and bulk
// retry/cancel of everything the filter matches; the failed page is the
// same list fixed to status=failed (the dead-letter view)

import { get, post, query } from './api.js';
import { h, put, time, badge, table, button, confirm, announce, canWrite, plural } from './ui.js';

const LIMIT = 25;
const STATUSES = ['', 'pending', 'delayed', 'processing', 'waiting', 'polling',
  'completed', 'failed', 'timeout', 'cancelled'];
const TEXT_FILTERS = [
  ['label', 'Label (name:value)', 'env:prod'],
  ['targetUrl', 'Target URL prefix', 'https://api.example.com/'],
  ['provider', 'Provider', 'fal'],
  ['flowControlKey', 'Flow-control key', 'fal-prod'],
];

export function renderFailed(el, route, ctx) {
  const params = new URLSearchParams(route.params);
  params.set('status', 'failed');
  return list(el, params, ctx, true);
}

export function render(el, route, ctx) {
  return list(el, route.params, ctx, false);
}

// The filter of the form as the list's query parameters, and as a bulk filter.
function readFilter(params) {
  const f = {};
  for (const name of ['status', 'label', 'targetUrl', 'provider', 'flowControlKey', 'createdAfter', 'createdBefore']) {
    const v = params.get(name);
    if (v) f[name] = v;
  }
  return f;
}

function bulkFilter(f) {
  const out = {};
  for (const [k, v] of Object.entries(f)) {
    if (k === 'label') {
      const at = v.indexOf(':');
      out.labels = { [v.slice(0, at)]: v.slice(at + 1) };
    } else out[k] = v;
  }
  return out;
}

// datetime-local (the browser's zone) <-> ISO UTC
const toIso = local => (local ? new Date(local).toISOString() : '');
function toLocal(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const pad = n => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const narrow = () => matchMedia('(max-width: 640px)').matches;

async function list(el, params, ctx, failedView) {
  const filter = readFilter(params);
  const offset = Math.max(0, parseInt(params.get('offset') || '0', 10) || 0);
  const base = failedView ? '#/failed' : '#/tasks';
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filters' });
  if (!failedView) {
    form.append(h('div', { class: 'field' }, h('label', { for: 'f-status' }, 'Status'),
      h('select', { id: 'f-status', name: 'status' }, STATUSES.map(st =>
        h('option', { value: st, selected: filter.status === st }, st || 'any')))));
  }
  for (const [name, label, example] of TEXT_FILTERS) {
    form.append(h('div', { class: 'field' }, h('label', { for: 'f-' + name }, label),
      h('input', { id: 'f-' + name, name, value: filter[name] || '', placeholder: example, spellcheck: 'false' })));
  }
  for (const [name, label] of [['createdAfter', 'Created after'], ['createdBefore', 'Created before']]) {
    form.append(h('div', { class: 'field' }, h('label', { for: 'f-' + name }, label),
      h('input', { id: 'f-' + name, name, type: 'datetime-local', value: toLocal(filter[name]) })));
  }
  form.append(h('div', { class: 'field buttons' }, h('button', { type: 'submit' }, 'Apply'),
    h('a', { href: base, class: 'button secondary' }, 'Clear')));
  form.addEventListener('submit', event => {
    event.preventDefault();
    const data = new FormData(form);
    const next = {};
    for (const [k, v] of data.entries()) {
      const value = String(v).trim();
      if (value) next[k] = k.startsWith('created') ? toIso(value) : value;
    }
    ctx.go(base + query(next));
  });

  const summary = h('p', { class: 'summary', id: 'summary', 'aria-live': 'polite' });
  const actions = h('div', { class: 'actions' });
  const rows = h('div', { id: 'rows' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  put(el, h('h1', {}, failedView ? 'Failed tasks' : 'Tasks'),
    failedView ? h('p', { class: 'muted' }, 'The dead-letter view: tasks that used up their retries. Retry puts them back in the queue with a new attempt series; their history stays.') : null,
    h('details', { class: 'card filters-box', open: Object.keys(filter).length > (failedView ? 1 : 0) || !narrow() },
      h('summary', {}, 'Filters'), form),
    summary, actions, rows, pager);

  let total = 0;
  async function refresh() {
    const data = await get('/v1/tasks' + query(Object.assign({}, filter, { limit: LIMIT, offset })));
    total = data.pagination.total;
    summary.textContent = total === 0 ? 'No task matches.' :
      `${plural(total, 'task')} match; showing ${offset + 1}–${offset + data.tasks.length}.`;
    put(rows, table('Tasks', [
      { title: 'Task', cell: t => h('a', { href: '#/task/' + t.id, class: 'mono' }, t.id.slice(0, 8) + '…') },
      { title: 'Status', cell: t => badge(t.status) },
      { title: 'Target', cell: t => h('span', { class: 'url', title: t.targetUrl }, t.method + ' ' + t.targetUrl) },
      { title: 'Labels', cell: t => labels(t.labels) },
      { title: 'Tries', cell: t => `${t.retryCount}/${t.maxRetries}` },
      { title: 'Created', cell: t => time(t.createdAt) },
    ], data.tasks, 'No task matches these filters.'));
    const link = (label, at, rel) => h('a', { href: base + query(Object.assign({}, filter, { offset: at || undefined })), rel, class: 'button secondary' }, label);
    put(pager, 
      offset > 0 ? link('Previous', Math.max(0, offset - LIMIT), 'prev') : null,
      data.pagination.hasMore ? link('Next', offset + LIMIT, 'next') : null);
    drawActions();
  }

  function drawActions() {
    put(actions);
    if (!canWrite() || total === 0) return;
    const retryable = failedView || ['failed', 'timeout', undefined].includes(filter.status);
    const cancellable = !failedView && ['pending', 'delayed', 'waiting', 'polling', undefined].includes(filter.status);
    if (retryable) actions.append(button('Retry all matching', () => bulk('retry'), { id: 'bulk-retry' }));
    if (cancellable) actions.append(button('Cancel all matching', () => bulk('cancel'), { id: 'bulk-cancel', class: 'danger' }));
  }

  async function bulk(action) {
    const f = bulkFilter(filter);
    // the count the confirmation states is the server's, for this filter, now
    const count = (await get('/v1/tasks' + query(Object.assign({}, filter, { limit: 1 })))).pagination.total;
    const what = action === 'retry' ? 'Retry' : 'Cancel';
    const note = action === 'retry' ? ' (only failed and timed-out ones can be retried)' : ' (only pending, delayed, waiting and polling ones can be cancelled)';
    if (!await confirm(`${what} ${plural(count, 'task')} matching this filter?${note}`, `${what} ${count}`, action === 'cancel')) return;
    const job = (await post('/v1/tasks/bulk', { action, filter: f })).bulk;
    announce(`${what}: ${job.matched} matched, running…`);
    let state = job;
    for (let i = 0; i < 60 && state.status === 'running' && !ctx.stopped; i++) {
      await new Promise(r => setTimeout(r, 500));
      state = (await get('/v1/bulk/' + job.id)).bulk;
    }
    announce(`${what}: ${state.done} done, ${state.failed} could not` + (state.status === 'running' ? ' (still running)' : ''));
    if (!ctx.stopped) await refresh();
  }

  await refresh();
  ctx.watch(() => refresh());
}

export function labels(map) {
  const entries = Object.entries(map || {});
  if (!entries.length) return '';
  return h('span', { class: 'labels' }, entries.map(([k, v]) =>
    h('a', { class: 'label', href: '#/tasks?label=' + encodeURIComponent(k + ':' + v) }, k + ': ' + v)));
}
