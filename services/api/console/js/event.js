// SPDX-License-Identifier: Apache-2.0
// One security event: its header (name, level, urgency, status, owner and the changes an
// analyst may make, each with an optional remark and the event's version as If-Match)
// and its tabs: Overview, Chain, Entities, Alerts, Response activity, Activity log. The
// tab is the third segment of the address (#/events/ev-…/entities?entity=ip:1.2.3.4).

import * as api from './api.js';
import { go, href } from './router.js';
import { badge, dl, duration, field, fill, h, openDialog, remarkField, select, showOk, table, time } from './ui.js';
import { LEVELS } from './common.js';
import { renderChain } from './chain.js';
import { renderEntities } from './entity.js';
import { renderAlerts } from './alerttab.js';

const TABS = [
  ['overview', 'Overview'], ['chain', 'Chain'], ['entities', 'Entities'],
  ['alerts', 'Alerts'], ['response', 'Response activity'], ['log', 'Activity log'],
];

/** Draws the event of route.path[1], tab route.path[2]. */
export function render(main, route) {
  const id = route.path[1];
  const tab = TABS.some(([t]) => t === route.path[2]) ? route.path[2] : 'overview';
  const head = h('div', { class: 'event-head', id: 'event-head' }, h('h1', null, 'Security event'), h('p', { class: 'muted' }, id));
  const panel = h('section', { class: 'tab-panel', id: 'tab-panel', 'aria-labelledby': `tab-${tab}` });
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Event sections' },
    TABS.map(([t, label]) => h('a', {
      id: `tab-${t}`, href: href(['events', id, t]), class: 'tab', 'aria-current': t === tab ? 'page' : null,
    }, label)));
  fill(main, h('p', { class: 'crumbs' }, h('a', { href: '#/events' }, '← Security events')), head, tabs, panel);
  const ctx = { id, event: null, alive: true, reload: null, route };

  async function load() {
    let ev;
    try { ev = await api.get('/events/' + encodeURIComponent(id)); }
    catch (e) {
      if (ctx.alive) fill(head, h('h1', null, 'Security event'), h('p', { class: 'empty' }, e.message));
      return null;
    }
    if (!ctx.alive) return null;
    ctx.event = ev;
    drawHead(head, ev, ctx);
    return ev;
  }
  ctx.reload = async () => { const ev = await load(); if (ev) drawTab(); };
  function drawTab() {
    const ev = ctx.event;
    if (tab === 'overview') drawOverview(panel, ev);
    else if (tab === 'chain') renderChain(panel, ctx);
    else if (tab === 'entities') renderEntities(panel, ctx);
    else if (tab === 'alerts') renderAlerts(panel, ctx);
    else if (tab === 'response') drawResponse(panel, ctx);
    else if (tab === 'log') drawLog(panel, ctx);
  }
  fill(panel, h('p', { class: 'loading' }, 'Loading…'));
  load().then((ev) => { if (ev) drawTab(); });

  // The event changes without the analyst: tasks finish (handling -> handled or failed),
  // alerts join, a colleague acts. While the page is shown, its header follows the API
  // every few seconds; the Response activity tab, which holds no form, follows too. Other
  // tabs are redrawn only by the analyst (a tick or a half-read table is not pulled away).
  let timer = null;
  const watch = async () => {
    timer = null;
    if (!ctx.alive) return;
    if (document.visibilityState === 'visible' && ctx.event) {
      try {
        const ev = await api.get('/events/' + encodeURIComponent(id), { quiet: true, background: true });
        if (ctx.alive && ev.version !== ctx.event.version) {
          ctx.event = ev;
          drawHead(head, ev, ctx);
          if (tab === 'response') drawResponse(panel, ctx, true);
        }
      } catch (e) { /* shown on the next action; a refresh is no place for a banner */ }
    }
    if (ctx.alive) timer = setTimeout(watch, WATCH_MS);
  };
  timer = setTimeout(watch, WATCH_MS);
  return () => { ctx.alive = false; if (timer !== null) clearTimeout(timer); };
}

const WATCH_MS = 3000;

