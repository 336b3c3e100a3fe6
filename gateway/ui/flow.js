// flow.js - flow-control keys: limits, in flight, waiting, held until,
// pause/resume (GET /v1/flow-control, POST .../pause and .../resume)

import { get, post, ApiError } from './api.js';
import { h, put, time, table, button, announce, canWrite } from './ui.js';

export async function render(el, route, ctx) {
  const list = h('div', { id: 'flow' });
  put(el, h('h1', {}, 'Flow-control keys'),
    h('p', { class: 'muted' }, 'Limits on the outgoing calls of the tasks that share a key. A 429 holds the key and halves its rate; it climbs back by itself.'),
    list);

  async function refresh() {
    let keys;
    try {
      keys = (await get('/v1/flow-control?limit=100')).keys;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        put(list, h('p', { class: 'muted' }, 'Flow control is not available on this server.'));
        return;
      }
      throw e;
    }
    put(list, table('Flow-control keys', [
      { title: 'Key', cell: k => h('code', {}, k.key) },
      { title: 'Rate', cell: k => (k.rate ? `${k.rate} per ${k.period} s` : '—') },
      { title: 'Effective', cell: k => (k.rate ? String(Math.round(k.effectiveRate * 100) / 100) : '—') },
      { title: 'Parallelism', cell: k => k.parallelism ?? '—' },
      { title: 'In flight', cell: k => k.inFlight },
      { title: 'Waiting', cell: k => k.waiting },
      { title: 'Held until', cell: k => (k.heldUntil ? time(k.heldUntil) : '—') },
      { title: 'State', cell: k => (k.paused ? 'paused' : 'running') },
      ...(canWrite() ? [{ title: 'Actions', cell: k => button(k.paused ? 'Resume' : 'Pause',
        () => act(k, k.paused ? 'resume' : 'pause'), { 'aria-label': (k.paused ? 'Resume ' : 'Pause ') + k.key }) }] : []),
    ], keys, 'No flow-control keys yet: they appear when a task names one.'));
  }

  async function act(k, action) {
    try {
      await post('/v1/flow-control/' + encodeURIComponent(k.key) + '/' + action);
      announce(`${k.key}: ${action === 'pause' ? 'paused' : 'resumed'}.`);
      await refresh();
    } catch (e) { announce(e.message, true); }
  }

  await refresh();
  ctx.watch(() => refresh());
}
