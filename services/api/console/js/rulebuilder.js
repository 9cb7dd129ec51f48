// SPDX-License-Identifier: Apache-2.0
// The whitelist rule builder opened by "Add to whitelist" on an alert: rules made from
// the alert's fields (GET /alerts/{id}/fields), each with an operator, a value and a
// scope (every asset, or only this alert's asset), as many as needed; each rule's impact
// is previewed live (POST /whitelist/rules/preview: how many of the account's alerts of
// that name it would have suppressed, on how many assets, the open events that would
// lose alerts) with the broad-rule warning, which must be acknowledged (force) before
// saving. The rules are OR-ed: an alert any one of them matches is suppressed. Saving
// whitelists the alert with its rules, all or nothing (POST /alerts/{id}/whitelist); the
// remark goes with the command and with each rule, so the rules list says why they exist.

import * as api from './api.js';
import { badge, field, h, openDialog, remarkField, select, showOk } from './ui.js';
import { localInputToIso } from './common.js';

/** A field's value as an option's label shows it: short, on one line. */
function shortValue(v) {
  const t = String(v ?? '').replace(/\s+/g, ' ');
  return t.length > 40 ? t.slice(0, 39) + '…' : t;
}

/**
 * The figures of a preview (WhitelistPreview) as the page shows them: what the rule would
 * have suppressed over the window, the broad-rule warning when the filter would refuse it
 * without force, and the open events that would lose alerts. Shared by the builder and
 * the Whitelist rules page so both read the same.
 */
export function previewView(p) {
  const pct = `${((p.share || 0) * 100).toFixed(1)} %`;
  return [
    h('p', { class: 'preview-line' }, `Over the last ${p.days} days it would have suppressed `,
      h('strong', { class: 'preview-matched' }, String(p.matched)), ` of ${p.considered} alerts of this name (${pct}) on ${p.assets} asset${p.assets === 1 ? '' : 's'}.`,
      p.regex_aborted ? ` ${p.regex_aborted} regex evaluations were aborted.` : ''),
    p.broad || p.needs_force ? h('p', { class: 'warning broad-warning', role: 'alert' }, '⚠ Broad rule: ', p.broad || 'it matches a large share of the alerts.') : null,
    (p.open_events || []).length ? h('div', { class: 'preview-events' }, 'Open events that would lose alerts: ',
      h('ul', null, p.open_events.map((e) => h('li', null, e.name, ' ', badge(e.status, 'status'), ` (${e.alerts})`)))) : null,
  ];
}

const OPS = [['eq', 'equals'], ['contains', 'contains'], ['startswith', 'starts with'], ['regex', 'matches regex'], ['gt', 'greater than'], ['lt', 'less than']];

