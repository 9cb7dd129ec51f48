// SPDX-License-Identifier: Apache-2.0
// The Alerts page: the alerts of the caller's accounts, newest first, with the "Handled
// or Not" filter, status, severity, name, type, asset and account; whitelisted alerts
// may be ticked and taken out of the whitelist together (all or nothing; the API names
// each alert that could not be), and any alert may be whitelisted with the rule builder.

import * as api from './api.js';
import { go, href } from './router.js';
import { badge, field, fill, h, openDialog, remarkField, select, showOk, table, time } from './ui.js';
import { accounts, LEVELS, Pager } from './common.js';
import { alertInfo } from './alerttab.js';
import { openRuleBuilder } from './rulebuilder.js';

const KEYS = ['handled', 'status', 'severity', 'name', 'type', 'asset', 'account', 'event', 'since', 'until'];
const STATUSES = ['unhandled', 'handling', 'handled', 'manually_whitelisted', 'automatically_whitelisted'];
const LIMIT = 50;

export function render(main, route) {
  const f = {};
  for (const k of KEYS) { const v = route.query.get(k); if (v) f[k] = v; }
  const pager = new Pager();
  const ticked = new Map();
  let alive = true;
  const listEl = h('div', { class: 'list-area', id: 'alerts-list' });
  const bar = h('div', { class: 'bulk-bar' });

  const handled = select([['', 'Either'], ['no', 'Not handled'], ['yes', 'Handled or whitelisted']], f.handled || '', { name: 'handled', id: 'alerts-handled' });
  const status = select([['', 'Any status'], ...STATUSES.map((x) => [x, x.replace(/_/g, ' ')])], f.status || '', { name: 'status', id: 'alerts-status' });
  const severity = select([['', 'Any severity'], ...LEVELS.map((x) => [x, x])], f.severity || '', { name: 'severity', id: 'alerts-severity' });
  const name = h('input', { name: 'name', id: 'alerts-name', value: f.name || '', maxlength: 512 });
  const type = h('input', { name: 'type', id: 'alerts-type', value: f.type || '', maxlength: 512 });
  const asset = h('input', { name: 'asset', id: 'alerts-asset', value: f.asset || '', maxlength: 512 });
  const account = select([['', 'Every account']], '', { name: 'account', id: 'alerts-account' });
  accounts().then((a) => { for (const x of a.accounts) account.append(h('option', { value: x }, x)); account.value = f.account || ''; });
  const form = h('form', { class: 'filter-form', role: 'search', 'aria-label': 'Alert filters' },
    h('div', { class: 'filter-grid' }, field('Handled or not', handled), field('Status', status), field('Severity', severity),
      field('Alert name (exact)', name), field('Type (exact)', type), field('Asset id', asset), field('Account', account)),
    h('div', { class: 'form-buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Apply filters'), h('a', { href: '#/alerts', class: 'button-like' }, 'Reset')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = { ...f };
    for (const [k, c] of Object.entries({ handled, status, severity, name, type, asset, account })) { const v = c.value.trim(); if (v) q[k] = v; else delete q[k]; }
    go(['alerts'], q);
  });
  fill(main, h('h1', null, 'Alerts'), h('details', { class: 'filters', open: true }, h('summary', null, 'Filters'), form), bar, listEl);

  function drawBar() {
    if (!api.canChange()) return;
    const n = ticked.size;
    fill(bar, h('span', { class: 'bulk-count', 'aria-live': 'polite' }, `${n} selected`),
      h('button', { type: 'button', id: 'alerts-unwhitelist', disabled: n === 0, onclick: unwhitelist }, 'Remove from whitelist…'));
  }
  function unwhitelist() {
    const ids = [...ticked.keys()];
    const remark = remarkField();
    openDialog(`Remove ${ids.length} alert${ids.length === 1 ? '' : 's'} from the whitelist`, (body) => {
      body.append(h('p', null, 'They go back to unhandled and join a security event again.'), remark.el);
    }, [
      { label: 'Cancel' },
      {
        label: 'Remove', primary: true, onclick: async (e, close, err) => {
          const body = { ids };
          if (remark.value) body.remark = remark.value;
          try {
            const ans = await api.post('/alerts/_bulk/unwhitelist', body, { quiet: true });
            close(); showOk(api.describeAnswer(ans)); ticked.clear(); drawBar(); load();
          } catch (ex) {
            const items = (ex.problem && ex.problem.items) || [];
            const bad = items.filter((i) => i.status && i.status !== 200);
            err.replaceChildren(ex.message, bad.length ? h('ul', null, bad.map((i) => h('li', null, `${ticked.get(i.id) || i.id}: ${i.detail || i.code}`))) : '');
            err.hidden = false;
          }
        },
      },
    ]);
  }

  async function load() {
    let r;
    try { r = await api.get('/alerts' + api.qs({ ...f, limit: LIMIT, cursor: pager.cursor })); }
    catch (e) { if (alive) fill(listEl, h('p', { class: 'empty' }, e.message)); return; }
    if (!alive) return;
    pager.setNext(r.next_cursor);
    const can = api.canChange();
    const rows = [];
    for (const a of r.alerts) {
      const wl = /whitelisted/.test(a.status);
      // alerts of one name look alike: the id tells them apart (label, failures, the row)
      const cb = h('input', { type: 'checkbox', 'aria-label': `Select ${a.name} (${a.alert_id})`, checked: ticked.has(a.alert_id), disabled: !wl });
      cb.addEventListener('change', () => { if (cb.checked) ticked.set(a.alert_id, `${a.name} (${a.alert_id})`); else ticked.delete(a.alert_id); drawBar(); });
      const info = h('tr', { class: 'alert-info', hidden: true }, h('td', { colspan: '9' }));
      const more = h('button', { type: 'button', class: 'link', 'aria-expanded': 'false' }, 'Details');
      more.addEventListener('click', async () => {
        const open = more.getAttribute('aria-expanded') !== 'true';
        more.setAttribute('aria-expanded', String(open)); info.hidden = !open;
        if (open) { try { fill(info.firstChild, alertInfo(await api.get(`/alerts/${encodeURIComponent(a.alert_id)}`, { quiet: true }))); } catch (e) { fill(info.firstChild, e.message); } }
      });
      rows.push(h('tr', { dataset: { id: a.alert_id } },
        h('td', { class: 'col-select' }, can ? cb : null),
        h('td', { class: 'col-alert' }, h('strong', null, a.name), h('div', { class: 'muted small' }, a.type, ' · ', h('span', { class: 'alert-id' }, a.alert_id))),
        h('td', null, badge(a.severity, 'level')), h('td', { class: 'col-status' }, badge(a.status, 'status')),
        h('td', null, a.defense), h('td', { class: 'num col-count' }, String(a.occurrences)),
        h('td', null, a.asset_name || a.asset_id, h('div', { class: 'muted small' }, a.account_id)),
        h('td', null, time(a.last_seen)),
        h('td', { class: 'actions' }, more, can && !wl && a.defense !== 'precision_defense'
          ? h('button', { type: 'button', onclick: () => openRuleBuilder(a.alert_id, load) }, 'Add to whitelist…') : null)));
      rows.push(info);
    }
    fill(listEl, r.alerts.length ? table(['', 'Alert', 'Severity', 'Status', 'Defence', 'Count', 'Asset', 'Last seen', ''], rows, { id: 'alerts-table' })
      : h('p', { class: 'empty' }, 'No alert matches these filters.'), pager.controls(r.alerts.length, LIMIT, r.total, load, 'Alerts'));
  }
  drawBar();
  load();
  return () => { alive = false; };
}

export { href };
