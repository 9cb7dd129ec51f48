// SPDX-License-Identifier: Apache-2.0
// The Whitelist rules page: the rules of the caller's accounts with their hit counts and
// expiry (deleted ones on request), each rule's impact preview as of now, deleting a rule
// (with a remark; it affects future alerts only), and previewing a rule typed by hand
// before anyone creates it.

import * as api from './api.js';
import { go } from './router.js';
import { badge, clip, field, fill, h, openDialog, remarkField, select, showOk, table, time } from './ui.js';
import { accounts, Pager } from './common.js';
import { previewView } from './rulebuilder.js';

const LIMIT = 50;

export function render(main, route) {
  const f = { alert_name: route.query.get('alert_name') || '', account: route.query.get('account') || '', all: route.query.get('all') || '' };
  const pager = new Pager();
  let alive = true;
  const listEl = h('div', { class: 'list-area', id: 'rules-list' });
  const nameIn = h('input', { name: 'alert_name', value: f.alert_name });
  const acc = select([['', 'Every account']], '', { name: 'account' });
  accounts().then((a) => { for (const x of a.accounts) acc.append(h('option', { value: x }, x)); acc.value = f.account; });
  const all = h('input', { type: 'checkbox', name: 'all', checked: f.all === 'true', id: 'rules-all' });
  const form = h('form', { class: 'filter-form', role: 'search', 'aria-label': 'Rule filters' },
    h('div', { class: 'filter-grid' }, field('Alert name', nameIn), field('Account', acc),
      h('div', { class: 'field' }, h('label', { class: 'check', for: 'rules-all' }, all, ' Deleted rules too'))),
    h('div', { class: 'form-buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Apply filters'),
      api.canChange() ? h('button', { type: 'button', onclick: previewDialog }, 'Preview a rule…') : null));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go(['whitelist'], { alert_name: nameIn.value.trim(), account: acc.value, all: all.checked ? 'true' : '' });
  });
  fill(main, h('h1', null, 'Whitelist rules'), form, listEl);

  async function load() {
    let r;
    try { r = await api.get('/whitelist/rules' + api.qs({ ...f, limit: LIMIT, cursor: pager.cursor })); }
    catch (e) { if (alive) fill(listEl, h('p', { class: 'empty' }, e.message)); return; }
    if (!alive) return;
    pager.setNext(r.next_cursor);
    const rows = r.rules.map((x) => h('tr', { dataset: { id: String(x.rule_id) }, class: x.deleted_at ? 'deleted' : null },
      h('td', { class: 'num' }, String(x.rule_id)), h('td', null, x.alert_name),
      h('td', null, h('code', null, x.field), ' ', x.op, ' ', h('code', null, clip(x.value, 60))),
      h('td', null, x.scope === 'asset' ? `asset ${x.asset_id}` : 'every asset'),
      h('td', null, x.account_id || '—'),
      h('td', { class: 'num col-hits' }, String(x.hits ?? 0)), h('td', { class: 'col-last-hit' }, time(x.last_hit_at)),
      h('td', { class: 'col-expires' }, x.expires_at ? [time(x.expires_at), x.expired ? ' ' : null, x.expired ? badge('expired', 'state') : null] : 'never'),
      h('td', { class: 'col-created' }, x.created_by || '', ' ', time(x.created_at), x.remark ? h('div', { class: 'muted small' }, clip(x.remark, 80)) : null),
      h('td', { class: 'actions stacked' }, x.deleted_at ? ['deleted ', time(x.deleted_at)] : (api.canChange()
        ? [h('button', { type: 'button', class: 'rule-preview-btn', 'aria-label': `Preview rule ${x.rule_id}`, onclick: () => previewRule(x) }, 'Preview'),
          h('button', { type: 'button', class: 'danger rule-delete-btn', 'aria-label': `Delete rule ${x.rule_id}`, onclick: () => del(x) }, 'Delete…')] : null))));
    fill(listEl, r.rules.length ? table(['Id', 'Alert name', 'Condition', 'Scope', 'Account', 'Hits', 'Last hit', 'Expires', 'Created', ''], rows, { id: 'rules-table' })
      : h('p', { class: 'empty' }, 'No rule.'), pager.controls(r.rules.length, LIMIT, r.total, load, 'Rules'));
  }
  function del(rule) {
    const remark = remarkField();
    openDialog(`Delete rule ${rule.rule_id}`, (body) => body.append(
      h('p', null, h('code', null, rule.alert_name), ': ', h('code', null, rule.field), ` ${rule.op} `, h('code', null, clip(rule.value, 60))),
      h('p', { class: 'delete-note' }, 'Deleting it affects future alerts only: the alerts it suppressed keep their status (whitelisted) until they occur again.'),
      remark.el), [
      { label: 'Cancel' },
      {
        label: 'Delete', primary: true, onclick: async (e, close) => {
          const ans = await api.api('DELETE', `/whitelist/rules/${rule.rule_id}`, remark.value ? { remark: remark.value } : {}, { quiet: true });
          close(); showOk(api.describeAnswer(ans)); load();
        },
      },
    ]);
  }
  load();
  return () => { alive = false; };
}

/** The impact a listed rule would have over the stored alerts as of now (its account,
 * name, condition and scope), in a dialog; read-only. */
function previewRule(rule) {
  const out = h('div', { class: 'rule-preview', 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Loading…'));
  openDialog(`Preview of rule ${rule.rule_id}`, (body) => body.append(
    h('p', null, h('code', null, rule.alert_name), ': ', h('code', null, rule.field), ` ${rule.op} `, h('code', null, clip(rule.value, 60)),
      rule.scope === 'asset' ? ` (asset ${rule.asset_id})` : ' (every asset)'), out), [{ label: 'Close' }]);
  const q = { account_id: rule.account_id, alert_name: rule.alert_name, field: rule.field, op: rule.op, value: rule.value, scope: rule.scope };
  if (rule.scope === 'asset' && rule.asset_id) q.asset_id = rule.asset_id;
  api.post('/whitelist/rules/preview', q, { quiet: true })
    .then((p) => fill(out, previewView(p)))
    .catch((e) => fill(out, h('p', { class: 'form-error' }, e.message)));
}

/** A preview of a rule typed by hand (account, alert name, field, operator, value). */
function previewDialog() {
  const acc = select([], '', { name: 'account_id' });
  accounts().then((a) => { for (const x of a.accounts) acc.append(h('option', { value: x }, x)); });
  const name = h('input', { name: 'alert_name', required: true });
  const fld = h('input', { name: 'field', required: true, placeholder: 'file.path' });
  const op = select(['eq', 'contains', 'startswith', 'regex', 'gt', 'lt'], 'eq', { name: 'op' });
  const val = h('input', { name: 'value', required: true });
  const out = h('div', { class: 'rule-preview', 'aria-live': 'polite' });
  openDialog('Preview a rule', (body) => body.append(field('Account', acc), field('Alert name', name), field('Field', fld), field('Operator', op), field('Value', val), out), [
    { label: 'Close' },
    {
      label: 'Preview', primary: true, onclick: async () => {
        const p = await api.post('/whitelist/rules/preview', { account_id: acc.value, alert_name: name.value, field: fld.value, op: op.value, value: val.value }, { quiet: true });
        fill(out, previewView(p));
      },
    },
  ]);
}