function drawHead(head, ev, ctx) {
  const can = api.canChange() && ev.status !== 'merged';
  fill(head,
    h('h1', { id: 'event-name' }, ev.name),
    h('div', { class: 'event-badges' },
      h('span', null, 'Level ', badge(ev.level, 'level')),
      h('span', null, 'Urgency ', badge(ev.urgency, 'urgency'), ev.quiet ? h('small', { class: 'quiet' }, ` quiet (assessed ${ev.assessed_urgency})`) : null),
      h('span', { id: 'event-status' }, 'Status ', badge(ev.status, 'status')),
      h('span', { id: 'event-owner' }, 'Owner ', ev.owner ? h('strong', null, ev.owner) : h('span', { class: 'muted' }, 'unassigned')),
      h('span', { class: 'muted' }, ev.event_id),
      ev.merged_into ? h('span', null, 'Merged into ', h('a', { href: href(['events', ev.merged_into]) }, ev.merged_into)) : null),
    can ? h('div', { class: 'event-actions', id: 'event-actions' },
      h('button', { type: 'button', id: 'act-status', onclick: () => changeDialog(ctx, 'status') }, 'Set status…'),
      h('button', { type: 'button', id: 'act-owner', onclick: () => changeDialog(ctx, 'owner') }, 'Set owner…'),
      h('button', { type: 'button', id: 'act-level', onclick: () => changeDialog(ctx, 'level') }, 'Set level…'),
      h('button', { type: 'button', id: 'act-remark', onclick: () => changeDialog(ctx, 'remark') }, 'Add remark…'))
      : null);
}

/** A dialog for one change of the event (status, owner, level, remark), sent with If-Match. */
function changeDialog(ctx, kind) {
  const ev = ctx.event;
  const me = api.currentUser();
  let control = null;
  if (kind === 'status') control = select(['unhandled', 'handling', 'handled'], ev.status === 'unhandled' ? 'handling' : 'handled', { name: 'status' });
  if (kind === 'level') control = select(LEVELS, ev.level, { name: 'level' });
  if (kind === 'owner') control = h('input', { name: 'owner', maxlength: 64, value: ev.owner || me.user, list: 'owner-choices' });
  const remark = kind === 'remark' ? null : remarkField();
  const remarkOnly = kind === 'remark' ? h('textarea', { rows: 3, maxlength: 4000, required: true, name: 'remark' }) : null;
  openDialog(kind === 'remark' ? 'Add a remark' : `Set the event's ${kind}`, (body) => {
    if (control) body.append(field(kind[0].toUpperCase() + kind.slice(1), control));
    if (kind === 'owner') body.append(h('datalist', { id: 'owner-choices' }, h('option', { value: me.user })));
    if (remark) body.append(remark.el);
    if (remarkOnly) body.append(field('Remark', remarkOnly));
  }, [
    { label: 'Cancel' },
    {
      label: 'Save', primary: true, onclick: async (e, close) => {
        const body = {};
        if (control) { const v = control.value.trim(); if (!v) throw new Error(`Enter the ${kind}.`); body[kind] = v; }
        if (remark && remark.value) body.remark = remark.value;
        if (remarkOnly) { if (!remarkOnly.value.trim()) throw new Error('Write the remark.'); body.remark = remarkOnly.value.trim(); }
        try {
          const ans = await api.post(`/events/${encodeURIComponent(ev.event_id)}/${kind}`, body, { quiet: true, ifMatch: ev.version });
          close();
          showOk(api.describeAnswer(ans));
        } catch (ex) {
          if (ex.code === 'precondition_failed') { ctx.reload(); }
          throw ex;
        }
        ctx.reload();
      },
    },
  ]);
}

