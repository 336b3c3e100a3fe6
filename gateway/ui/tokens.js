// tokens.js - the token vault: names and dates, never values; create, delete

import { get, call, post } from './api.js';
import { h, put, time, table, button, confirm, announce, canWrite } from './ui.js';

export async function render(el, route, ctx) {
  const list = h('div', { id: 'tokens' });
  const form = canWrite() ? h('form', { class: 'card filters', 'aria-label': 'New token' },
    h('h2', {}, 'Store a secret'),
    h('div', { class: 'field' }, h('label', { for: 't-name' }, 'Name'), h('input', { id: 't-name', name: 'name', required: true, maxlength: '200' })),
    h('div', { class: 'field' }, h('label', { for: 't-value' }, 'Value (write-only)'),
      h('input', { id: 't-value', name: 'value', type: 'password', autocomplete: 'off', required: true })),
    h('div', { class: 'field buttons' }, h('button', { type: 'submit' }, 'Create'))) : null;
  put(el, h('h1', {}, 'Tokens'),
    h('p', { class: 'muted' }, 'Put a token id where a secret would go in a task\'s headers; the value is never shown again.'),
    list, form);
  form?.addEventListener('submit', async event => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      const t = (await post('/v1/tokens', { name: data.get('name'), value: data.get('value') })).token;
      form.reset();
      announce('Token created: ' + t.id);
      await refresh();
    } catch (e) { announce(e.message, true); }
  });

  async function refresh() {
    const tokens = (await get('/v1/tokens')).tokens;
    put(list, table('Tokens', [
      { title: 'Name', cell: t => t.name },
      { title: 'Id', cell: t => h('code', {}, t.id) },
      { title: 'Created', cell: t => time(t.createdAt) },
      ...(canWrite() ? [{ title: 'Actions', cell: t => button('Delete', () => remove(t), { class: 'danger', 'aria-label': 'Delete token ' + t.name }) }] : []),
    ], tokens, 'No tokens yet.'));
  }

  async function remove(t) {
    if (!await confirm(`Delete the token "${t.name}"? Tasks that still name it will fail.`, 'Delete', true)) return;
    try {
      await call('DELETE', '/v1/tokens/' + encodeURIComponent(t.id));
      announce('Deleted.');
      await refresh();
    } catch (e) { announce(e.message, true); }
  }

  await refresh();
  ctx.every(30000, refresh); // tokens change only by hand
}
