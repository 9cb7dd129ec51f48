// SPDX-License-Identifier: Apache-2.0
// The Alerts tab of an event: its alerts in the order they first occurred, with their
// count, defence, times and why each joined; a row opens the alert's handling info
// (GET /alerts/{id}: which event's handling handled it, how, by whom, when, the remark)
// and "Add to whitelist" opens the rule builder. Ticked alerts may be detached into a
// new event.

import * as api from './api.js';
import { go, href } from './router.js';
import { badge, dl, fill, h, openDialog, remarkField, showOk, table, time } from './ui.js';
import { Pager } from './common.js';
import { openRuleBuilder } from './rulebuilder.js';

const LIMIT = 50;

/** Draws the alerts of ctx.id into panel. */
export function renderAlerts(panel, ctx) {
  const pager = new Pager();
  const ticked = new Set();
  const canChange = api.canChange();
  async function load() {
    let r;
    try { r = await api.get(`/events/${encodeURIComponent(ctx.id)}/alerts` + api.qs({ limit: LIMIT, cursor: pager.cursor })); }
    catch (e) { fill(panel, h('p', { class: 'empty' }, e.message)); return; }
    if (!ctx.alive) return;
    pager.setNext(r.next_cursor);
    const detachBtn = h('button', { type: 'button', id: 'alerts-detach', disabled: ticked.size === 0 }, 'Detach into a new event…');
    detachBtn.addEventListener('click', () => detachDialog(ctx, [...ticked], () => { ticked.clear(); load(); }));
    const rows = [];
    for (const a of r.alerts) {
      const info = h('tr', { class: 'alert-info', hidden: true }, h('td', { colspan: '9' }));
      const more = h('button', { type: 'button', class: 'link alert-more', 'aria-expanded': 'false' }, 'Details');
      more.addEventListener('click', async () => {
        const open = more.getAttribute('aria-expanded') !== 'true';
        more.setAttribute('aria-expanded', String(open));
        info.hidden = !open;
        if (open && !info.dataset.loaded) {
          info.dataset.loaded = '1';
          fill(info.firstChild, h('p', { class: 'loading' }, 'Loading…'));
          try { fill(info.firstChild, alertInfo(await api.get(`/alerts/${encodeURIComponent(a.alert_id)}`, { quiet: true }))); }
          catch (e) { fill(info.firstChild, h('p', { class: 'empty' }, e.message)); delete info.dataset.loaded; }
        }
      });
      const cb = h('input', { type: 'checkbox', 'aria-label': `Select alert ${a.name}`, checked: ticked.has(a.alert_id) });
      cb.addEventListener('change', () => { if (cb.checked) ticked.add(a.alert_id); else ticked.delete(a.alert_id); detachBtn.disabled = ticked.size === 0; });
      const whitelisted = /whitelisted/.test(a.status || '');
      rows.push(h('tr', { dataset: { id: a.alert_id } },
        canChange ? h('td', { class: 'col-select' }, cb) : h('td', null),
        h('td', { class: 'col-alert' }, h('strong', null, a.name), h('div', { class: 'muted small alert-id' }, a.alert_id)),
        h('td', null, badge(a.severity, 'level')),
        h('td', { class: 'col-status' }, badge(a.status, 'status'), h('div', { class: 'muted small' }, `defence: ${a.defense || '—'}`)),
        h('td', { class: 'num col-count' }, String(a.occurrences ?? '')),
        h('td', { class: 'col-times' }, time(a.first_seen), h('br'), time(a.last_seen)),
        h('td', { class: 'reason' }, a.reason || '—'),
        h('td', null, a.asset_id || '—', h('div', { class: 'muted small' }, a.source || '')),
        h('td', { class: 'actions stacked' }, more,
          canChange && !whitelisted && a.defense !== 'precision_defense'
            ? h('button', { type: 'button', class: 'whitelist-btn', onclick: () => openRuleBuilder(a.alert_id, () => ctx.reload()) }, 'Add to whitelist…') : null)));
      rows.push(info);
    }
    // an event may be left with no alert (whitelisted alerts leave it, detached ones move):
    // a sentence, not an empty table
    if (r.total === 0 && !pager.cursor) {
      fill(panel, h('h2', { id: 'alerts-title' }, 'Alerts (0)'),
        h('p', { class: 'empty', id: 'event-alerts-empty' }, 'No alert is left in this event: whitelisted alerts leave their event, and detached ones move to a new one.'));
      return;
    }
    fill(panel,
      h('h2', { id: 'alerts-title' }, `Alerts (${r.total})`),
      canChange ? h('div', { class: 'bulk-bar' }, detachBtn) : null,
      table(['', 'Alert', 'Severity', 'Status', 'Count', 'First / last', 'Why it joined', 'Asset / source', ''], rows, { id: 'event-alerts' }),
      pager.controls(r.alerts.length, LIMIT, r.total, load, 'Alerts'));
  }
  fill(panel, h('p', { class: 'loading' }, 'Loading…'));
  load();
}

/** The handling info and events of one alert (AlertDetail). */
export function alertInfo(d) {
  const hd = d.handling;
  return h('div', { class: 'alert-detail' },
    hd ? dl([
      ['Handled by the event', h('a', { href: href(['events', hd.event_id]) }, hd.event_id)],
      ['Via', hd.via || '—'], ['By', hd.by || '—'], ['At', time(hd.at_ms)], ['Remark', hd.remark || '—'],
    ]) : h('p', { class: 'muted' }, 'Not handled yet.'),
    dl([
      ['Type', d.type || '—'], ['Source', d.source || '—'],
      ['Remote IP', d.remote_ip || '—'], ['File', (d.file && d.file.path) || '—'],
      ['Process', (d.process && (d.process.cmdline || d.process.path)) || '—'],
      ['ATT&CK', [d.attack_tactic, d.attack_technique].filter(Boolean).join(' / ') || '—'],
    ]),
    (d.events || []).length ? h('div', null, h('strong', null, 'Events: '), d.events.map((e) => h('span', { class: 'tag' },
      h('a', { href: href(['events', e.event_id]) }, e.name || e.event_id), ` — ${e.reason || ''}`))) : null,
    (d.activity || []).length ? h('ul', { class: 'small' }, d.activity.map((x) => h('li', null, time(x.at), ` ${x.actor || ''} ${x.action || ''}`, x.remark ? ` — ${x.remark}` : ''))) : null);
}

function detachDialog(ctx, ids, after) {
  const remark = remarkField();
  openDialog(`Detach ${ids.length} alert${ids.length === 1 ? '' : 's'}`, (body) => {
    body.append(h('p', null, 'The ticked alerts move out of this event into a new event.'), remark.el);
  }, [
    { label: 'Cancel' },
    {
      label: 'Detach', primary: true, onclick: async (e, close) => {
        const body = { alert_ids: ids };
        if (remark.value) body.remark = remark.value;
        const ans = await api.post(`/events/${encodeURIComponent(ctx.id)}/detach`, body, { quiet: true });
        close();
        showOk(api.describeAnswer(ans));
        const nid = ans && ans.result && (ans.result.new_event_id || ans.result.event_id);
        if (nid && nid !== ctx.id) go(['events', nid]); else after();
      },
    },
  ]);
}