function drawOverview(panel, ev) {
  const a = ev.assessment || {};
  const reasons = a.reasons || [];
  fill(panel,
    h('div', { class: 'overview-grid' },
      h('section', { class: 'card' }, h('h2', null, 'Facts'),
        dl([
          ['Account', ev.account_id],
          ['Alerts', String(ev.alert_count)],
          ['Occurrences', String(ev.occurrences ?? '—')],
          ['Affected assets', String(ev.asset_count)],
          ['First seen', time(ev.first_seen)],
          ['Last seen', time(ev.last_seen)],
          ['Quiet for', duration(ev.quiet_for_s)],
          ['Sources', (ev.sources || []).length ? h('span', null, (ev.sources || []).map((x) => h('span', { class: 'tag' }, x))) : '—'],
          ['Updated', time(ev.updated_at)],
          ['Version', String(ev.version ?? '')],
          ev.predecessor ? ['Predecessor', h('a', { href: href(['events', ev.predecessor]) }, ev.predecessor)] : null,
          ev.in_event_list === false ? ['Retention', 'Older than the retention: not in the event list.'] : null,
        ].filter(Boolean))),
      h('section', { class: 'card' }, h('h2', null, 'ATT&CK stages'),
        (ev.tactics || []).length
          ? h('ol', { class: 'stages', id: 'stages' }, ev.tactics.map((t) => h('li', null, h('strong', null, t.name || t.id), ' ', h('span', { class: 'muted' }, t.id))))
          : h('p', { class: 'muted' }, 'No stage.')),
      h('section', { class: 'card card-wide' }, h('h2', null, 'Urgency'),
        h('p', null, 'Urgency now ', badge(ev.urgency, 'urgency'), ' — assessed ', badge(ev.assessed_urgency, 'urgency'),
          a.assessed_at ? [' at ', time(a.assessed_at)] : null),
        reasons.length ? h('ul', { class: 'reasons', id: 'reasons' }, reasons.map((r) => h('li', { class: r.at_read ? 'reason-read' : null },
          h('code', null, r.code), ' ', r.text, r.at_read ? h('small', { class: 'muted' }, ' (as read now)') : null)))
          : h('p', { class: 'muted' }, 'No reason recorded.'),
        (a.recommendations || []).length ? [h('h3', null, 'Recommendations'),
          h('ul', null, a.recommendations.map((r) => h('li', null, h('strong', null, r.action), ' on ',
            h('a', { href: href(['events', ev.event_id, 'entities'], { entity: `${r.entity_type}:${r.entity_value}` }) }, `${r.entity_type}:${r.entity_value}`),
            r.reason ? ` — ${r.reason}` : '')))] : null),
      h('section', { class: 'card card-wide', id: 'affected-assets' }, h('h2', null, 'Affected assets'), h('p', { class: 'loading' }, 'Loading…')),
      h('section', { class: 'card card-wide', id: 'overview-alerts' }, h('h2', null, 'Alerts'), h('p', { class: 'loading' }, 'Loading…'))));
  const base = '/events/' + encodeURIComponent(ev.event_id);
  api.get(base + '/entities?affected=1', { quiet: true }).then((r) => {
    const box = panel.querySelector('#affected-assets');
    if (!box) return;
    fill(box, h('h2', null, 'Affected assets'), r.entities.length ? table(['Asset', 'Name', 'IP', 'Role', 'Alerts', 'Last seen'],
      r.entities.map((en) => h('tr', null,
        h('td', null, h('a', { href: href(['events', ev.event_id, 'entities'], { entity: `host:${en.value}` }) }, en.value)),
        h('td', null, (en.asset && en.asset.name) || '—'),
        h('td', null, [en.asset && en.asset.ip, en.asset && en.asset.public_ip].filter(Boolean).join(', ') || '—'),
        h('td', null, (en.asset && en.asset.role) || '—'),
        h('td', { class: 'num' }, String(en.event_alerts ?? '')),
        h('td', null, time(en.last_seen))))) : h('p', { class: 'muted' }, 'No asset.'));
  }).catch((e) => { const box = panel.querySelector('#affected-assets'); if (box) fill(box, h('h2', null, 'Affected assets'), h('p', { class: 'empty' }, e.message)); });
  api.get(base + '/alerts?limit=10', { quiet: true }).then((r) => {
    const box = panel.querySelector('#overview-alerts');
    if (!box) return;
    fill(box, h('h2', null, `Alerts (${r.total})`), table(['Name', 'Severity', 'Status', 'Asset', 'Last seen'],
      r.alerts.map((al) => h('tr', null, h('td', null, al.name), h('td', null, badge(al.severity, 'level')),
        h('td', null, badge(al.status, 'status')), h('td', null, al.asset_id || '—'), h('td', null, time(al.last_seen))))),
      r.total > r.alerts.length ? h('p', null, h('a', { href: href(['events', ev.event_id, 'alerts']) }, `All ${r.total} alerts`)) : null);
  }).catch((e) => { const box = panel.querySelector('#overview-alerts'); if (box) fill(box, h('h2', null, 'Alerts'), h('p', { class: 'empty' }, e.message)); });
}

