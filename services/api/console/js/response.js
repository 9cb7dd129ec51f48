// SPDX-License-Identifier: Apache-2.0
// The Incident response page: handling policies and playbook runs across the caller's
// events (state filter, cancel an active or failed one) and their tasks.

import * as api from './api.js';
import { go, href } from './router.js';
import { badge, field, fill, h, select, table, time } from './ui.js';
import { Pager } from './common.js';
import { policyCard } from './event.js';

const LIMIT = 50;
const POLICY_STATES = ['applying', 'active', 'failed', 'expiring', 'expired'];
const TASK_STATES = ['pending', 'running', 'succeeded', 'failed', 'timed_out', 'rolled_back', 'cancelled'];

export function render(main, route) {
  const view = route.query.get('view') === 'tasks' ? 'tasks' : 'policies';
  const state = route.query.get('state') || '';
  const pager = new Pager();
  let alive = true;
  const listEl = h('div', { class: 'list-area', id: 'response-list' });
  const stateSel = select([['', 'Any state'], ...(view === 'tasks' ? TASK_STATES : POLICY_STATES).map((x) => [x, x.replace(/_/g, ' ')])], state, { name: 'state' });
  const form = h('form', { class: 'filter-form inline-form', role: 'search', 'aria-label': 'Response filters' },
    field('State', stateSel), h('button', { type: 'submit', class: 'primary' }, 'Apply'));
  form.addEventListener('submit', (e) => { e.preventDefault(); go(['response'], { view, state: stateSel.value }); });
  fill(main, h('h1', null, 'Incident response'),
    h('nav', { class: 'tabs', 'aria-label': 'Response views' },
      h('a', { class: 'tab', href: href(['response'], { view: 'policies' }), 'aria-current': view === 'policies' ? 'page' : null }, 'Policies'),
      h('a', { class: 'tab', href: href(['response'], { view: 'tasks' }), 'aria-current': view === 'tasks' ? 'page' : null }, 'Tasks')),
    form, listEl);
  async function load() {
    let r;
    try { r = await api.get(`/${view}` + api.qs({ state, limit: LIMIT, cursor: pager.cursor })); }
    catch (e) { if (alive) fill(listEl, h('p', { class: 'empty' }, e.message)); return; }
    if (!alive) return;
    pager.setNext(r.next_cursor);
    const items = r[view] || [];
    const total = r.total ?? items.length;
    if (view === 'policies') {
      fill(listEl, items.length ? items.map((p) => h('div', null,
        h('p', { class: 'small' }, 'Event ', h('a', { href: href(['events', p.event_id, 'response']) }, p.event_id)), policyCard(p, load)))
        : h('p', { class: 'empty' }, 'No policy.'), pager.controls(items.length, LIMIT, total, load, 'Policies'));
    } else {
      fill(listEl, items.length ? table(['Created', 'Event', 'Entity', 'Kind', 'Step', 'Action', 'Asset', 'State', 'Attempt', 'Reason'],
        items.map((t) => h('tr', null, h('td', null, time(t.created_at)),
          h('td', null, h('a', { href: href(['events', t.event_id, 'response']) }, t.event_id)),
          h('td', null, `${t.entity_type}:${t.entity_value}`), h('td', null, t.kind), h('td', { class: 'num' }, String(t.step ?? '')),
          h('td', null, t.action), h('td', null, t.asset_id || '—'), h('td', null, badge(t.state, 'state')),
          h('td', null, `${t.attempt ?? ''}/${t.max_attempts ?? ''}`), h('td', null, t.reason || ''))), { id: 'tasks-table' })
        : h('p', { class: 'empty' }, 'No task.'), pager.controls(items.length, LIMIT, total, load, 'Tasks'));
    }
  }
  load();
  return () => { alive = false; };
}
