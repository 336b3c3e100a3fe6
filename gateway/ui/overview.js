// overview.js - tasks by status, the last hour per minute, workers, queue
// depth, busiest flow-control keys (all from counters: GET /v1/stats)

import { get, ApiError } from './api.js';
import { h, put, s, table, plural } from './ui.js';

const STATUSES = ['pending', 'delayed', 'processing', 'waiting', 'polling',
  'completed', 'failed', 'timeout', 'cancelled'];
const SERIES = [['created', 'Created'], ['completed', 'Completed'], ['failed', 'Failed']];

export async function render(el, route, ctx) {
  const counts = h('div', { class: 'tiles', id: 'counts' });
  const gauges = h('div', { class: 'tiles' });
  const chart = h('figure', { class: 'card chart' });
  const keys = h('section', { class: 'card' });
  put(el, h('h1', {}, 'Overview'), counts, gauges, chart, keys);

  async function refresh(given) {
    const [stats, flow] = await Promise.all([given || get('/v1/stats'), flowKeys()]);
    put(counts, ...STATUSES.map(st =>
      h('a', { class: 'tile st-' + st, href: '#/tasks?status=' + st, 'data-status': st },
        h('span', { class: 'n' }, String(stats.tasks[st] ?? 0)), h('span', {}, st))));
    put(gauges, 
      tile('Workers connected', stats.workers ?? 0, 'workers'),
      tile('Queue depth (pending)', stats.tasks.pending ?? 0, 'depth'),
      tile('Delayed', stats.tasks.delayed ?? 0, 'delayed'),
      tile('Tasks ever created', stats.counters?.created ?? 0, 'created'));
    put(chart, drawChart(stats.minutes || [], chart.clientWidth),
      h('figcaption', {}, 'Tasks per minute over the last hour, in your time zone'));
    put(keys, h('h2', {}, 'Busiest flow-control keys'), flow === null
      ? h('p', { class: 'muted' }, 'Flow control is not available on this server.')
      : table('Busiest flow-control keys', [
        { title: 'Key', cell: k => h('a', { href: '#/flow' }, k.key) },
        { title: 'In flight', cell: k => k.inFlight },
        { title: 'Waiting', cell: k => k.waiting },
        { title: 'Paused', cell: k => (k.paused ? 'yes' : 'no') },
      ], flow, 'No flow-control keys yet.'));
  }
  await refresh();
  ctx.watch(refresh);
}

function tile(label, value, id) {
  return h('div', { class: 'tile', id: 'gauge-' + id }, h('span', { class: 'n' }, String(value)), h('span', {}, label));
}

// The five keys with the most tasks in flight or waiting; null when the
// server has no flow control.
async function flowKeys() {
  try {
    const data = await get('/v1/flow-control?limit=100');
    return (data.keys || []).sort((a, b) => (b.inFlight + b.waiting) - (a.inFlight + a.waiting)).slice(0, 5);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

// Three lines over 60 minutes, drawn as SVG (no library).
function drawChart(minutes, width) {
  // drawn at the size it is shown, so its text stays readable on a phone
  const W = Math.max(300, Math.min(1100, (width || 720) - 34)), H = W < 500 ? 180 : 220;
  const L = 40, B = 28, T = 10, R = 10;
  const max = Math.max(1, ...minutes.flatMap(m => SERIES.map(([k]) => m[k])));
  const x = i => L + (i * (W - L - R)) / Math.max(1, minutes.length - 1);
  const y = v => T + (H - T - B) * (1 - v / max);
  const totals = SERIES.map(([k, label]) => label + ' ' + minutes.reduce((n, m) => n + m[k], 0)).join(', ');
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'plot',
    'aria-label': 'Last hour: ' + totals },
  s('title', {}, 'Last hour: ' + totals));
  for (const v of [0, max / 2, max]) {
    svg.append(s('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }),
      s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, String(Math.round(v))));
  }
  const fmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  minutes.forEach((m, i) => {
    if (i % (W < 500 ? 20 : 10) === 0 || i === minutes.length - 1) {
      const at = new Date(m.at);
      svg.append(s('text', { x: x(i), y: H - 8, 'text-anchor': 'middle', class: 'axis' },
        s('title', {}, at.toISOString()), fmt.format(at)));
    }
  });
  for (const [k] of SERIES) {
    svg.append(s('polyline', { class: 'line ' + k, fill: 'none',
      points: minutes.map((m, i) => x(i) + ',' + y(m[k])).join(' ') }));
  }
  const legend = h('ul', { class: 'legend' }, SERIES.map(([k, label]) =>
    h('li', { class: k }, label + ': ' + plural(minutes.reduce((n, m) => n + m[k], 0), 'task'))));
  return h('div', {}, svg, legend);
}
