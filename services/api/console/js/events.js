// SPDX-License-Identifier: Apache-2.0
// The security events list: the API's filters (time range, status, level, urgency,
// owner incl. mine/unassigned, account, keyword, name, asset, entity, source, ATT&CK
// stage), sort, keyset paging with the total, counts per status (one total per status
// under the same filters), and the bulk actions on the ticked events: status, owner,
// level with an optional remark, export of the selection, merge. Filters live in the
// address (#/events?status=unhandled&sort=urgency), so reload and back keep them.

import * as api from './api.js';
import { go, href } from './router.js';
import { badge, clip, field, fill, h, openDialog, remarkField, select, showOk, table, time } from './ui.js';
import {
  accounts, bulkSummary, EVENT_STATUSES, isoToLocalInput, LEVELS, localInputToIso, Pager, TACTICS, URGENCIES,
} from './common.js';

const FILTER_KEYS = ['since', 'until', 'status', 'level', 'urgency', 'owner', 'account', 'q', 'name',
  'asset', 'entity', 'source', 'stage', 'sort'];
const PAGE_SIZES = [25, 50, 100, 200];

/** Draws the page for route.query (the filters). */
export function render(main, route) {
  const filters = {};
  for (const k of FILTER_KEYS) { const v = route.query.get(k); if (v) filters[k] = v; }
  const limit = PAGE_SIZES.includes(Number(route.query.get('limit'))) ? Number(route.query.get('limit')) : 50;
  const pager = new Pager();
  const selected = new Map();          // event id -> name
  let alive = true;

  const countsEl = h('div', { class: 'status-counts', 'aria-label': 'Events per status', role: 'group' });
  const bulkEl = h('div', { class: 'bulk-bar', id: 'bulk-bar' });
  const listEl = h('div', { class: 'list-area', id: 'events-list', 'aria-live': 'polite' });
  const form = filterForm(filters, limit);

  // the filters are open on a wide screen and folded on a phone (the list first), also
  // when the window crosses that width
  const wide = window.matchMedia('(min-width: 700px)');
  const filtersEl = h('details', { class: 'filters', open: wide.matches ? true : null },
    h('summary', null, 'Filters'), form);
  const onWidth = (e) => { filtersEl.open = e.matches; };
  wide.addEventListener('change', onWidth);
  fill(main, h('h1', null, 'Security events'), filtersEl, countsEl, bulkEl, listEl);

  const params = () => ({ ...filters, limit });

  async function loadCounts() {
    const base = { ...filters };
    delete base.status; delete base.sort;
    const totals = await Promise.all(EVENT_STATUSES.map((st) =>
      api.get('/events' + api.qs({ ...base, status: st, limit: 1 }), { quiet: true }).then((r) => r.total).catch(() => null)));
    if (!alive) return;
    const active = (filters.status || '').split(',').filter(Boolean);
    fill(countsEl, EVENT_STATUSES.map((st, i) => {
      const on = active.length === 1 && active[0] === st;
      return h('a', {
        class: ['count-chip', `status-${st}`, on ? 'on' : null],
        href: href(['events'], { ...filters, status: on ? '' : st }),
        'aria-current': on ? 'true' : null, dataset: { status: st },
      }, h('span', { class: 'count-label' }, st), ' ', h('span', { class: 'count-n' }, totals[i] === null ? '?' : String(totals[i])));
    }));
  }

  async function load() {
    let res;
    try {
      res = await api.get('/events' + api.qs({ ...params(), cursor: pager.cursor }));
    } catch (e) {
      if (alive) fill(listEl, h('p', { class: 'empty' }, e.message));
      return;
    }
    if (!alive) return;
    pager.setNext(res.next_cursor);
    drawList(res);
  }

  function drawList(res) {
    const canChange = api.canChange();
    const all = h('input', { type: 'checkbox', id: 'select-page', 'aria-label': 'Select every event on this page' });
    const boxes = [];
    const rows = res.events.map((ev) => {
      const cb = h('input', {
        type: 'checkbox', class: 'row-select', 'aria-label': `Select ${ev.name}`,
        checked: selected.has(ev.event_id), dataset: { id: ev.event_id },
      });
      cb.addEventListener('change', () => {
        if (cb.checked) selected.set(ev.event_id, ev.name); else selected.delete(ev.event_id);
        drawBulk();
      });
      boxes.push(cb);
      return h('tr', { dataset: { id: ev.event_id } },
        h('td', { class: 'col-select' }, canChange ? cb : null),
        h('td', { class: 'col-name' }, h('a', { href: href(['events', ev.event_id]) }, clip(ev.name, 90)),
          ev.merged_into ? h('small', { class: 'muted' }, ' merged into ', h('a', { href: href(['events', ev.merged_into]) }, ev.merged_into)) : null),
        h('td', null, badge(ev.level, 'level')),
        h('td', null, badge(ev.urgency, 'urgency'), ev.quiet ? h('small', { class: 'quiet', title: `Quiet: assessed ${ev.assessed_urgency}` }, ' quiet') : null),
        h('td', null, badge(ev.status, 'status')),
        h('td', { class: 'col-owner' }, ev.owner || h('span', { class: 'muted' }, 'unassigned')),
        h('td', { class: 'num' }, String(ev.alert_count ?? '')),
        h('td', { class: 'num' }, String(ev.asset_count ?? '')),
        h('td', { class: 'col-stages' }, (ev.tactics || []).map((t) => h('span', { class: 'stage', title: t.id }, t.name || t.id))),
        h('td', null, ev.account_id),
        h('td', null, time(ev.first_seen)),
        h('td', null, time(ev.last_seen)));
    });
    all.checked = boxes.length > 0 && boxes.every((b) => b.checked);
    all.addEventListener('change', () => {
      for (const b of boxes) { b.checked = all.checked; b.dispatchEvent(new Event('change')); }
    });
    const heads = [canChange ? all : '', 'Name', 'Level', 'Urgency', 'Status', 'Owner', 'Alerts', 'Assets', 'Stages', 'Account', 'First seen', 'Last seen'];
    fill(listEl,
      res.events.length === 0 ? h('p', { class: 'empty' }, 'No event matches these filters.')
        : table(heads, rows, { class: ['events-table', canChange ? null : 'read-only'], id: 'events-table' }),
      pager.controls(res.events.length, limit, res.total, load, 'Events'));
  }

  function drawBulk() {
    if (!api.canChange()) { bulkEl.replaceChildren(); return; }
    const n = selected.size;
    const dis = n === 0;
    fill(bulkEl,
      h('span', { class: 'bulk-count', id: 'bulk-count', 'aria-live': 'polite' }, `${n} selected`),
      h('button', { type: 'button', id: 'bulk-status', disabled: dis, onclick: () => bulkDialog('status') }, 'Set status…'),
      h('button', { type: 'button', id: 'bulk-owner', disabled: dis, onclick: () => bulkDialog('owner') }, 'Set owner…'),
      h('button', { type: 'button', id: 'bulk-level', disabled: dis, onclick: () => bulkDialog('level') }, 'Set level…'),
      h('button', { type: 'button', id: 'bulk-export', disabled: dis, onclick: exportSelection }, 'Export selection'),
      h('button', { type: 'button', id: 'bulk-merge', disabled: n < 2 || n > 20, onclick: mergeDialog }, 'Merge…'),
      h('button', { type: 'button', class: 'link', disabled: dis, onclick: () => { selected.clear(); drawBulk(); load(); } }, 'Clear selection'),
      exportFilteredButton());
  }

  // The exporter takes levels, statuses and the time range: the list's other filters
  // cannot be exported as filters (tick the events instead).
  function exportFilteredButton() {
    const other = Object.keys(filters).filter((k) => !['level', 'status', 'since', 'until', 'sort'].includes(k));
    const btn = h('button', {
      type: 'button', id: 'export-filtered', disabled: other.length > 0,
      title: other.length ? `The export cannot filter on ${other.join(', ')}: tick the events instead.` : null,
    }, 'Export these filters');
    btn.addEventListener('click', async () => {
      const body = {};
      if (filters.level) body.levels = filters.level.split(',');
      if (filters.status) body.statuses = filters.status.split(',');
      if (filters.since) body.since = filters.since;
      if (filters.until) body.until = filters.until;
      const ans = await api.post('/exports', body).catch(() => null);
      if (!ans) return;
      const job = (ans.result && ans.result.job_id) || ans.command_id;
      showOk(ans.status === 'pending' ? `Export ${job} is being made.` : `Export ${job} is ready.`);
      go(['exports'], { job });
    });
    return btn;
  }

  function bulkDialog(kind) {
    const me = api.currentUser();
    let control;
    if (kind === 'status') control = select(['unhandled', 'handling', 'handled'], 'handling', { name: 'status' });
    else if (kind === 'level') control = select(LEVELS, 'high', { name: 'level' });
    else {
      control = h('input', { name: 'owner', list: 'owner-list', required: true, maxlength: 64, value: me.user });
    }
    const remark = remarkField();
    const ids = [...selected.keys()];
    openDialog(`Set ${kind} of ${ids.length} event${ids.length === 1 ? '' : 's'}`, (body) => {
      body.append(field(kind[0].toUpperCase() + kind.slice(1), control), remark.el);
      if (kind === 'owner') {
        const dlist = h('datalist', { id: 'owner-list' }, h('option', { value: me.user }));
        body.append(dlist);
        if (api.isAdmin()) api.cached('/users').then((u) => { for (const x of u.users || []) if (x.user !== me.user && x.state === 'enabled') dlist.append(h('option', { value: x.user })); }).catch(() => {});
      }
    }, [
      { label: 'Cancel' },
      {
        label: 'Apply', primary: true, onclick: async (ev, close, err) => {
          const value = control.value.trim();
          if (!value) throw new Error(`Enter the ${kind}.`);
          const body = { ids, [kind]: value };
          if (remark.value) body.remark = remark.value;
          const ans = await api.post(`/events/_bulk/${kind}`, body, { quiet: true });
          const sum = bulkSummary(ans, selected);
          if (sum.failed) {
            err.replaceChildren(sum.sentence, sum.list);
            err.hidden = false;
            load(); loadCounts();
            return;
          }
          close();
          showOk(sum.sentence);
          selected.clear();
          drawBulk(); load(); loadCounts();
        },
      },
    ]);
  }

  async function exportSelection() {
    const ids = [...selected.keys()];
    const ans = await api.post('/exports', { ids }).catch(() => null);
    if (!ans) return;
    const job = (ans.result && ans.result.job_id) || ans.command_id;
    showOk(ans.status === 'pending' ? `Export ${job} is being made.` : `Export ${job} is ready (${(ans.result && ans.result.events) || ids.length} events).`);
    go(['exports'], { job });
  }

  function mergeDialog() {
    const ids = [...selected.keys()];
    const remark = remarkField();
    openDialog(`Merge ${ids.length} events`, (body) => {
      body.append(h('p', null, 'The oldest event takes the others\u2019 alerts; the others become merged.'),
        h('ul', null, ids.map((id) => h('li', null, selected.get(id) || id))), remark.el);
    }, [
      { label: 'Cancel' },
      {
        label: 'Merge', primary: true, onclick: async (ev, close) => {
          const body = { event_ids: ids };
          if (remark.value) body.remark = remark.value;
          const ans = await api.post('/events/merge', body, { quiet: true });
          close();
          showOk(api.describeAnswer(ans));
          selected.clear(); drawBulk(); load(); loadCounts();
        },
      },
    ]);
  }

  drawBulk();
  load();
  loadCounts();
  return () => { alive = false; wide.removeEventListener('change', onWidth); };
}