/** The event's policies and playbook runs with their tasks; active or failed ones may be cancelled. */
export async function drawResponse(panel, ctx, refresh = false) {
  if (!refresh) fill(panel, h('p', { class: 'loading' }, 'Loading…'));
  let r;
  try { r = await api.get(`/events/${encodeURIComponent(ctx.id)}/policies`, refresh ? { quiet: true, background: true } : undefined); }
  catch (e) { if (!refresh) fill(panel, h('p', { class: 'empty' }, e.message)); return; }
  if (!ctx.alive) return;
  const pols = r.policies || [];
  fill(panel, h('h2', null, 'Response activity'),
    pols.length === 0 ? h('p', { class: 'muted' }, 'No policy or playbook has been applied to this event.')
      : pols.map((p) => policyCard(p, () => drawResponse(panel, ctx))));
}

/** One policy with its tasks and, for an active or failed one, a Cancel button. */
export function policyCard(p, after) {
  const canCancel = api.canChange() && (p.state === 'active' || p.state === 'failed');
  return h('section', { class: 'card policy', dataset: { id: p.policy_id } },
    h('h3', null, `${p.kind === 'playbook' ? 'Playbook' : 'Policy'} ${p.name || ''} on ${p.entity_type}:${p.entity_value}`),
    dl([
      ['State', badge(p.state, 'state')],
      ['Asset', p.asset_id || '—'],
      ['Destination account', p.dest_account || p.account_id || '—'],
      ['Target status', p.target_status || '—'],
      ['Valid until', time(p.valid_until)],
      ['By', `${p.created_by || '—'}`], ['At', time(p.created_at)],
      p.reason ? ['Reason', p.reason] : null,
    ].filter(Boolean)),
    (p.tasks || []).length ? table(['Step', 'Kind', 'Action', 'State', 'Attempt', 'Reason', 'Finished'],
      p.tasks.map((t) => h('tr', null, h('td', { class: 'num' }, String(t.step ?? '')), h('td', null, t.kind), h('td', null, t.action),
        h('td', null, badge(t.state, 'state')), h('td', null, `${t.attempt ?? ''}/${t.max_attempts ?? ''}`),
        h('td', null, t.reason || ''), h('td', null, time(t.finished_at))))) : null,
    canCancel ? h('button', { type: 'button', class: 'danger cancel-policy', onclick: () => cancelDialog(p, after) }, 'Cancel policy…') : null);
}

function cancelDialog(p, after) {
  const remark = remarkField();
  openDialog('Cancel the policy', (body) => {
    body.append(h('p', null, 'Its lease ends now and its actions are rolled back.'), remark.el);
  }, [
    { label: 'Keep it' },
    {
      label: 'Cancel policy', primary: true, onclick: async (e, close) => {
        const ans = await api.post(`/policies/${encodeURIComponent(p.policy_id)}/cancel`, remark.value ? { remark: remark.value } : {}, { quiet: true });
        close(); showOk(api.describeAnswer(ans)); after();
      },
    },
  ]);
}

function fmtJson(v) {
  if (v === null || v === undefined) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

async function drawLog(panel, ctx) {
  fill(panel, h('p', { class: 'loading' }, 'Loading…'));
  let r;
  try { r = await api.get(`/events/${encodeURIComponent(ctx.id)}/log`); }
  catch (e) { fill(panel, h('p', { class: 'empty' }, e.message)); return; }
  if (!ctx.alive) return;
  const log = r.log || [];
  fill(panel, h('h2', null, 'Activity log'),
    log.length === 0 ? h('p', { class: 'muted' }, 'Nothing logged.')
      : table(['When', 'Who', 'Action', 'Before', 'After', 'Remark'], log.map((x) => h('tr', null,
        h('td', null, time(x.at)), h('td', null, x.actor || ''), h('td', null, x.action || ''),
        h('td', { class: 'json' }, fmtJson(x.before)), h('td', { class: 'json' }, fmtJson(x.after)), h('td', null, x.remark || ''))), { id: 'log-table' }));
}

export { go };
