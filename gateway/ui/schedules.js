// schedules.js - scheduled tasks: the list, and one with its next fire
// times (preview), its runs (skipped ones with why), pause/resume/run now

import { get, post } from './api.js';
import { h, put, time, badge, table, fields, button, announce, canWrite } from './ui.js';

export async function render(el, route, ctx) {
  const list = h('div', { id: 'schedules' });
  put(el, h('h1', {}, 'Scheduled tasks'), list);
  async function refresh() {
    const data = await get('/tasks?limit=100');
    put(list, table('Scheduled tasks', [
      { title: 'Title', cell: t => h('a', { href: '#/schedule/' + t.id }, t.title || t.id) },
      { title: 'Status', cell: t => badge(t.status) },
      { title: 'Schedule', cell: t => h('code', {}, t.schedule_kind + (t.schedule_expr ? ' ' + t.schedule_expr : '')) },
      { title: 'Zone', cell: t => t.timezone },
      { title: 'Next run', cell: t => time(t.next_run_at) },
      { title: 'Last run', cell: t => time(t.last_run_at) },
    ], data.tasks, 'No scheduled tasks yet.'));
  }
  await refresh();
  ctx.watch(() => refresh());
}

export async function renderOne(el, route, ctx) {
  const path = '/tasks/' + encodeURIComponent(route.id);
  const head = h('div', { class: 'head' });
  const info = h('div', { class: 'grid' });
  const runs = h('section', { class: 'card' });
  put(el, h('p', {}, h('a', { href: '#/schedules' }, '← Scheduled tasks')), head, info, runs);

  async function refresh() {
    const [task, preview, runList] = await Promise.all([
      get(path).then(d => d.task),
      get(path + '/preview?count=5'),
      get(path + '/runs?limit=50'),
    ]);
    put(head, h('h1', {}, task.title || 'Scheduled task'), badge(task.status),
      canWrite() && task.status === 'active' ? button('Pause', () => act('pause'), { id: 'pause' }) : null,
      canWrite() && task.status === 'paused' ? button('Resume', () => act('resume'), { id: 'resume' }) : null,
      canWrite() && task.status !== 'canceled' ? button('Run now', () => act('run_now'), { id: 'run-now' }) : null);
    put(info, 
      h('section', { class: 'card' }, h('h2', {}, 'Schedule'), fields([
        ['Kind', task.schedule_kind], ['Expression', task.schedule_expr ? h('code', {}, task.schedule_expr) : ''],
        ['Time zone', task.timezone], ['Description', task.description],
        ['Next run', time(task.next_run_at)], ['Last run', time(task.last_run_at)],
        ['Snoozed until', task.snoozed_until ? time(task.snoozed_until) : ''],
        ['Dedupe key', task.dedupe_key], ['Concurrency key', task.concurrency_key],
        ['Retries', task.max_retries + ' (' + task.backoff_strategy + ')'],
        ['Created', time(task.created_at)],
      ])),
      h('section', { class: 'card' }, h('h2', {}, 'Next fire times'),
        preview.fire_times.length ? h('ol', { id: 'fire-times' }, preview.fire_times.map(at => h('li', {}, time(at))))
          : h('p', { class: 'muted' }, task.schedule_kind === 'event' ? 'Runs when its event is posted.' : 'No further fire time.')));
    put(runs, h('h2', {}, 'Runs'), table('Runs', [
      { title: 'Trigger', cell: r => r.trigger },
      { title: 'Status', cell: r => badge(r.status) },
      { title: 'For', cell: r => time(r.scheduled_at) },
      { title: 'Started', cell: r => time(r.started_at) },
      { title: 'Finished', cell: r => time(r.finished_at) },
      { title: 'Steps', cell: r => h('span', {}, (r.steps || []).map(st =>
        h('a', { href: '#/task/' + st.task_id, class: 'step', title: st.status }, '#' + st.step + ' ' + st.status))) },
      { title: 'Why', cell: r => (r.status === 'skipped' ? 'skipped: ' + (r.error || 'deduplicated') : r.error || '') },
    ], runList.runs, 'No runs yet.'));
  }

  async function act(action) {
    try {
      await post(path + '/' + action);
      announce(action === 'run_now' ? 'A run started.' : action === 'pause' ? 'Paused.' : 'Resumed.');
      await refresh();
    } catch (e) { announce(e.message, true); }
  }

  await refresh();
  ctx.watch(() => refresh());
}
