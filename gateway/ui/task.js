// task.js - one task: fields, labels, result, every attempt on a timeline,
// retry and cancel; kept current by a long poll (GET /v1/tasks/:id?wait=25)

import { get, post } from './api.js';
import { h, put, time, badge, fields, button, announce, canWrite } from './ui.js';
import { labels } from './tasks.js';

const CANCELLABLE = ['pending', 'delayed', 'waiting', 'polling'];
const RETRYABLE = ['failed', 'timeout'];
const TERMINAL = ['completed', 'failed', 'timeout', 'cancelled'];

export async function render(el, route, ctx) {
  const id = route.id;
  const path = '/v1/tasks/' + encodeURIComponent(id);
  const head = h('div', { class: 'head' });
  const body = h('div', { class: 'grid' });
  const timeline = h('section', { class: 'card', 'aria-labelledby': 'attempts-h' });
  put(el, h('p', {}, h('a', { href: '#/tasks' }, '← Tasks')), head, body, timeline);

  let task = null;
  async function draw(t) {
    task = t;
    const attempts = (await get(path + '/attempts')).attempts;
    put(head, h('h1', {}, 'Task ', h('span', { class: 'mono' }, t.id)), badge(t.status),
      canWrite() && RETRYABLE.includes(t.status) ? button('Retry', () => act('retry'), { id: 'retry' }) : null,
      canWrite() && CANCELLABLE.includes(t.status) ? button('Cancel', () => act('cancel'), { id: 'cancel', class: 'danger' }) : null);
    put(body, 
      h('section', { class: 'card' }, h('h2', {}, 'Request'), fields([
        ['Target', h('span', { class: 'url' }, t.method + ' ' + t.targetUrl)],
        ['Labels', labels(t.labels)],
        ['Provider', t.provider],
        ['Flow control', t.flowControl ? t.flowControl.key : ''],
        ['Priority', t.priority],
        ['Retries', `${t.retryCount} of ${t.maxRetries} (${t.retryBackoff})`],
        ['Timeout', t.timeout + ' s'],
        ['Created', time(t.createdAt)],
        ['Delay until', t.delayUntil ? time(t.delayUntil) : ''],
        ['Started', t.startedAt ? time(t.startedAt) : ''],
        ['Next attempt', t.nextAttemptAt ? time(t.nextAttemptAt) : ''],
        ['Completed', t.completedAt ? time(t.completedAt) : ''],
        ['Schedule', t.scheduleId ? h('a', { href: '#/schedule/' + t.scheduleId }, 'run step ' + t.step) : ''],
        ['Error', t.error ? h('span', { class: 'error' }, t.error) : ''],
      ])),
      h('section', { class: 'card' }, h('h2', {}, 'Result'), t.result ? [
        fields([['Status code', t.result.statusCode], ['Duration', t.result.duration !== undefined ? t.result.duration + ' ms' : '']]),
        h('pre', { tabindex: '0', 'aria-label': 'Response body' }, pretty(t.result.body ?? t.result)),
        t.result.bodyTruncated ? h('p', { class: 'muted' }, 'Body truncated.') : null,
      ] : h('p', { class: 'muted' }, 'No result yet.')));
    const longest = Math.max(1, ...attempts.map(a => a.duration || 0));
    put(timeline, h('h2', { id: 'attempts-h' }, 'Attempts'), attempts.length
      ? h('ol', { class: 'timeline', id: 'attempts' }, attempts.map(a => h('li', { class: a.error || (a.statusCode >= 500) ? 'bad' : 'good' },
        h('span', { class: 'num' }, '#' + a.attempt), time(a.startedAt),
        h('span', { class: 'code' }, a.statusCode !== undefined ? 'HTTP ' + a.statusCode : ''),
        h('span', { class: 'bar', 'aria-hidden': 'true' }, h('span', { 'data-w': Math.round(100 * (a.duration || 0) / longest) })),
        h('span', { class: 'dur' }, (a.duration ?? 0) + ' ms'),
        a.error ? h('span', { class: 'error' }, a.error) : null)))
      : h('p', { class: 'muted' }, 'No attempt yet.'));
    // bar widths through the CSSOM (no inline style attributes under the CSP)
    for (const bar of timeline.querySelectorAll('[data-w]')) bar.style.width = bar.dataset.w + '%';
  }

  async function act(action) {
    try {
      const t = (await post(path + '/' + action)).task;
      announce(action === 'retry' ? 'Retried: a new attempt series starts.' : 'Cancelled.');
      await draw(t);
    } catch (e) { announce(e.message, true); }
  }

  await draw((await get(path)).task);
  // Long poll: the gateway answers when the status changes, or after 25 s.
  ctx.loop(async signal => {
    if (TERMINAL.includes(task.status)) {
      await new Promise(r => setTimeout(r, 10000)); // a retry from elsewhere
      if (signal.aborted) return;
      const t = (await get(path, signal)).task;
      if (t.status !== task.status || t.retryCount !== task.retryCount) await draw(t);
      return;
    }
    const t = (await get(path + '?wait=25', signal)).task;
    if (!signal.aborted) await draw(t);
  });
}

function pretty(value) {
  if (typeof value !== 'string') return JSON.stringify(value, null, 2);
  try { return JSON.stringify(JSON.parse(value), null, 2); } catch { return value; }
}