/** The filter form; submitting writes the filters into the address. */
function filterForm(f, limit) {
  const multi = (name, values, current) => {
    const on = new Set((current || '').split(',').filter(Boolean));
    return h('fieldset', { class: 'checks', id: `filter-${name}` }, h('legend', null, name[0].toUpperCase() + name.slice(1)),
      values.map((v) => h('label', { class: 'check' },
        h('input', { type: 'checkbox', name, value: v, checked: on.has(v) }), ' ', v.replace(/_/g, ' '))));
  };
  const text = (name, label, value, attrs) => field(label, h('input', { id: `filter-${name}`, name, value: value || '', ...attrs }));
  const ownerMode = f.owner === 'me' || f.owner === 'none' || !f.owner ? (f.owner || '') : 'user';
  const ownerSel = select([['', 'Anyone'], ['me', 'Mine'], ['none', 'Unassigned'], ['user', 'A user…']], ownerMode, { id: 'filter-owner', name: 'owner_mode' });
  const ownerName = h('input', { id: 'filter-owner-name', name: 'owner_name', maxlength: 64, value: ownerMode === 'user' ? f.owner : '', disabled: ownerMode !== 'user', 'aria-label': 'Owner\u2019s user name' });
  ownerSel.addEventListener('change', () => { ownerName.disabled = ownerSel.value !== 'user'; if (!ownerName.disabled) ownerName.focus(); });
  const accountSel = select([['', 'Every account']], '', { id: 'filter-account', name: 'account' });
  accounts().then((a) => {
    for (const acc of a.accounts) accountSel.append(h('option', { value: acc }, acc));
    if (f.account && !a.accounts.includes(f.account)) accountSel.append(h('option', { value: f.account }, f.account));
    accountSel.value = f.account || '';
  });
  const stageSel = select([['', 'Any stage'], ...TACTICS.map(([id, n]) => [id, `${n} (${id})`])], '', { id: 'filter-stage', name: 'stage' });
  if (f.stage && !TACTICS.some(([id]) => id === f.stage)) stageSel.append(h('option', { value: f.stage }, f.stage));
  stageSel.value = f.stage || '';
  const since = h('input', { type: 'datetime-local', id: 'filter-since', name: 'since', value: isoToLocalInput(f.since) });
  const until = h('input', { type: 'datetime-local', id: 'filter-until', name: 'until', value: isoToLocalInput(f.until) });
  const range = select([['', 'Choose…'], ['1', 'Last 24 hours'], ['7', 'Last 7 days'], ['30', 'Last 30 days'], ['all', 'Any time']], '', { id: 'filter-range', name: 'range' });
  range.addEventListener('change', () => {
    if (range.value === 'all') { since.value = ''; until.value = ''; }
    else if (range.value) { since.value = isoToLocalInput(new Date(Date.now() - Number(range.value) * 86400e3).toISOString()); until.value = ''; }
  });
  const sort = select([['last_seen', 'Latest first'], ['level', 'Level'], ['urgency', 'Urgency'], ['alerts', 'Most alerts']], f.sort || 'last_seen', { id: 'filter-sort', name: 'sort' });
  const size = select(PAGE_SIZES.map((n) => [String(n), String(n)]), String(limit), { id: 'filter-limit', name: 'limit' });

  const form = h('form', { class: 'filter-form', id: 'filter-form', role: 'search', 'aria-label': 'Event filters' },
    h('div', { class: 'filter-grid' },
      text('q', 'Keyword (name, id, alert name)', f.q, { type: 'search', maxlength: 256 }),
      text('name', 'Event name contains', f.name, { maxlength: 256 }),
      field('Time range', range),
      field('Active since', since),
      field('Active until', until),
      field('Owner', ownerSel), h('div', { class: 'field' }, h('label', { for: 'filter-owner-name' }, 'Owner\u2019s name'), ownerName),
      field('Account', accountSel),
      text('asset', 'Asset id', f.asset),
      text('entity', 'Entity (type:value)', f.entity, { placeholder: 'ip:203.0.113.9' }),
      text('source', 'Source', f.source, { maxlength: 128, placeholder: 'virus_scan' }),
      field('ATT&CK stage', stageSel),
      field('Sort', sort),
      field('Rows per page', size)),
    h('div', { class: 'filter-checks' },
      multi('status', EVENT_STATUSES, f.status),
      multi('level', LEVELS, f.level),
      multi('urgency', URGENCIES, f.urgency)),
    h('div', { class: 'form-buttons' },
      h('button', { type: 'submit', class: 'primary', id: 'filter-apply' }, 'Apply filters'),
      h('a', { href: '#/events', class: 'button-like', id: 'filter-reset' }, 'Reset')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    const q = {};
    for (const k of ['q', 'name', 'asset', 'entity', 'source', 'stage', 'account']) {
      const v = (fd.get(k) || '').toString().trim();
      if (v) q[k] = v;
    }
    for (const k of ['status', 'level', 'urgency']) {
      const v = fd.getAll(k);
      if (v.length) q[k] = v.join(',');
    }
    const mode = fd.get('owner_mode');
    if (mode === 'me' || mode === 'none') q.owner = mode;
    else if (mode === 'user' && ownerName.value.trim()) q.owner = ownerName.value.trim();
    const s = localInputToIso(since.value); if (s) q.since = s;
    const u = localInputToIso(until.value); if (u) q.until = u;
    if (sort.value && sort.value !== 'last_seen') q.sort = sort.value;
    if (size.value !== '50') q.limit = size.value;
    go(['events'], q);
  });
  return form;
}
