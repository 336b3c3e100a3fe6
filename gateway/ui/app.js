// app.js - the console: sign-in, the router, and live updates that stop
// while the tab is hidden (nothing is requested while nobody looks)

import { get, getKey, setKey, clearKey, ApiError } from './api.js';
import { session, announce } from './ui.js';
import * as overview from './overview.js';
import * as tasks from './tasks.js';
import * as task from './task.js';
import * as schedules from './schedules.js';
import * as flow from './flow.js';
import * as tokens from './tokens.js';

const routes = {
  overview: overview.render,
  tasks: tasks.render,
  failed: tasks.renderFailed,
  task: task.render,
  schedules: schedules.render,
  schedule: schedules.renderOne,
  flow: flow.render,
  tokens: tokens.render,
};

const $ = id => document.getElementById(id);
let page = null; // {ctx, jobs}

// #key=KEY signs in and leaves the address bar at once (the fragment never
// reaches the server; this keeps it out of history and screenshots too).
function takeKeyFromUrl() {
  const match = /^#key=([^&]+)/.exec(location.hash);
  if (!match) return;
  setKey(decodeURIComponent(match[1]));
  history.replaceState(null, '', location.pathname + '#/overview');
}

async function signIn() {
  try {
    const who = await get('/v1/whoami');
    Object.assign(session, who);
  } catch (e) {
    clearKey();
    showSignIn(e instanceof ApiError && e.status === 401 ? 'That key is not valid (or revoked).' : e.message);
    return false;
  }
  $('signin').hidden = true;
  $('nav').hidden = false;
  $('signout').hidden = false;
  $('who').textContent = `${session.team} · ${session.scope === 'full' ? 'full access' : 'read only'}`;
  document.body.classList.toggle('readonly', session.scope !== 'full');
  return true;
}

function showSignIn(message) {
  stopPage();
  $('page').replaceChildren();
  $('nav').hidden = true;
  $('signout').hidden = true;
  $('who').textContent = '';
  $('signin').hidden = false;
  $('signin-error').textContent = message || '';
  $('key').focus();
}

// ---- live updates --------------------------------------------------------

// A page registers jobs: every(ms, fn) refreshes, loop(fn(signal)) long
// polls, watch(fn(stats)) refreshes when the team's tasks change. They run
// only while the document is visible, and stop with the page.
function makeContext() {
  const jobs = [];
  const ctx = {
    every: (ms, fn) => jobs.push({ ms, fn }),
    loop: fn => jobs.push({ fn, loop: true }),
    watch: fn => jobs.push({ fn: watchTeam(fn), loop: true }),
    go: hash => { location.hash = hash; },
    stopped: false,
  };
  return { ctx, jobs, run: null };
}

// GET /v1/stats?wait=25&since=N is held by the broker until a task of the
// team changes status (N: the changes count last seen), or 25 s pass; then
// fn refreshes the page. At most one refresh a second, however busy.
function watchTeam(fn) {
  let since = null;
  return async signal => {
    const stats = await get('/v1/stats' + (since === null ? '' : '?wait=25&since=' + since), signal);
    if (signal.aborted) return;
    since = stats.changes;
    await fn(stats);
    await new Promise(resolve => setTimeout(resolve, 1000));
  };
}

function startJobs(p) {
  if (p.run || p.ctx.stopped || document.visibilityState !== 'visible') return;
  const run = p.run = { controller: new AbortController(), timers: [] };
  const alive = () => p.run === run && !p.ctx.stopped;
  for (const job of p.jobs) {
    if (job.loop) {
      (async () => {
        while (alive()) {
          try { await job.fn(run.controller.signal); } catch (e) {
            if (e.name === 'AbortError' || !alive()) return;
            await new Promise(r => setTimeout(r, 3000));
          }
        }
      })();
    } else {
      const tick = async () => {
        if (!alive()) return;
        try { await job.fn(); } catch (e) { if (alive()) announce(e.message, true); }
        if (alive()) run.timers.push(setTimeout(tick, job.ms));
      };
      run.timers.push(setTimeout(tick, job.ms));
    }
  }
}

function stopJobs(p) {
  if (!p || !p.run) return;
  p.run.controller.abort();
  p.run.timers.forEach(clearTimeout);
  p.run = null;
}

function stopPage() {
  if (!page) return;
  page.ctx.stopped = true;
  stopJobs(page);
  page = null;
}

document.addEventListener('visibilitychange', () => {
  if (!page) return;
  if (document.visibilityState === 'visible') {
    // Catch up at once, then go on as before
    for (const job of page.jobs) if (!job.loop) job.fn().catch(() => {});
    startJobs(page);
  } else stopJobs(page);
});

// ---- the router ----------------------------------------------------------

async function route() {
  if (!getKey()) return showSignIn();
  const [path, search] = location.hash.replace(/^#\/?/, '').split('?');
  const [name, id] = path.split('/');
  const render = routes[name];
  if (!render) { location.replace('#/overview'); return; }
  stopPage();
  for (const a of document.querySelectorAll('#nav a')) {
    const here = a.getAttribute('href') === '#/' + name ||
      (name === 'task' && a.getAttribute('href') === '#/tasks') ||
      (name === 'schedule' && a.getAttribute('href') === '#/schedules');
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const p = page = makeContext();
  const el = $('page');
  try {
    await render(el, { id: id && decodeURIComponent(id), params: new URLSearchParams(search || '') }, p.ctx);
  } catch (e) {
    if (p !== page) return;
    if (e instanceof ApiError && e.status === 401) { clearKey(); return showSignIn('The key is no longer valid.'); }
    el.replaceChildren();
    const msg = document.createElement('p');
    msg.className = 'error';
    msg.setAttribute('role', 'alert');
    msg.textContent = e.message;
    el.append(msg);
    return;
  }
  if (p !== page) return;
  const heading = el.querySelector('h1');
  if (heading) document.title = heading.textContent + ' · asyncqueue';
  startJobs(p);
}

$('signin').addEventListener('submit', async event => {
  event.preventDefault();
  setKey($('key').value.trim());
  $('key').value = '';
  if (await signIn()) route();
});

$('signout').addEventListener('click', () => {
  clearKey();
  history.replaceState(null, '', location.pathname);
  showSignIn('Signed out.');
});

window.addEventListener('hashchange', () => {
  if (/^#key=/.test(location.hash)) { takeKeyFromUrl(); signIn().then(ok => ok && route()); return; }
  route().then(() => $('main').focus({ preventScroll: true }));
});

takeKeyFromUrl();
if (getKey()) signIn().then(ok => ok && route()); else showSignIn();