/** Opens the builder for alert (an EventAlert or AlertSummary); after() is called once saved. */
export async function openRuleBuilder(alertId, after) {
  let f;
  try { f = await api.get(`/alerts/${encodeURIComponent(alertId)}/fields`); } catch (e) { return; }
  const fields = f.fields || [];
  const rules = [];
  const list = h('div', { class: 'rules', id: 'rule-list' });
  const remark = remarkField();
  const expires = h('input', { type: 'datetime-local', id: 'rule-expires', name: 'expires' });

  function addRule(initial) {
    const first = initial || fields.find((x) => x.field === 'file.path') || fields.find((x) => x.field === 'process.path') || fields.find((x) => x.field === 'remote_ip') || fields[0];
    // each field with this alert's value (picking one puts the value in Value), so the
    // analyst sees what to match on; the value typed may differ from it
    const fieldSel = select(fields.map((x) => [x.field, `${x.field} (this alert: ${shortValue(x.value)})`]), first ? first.field : '', { class: 'rule-field' });
    const opSel = select(OPS, 'eq', { class: 'rule-op' });
    const value = h('input', { class: 'rule-value', value: first ? first.value : '', maxlength: 4096 });
    const scope = select([['all', 'Every asset'], ['asset', `Only asset ${f.asset_id || ''}`]], 'all', { class: 'rule-scope' });
    const force = h('input', { type: 'checkbox', class: 'rule-force' });
    const forceBox = h('label', { class: 'check force', hidden: true }, force, ' I understand it is broad: create it anyway');
    const preview = h('div', { class: 'rule-preview', 'aria-live': 'polite' }, h('span', { class: 'muted' }, 'Preview…'));
    const remove = h('button', { type: 'button', class: 'link rule-remove' }, 'Remove this rule');
    const box = h('fieldset', { class: 'rule' }, h('legend', null, legend(rules.length)),
      h('div', { class: 'rule-grid' }, field('Field', fieldSel), field('Operator', opSel), field('Value', value), field('Scope', scope)),
      forceBox, preview, remove);
    const rule = { fieldSel, opSel, value, scope, force, forceBox, preview, box, timer: null, seq: 0, needsForce: false };
    const syncOps = () => {
      const fd = fields.find((x) => x.field === fieldSel.value);
      for (const o of opSel.options) o.disabled = (o.value === 'gt' || o.value === 'lt') && !(fd && fd.number);
      if (opSel.selectedOptions[0] && opSel.selectedOptions[0].disabled) opSel.value = 'eq';
    };
    fieldSel.addEventListener('change', () => { const fd = fields.find((x) => x.field === fieldSel.value); if (fd) value.value = fd.value; syncOps(); schedule(rule); });
    for (const c of [opSel, scope]) c.addEventListener('change', () => schedule(rule));
    value.addEventListener('input', () => schedule(rule));
    remove.addEventListener('click', () => { clearTimeout(rule.timer); rule.seq++; rules.splice(rules.indexOf(rule), 1); box.remove(); renumber(); });
    syncOps();
    rules.push(rule);
    list.append(box);
    schedule(rule, 0);
  }
  // the rules are OR-ed: the second and later say so
  function legend(i) { return i === 0 ? 'Rule 1' : `or rule ${i + 1}`; }
  function renumber() { rules.forEach((r, i) => { r.box.querySelector('legend').textContent = legend(i); }); }

  function ruleBody(r) {
    const b = { alert_name: f.alert_name, field: r.fieldSel.value, op: r.opSel.value, value: r.value.value, scope: r.scope.value };
    const exp = localInputToIso(expires.value);
    if (exp) b.expires_at = exp;
    return b;
  }
  let open = true;
  function schedule(r, delay = 400) {
    clearTimeout(r.timer);
    if (open) r.timer = setTimeout(() => runPreview(r), delay);
  }
  async function runPreview(r) {
    const seq = ++r.seq;
    const body = { ...ruleBody(r), account_id: f.account_id, from_alert_id: f.alert_id };
    if (body.scope === 'asset' && f.asset_id) body.asset_id = f.asset_id;
    if (!body.value) { r.preview.replaceChildren(h('span', { class: 'muted' }, 'Give a value.')); return; }
    let p;
    try { p = await api.post('/whitelist/rules/preview', body, { quiet: true }); }
    catch (e) { if (seq === r.seq) r.preview.replaceChildren(h('span', { class: 'form-error' }, e.message)); return; }
    if (seq !== r.seq) return;
    r.needsForce = !!p.needs_force;
    r.forceBox.hidden = !p.needs_force;
    if (!p.needs_force) r.force.checked = false;
    r.preview.replaceChildren(...previewView(p).filter(Boolean));
  }

  const addBtn = h('button', { type: 'button', id: 'rule-add' }, 'Add a rule');
  addBtn.addEventListener('click', () => addRule());
  const intro = h('p', null, `Whitelists alert ${f.alert_id} (`, h('strong', null, f.alert_name), `, account ${f.account_id}). `,
    'Rules made from it suppress its later occurrences and alerts like it: an alert of this name that any one rule matches. Leave none to whitelist only this alert.');
  expires.addEventListener('change', () => rules.forEach((r) => schedule(r)));
  const { dialog } = openDialog('Add to whitelist', (body) => {
    body.append(intro, list, addBtn, field('Rules expire at (optional)', expires), remark.el);
    if (fields.length) addRule();
  }, [
    { label: 'Cancel' },
    {
      label: 'Whitelist', primary: true, onclick: async (e, close) => {
        for (const [i, r] of rules.entries()) {
          if (!r.value.value) throw new Error(`Rule ${i + 1} has no value.`);
          if (r.needsForce && !r.force.checked) throw new Error(`Rule ${i + 1} is broad: tick the box to create it anyway, or narrow it.`);
        }
        const body = {
          rules: rules.map((r) => {
            const b = ruleBody(r);
            if (r.force.checked) b.force = true;
            if (remark.value) b.remark = remark.value;
            return b;
          }),
        };
        if (body.rules.length === 0) delete body.rules;
        if (remark.value) body.remark = remark.value;
        let ans;
        try { ans = await api.post(`/alerts/${encodeURIComponent(f.alert_id)}/whitelist`, body, { quiet: true }); }
        catch (ex) {
          // the filter's sentence names the rule already ("rule 2 of 3: ..."); result.rule_index
          // is that rule, counted from 1: mark its box
          const idx = ex.problem && ex.problem.result && ex.problem.result.rule_index;
          rules.forEach((r, i) => r.box.classList.toggle('rule-refused', i + 1 === idx));
          if (typeof idx === 'number' && rules[idx - 1]) rules[idx - 1].box.scrollIntoView({ block: 'nearest' });
          throw ex;
        }
        close();
        showOk(api.describeAnswer(ans));
        if (after) after();
      },
    },
  ], { wide: true });
  // closed (saved, cancelled, Escape): no preview is asked for any more
  dialog.addEventListener('close', () => { open = false; rules.forEach((r) => clearTimeout(r.timer)); });
}
