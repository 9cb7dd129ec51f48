// SPDX-License-Identifier: Apache-2.0
// The Entities tab: every entity of the event with its 30-day figures in the event's
// account; the one named in the address (?entity=type:value, e.g. from a click in the
// graph) is shown first with its other events, and a Handle button opens the handling
// dialog: the recommended built-in policy or a playbook of the entity's type, the
// validity, the destination account (among the caller's accounts) and the status the
// event takes (handling or handled).

import * as api from './api.js';
import { href } from './router.js';
import { badge, clip, dl, field, fill, h, openDialog, remarkField, select, showOk, table, time } from './ui.js';
import { accounts } from './common.js';

/** Draws the entities of ctx.id into panel. */
export async function renderEntities(panel, ctx) {
  fill(panel, h('p', { class: 'loading' }, 'Loading…'));
  let r;
  try { r = await api.get(`/events/${encodeURIComponent(ctx.id)}/entities`); }
  catch (e) { fill(panel, h('p', { class: 'empty' }, e.message)); return; }
  if (!ctx.alive) return;
  const want = ctx.route.query.get('entity') || '';
  const key = (en) => `${en.entity_type}:${en.value}`;
  const ents = r.entities || [];
  const chosen = ents.find((en) => key(en) === want) || null;
  const rows = ents.map((en) => {
    const st = en.stats_30d || {};
    return h('tr', { class: chosen === en ? 'selected' : null, dataset: { entity: key(en) } },
      h('td', null, badge(en.entity_type, 'etype')),
      h('td', { class: 'col-value' }, h('a', { href: href(['events', ctx.id, 'entities'], { entity: key(en) }) }, clip(en.value, 70))),
      h('td', { class: 'num' }, String(en.event_alerts ?? '')),
      h('td', { class: 'num' }, String(st.events ?? '')),
      h('td', { class: 'num' }, String(st.alerts ?? '')),
      h('td', { class: 'num' }, String(st.tasks ?? '')),
      h('td', { class: 'num' }, String(st.assets ?? '')),
      h('td', null, time(st.last_seen)),
      h('td', null, api.canChange() ? h('button', { type: 'button', class: 'handle-btn', onclick: () => handleDialog(ctx, en) }, 'Handle…') : null));
  });
  const detail = chosen ? entityCard(ctx, chosen) : (want ? h('p', { class: 'empty' }, `The event has no entity ${want}.`) : null);
  fill(panel,
    detail,
    h('section', { class: 'card' }, h('h2', null, `Entities (${ents.length})`),
      h('p', { class: 'muted' }, 'Figures are the account\u2019s over the last 30 days.'),
      table(['Type', 'Value', 'Alerts here', 'Events 30d', 'Alerts 30d', 'Tasks 30d', 'Assets 30d', 'Last seen', ''], rows, { id: 'entities-table' })));
  if (chosen) panel.querySelector('#entity-detail h2').focus();
}

function entityCard(ctx, en) {
  const st = en.stats_30d || {};
  const others = h('div', { class: 'entity-events' }, h('p', { class: 'loading' }, 'Loading its events…'));
  api.get(`/entities/${encodeURIComponent(en.entity_type)}` + api.qs({ value: en.value, limit: 10 }), { quiet: true }).then((v) => {
    const evs = (v.events || []).filter((e) => e.event_id !== ctx.id);
    fill(others, h('h3', null, `Other events with it (${Math.max(0, (v.total ?? evs.length) - 1)})`),
      evs.length ? h('ul', null, evs.map((e) => h('li', null, h('a', { href: href(['events', e.event_id]) }, e.name), ' ',
        badge(e.level, 'level'), ' ', badge(e.status, 'status'), ' ', time(e.last_seen)))) : h('p', { class: 'muted' }, 'None.'));
  }).catch((e) => fill(others, h('p', { class: 'muted' }, e.message)));
  const asset = en.asset && typeof en.asset === 'object' ? Object.entries(en.asset).filter(([, v]) => v !== null && typeof v !== 'object') : [];
  return h('section', { class: 'card entity-detail', id: 'entity-detail', dataset: { entity: `${en.entity_type}:${en.value}` } },
    h('h2', { tabindex: '-1' }, badge(en.entity_type, 'etype'), ' ', h('span', { class: 'entity-value' }, en.value)),
    dl([
      ['Alerts of this event', String(en.event_alerts ?? '')],
      ['Assets', (en.assets || []).join(', ') || '—'],
      ['First seen', time(en.first_seen)], ['Last seen', time(en.last_seen)],
      ['Events (30 days)', String(st.events ?? '—')], ['Alerts (30 days)', String(st.alerts ?? '—')],
      ['Handling tasks (30 days)', String(st.tasks ?? '—')], ['Assets (30 days)', String(st.assets ?? '—')],
      ...asset.map(([k, v]) => [`Asset ${k}`, String(v)]),
    ]),
    api.canChange() ? h('button', { type: 'button', class: 'primary', id: 'entity-handle', onclick: () => handleDialog(ctx, en) }, 'Handle…') : null,
    others);
}

/** The handling dialog for one entity: policy or playbook, validity, account, status. */
export async function handleDialog(ctx, en) {
  const ev = ctx.event;
  const entity = `${en.entity_type}:${en.value}`;
  let rec;
  try { rec = await api.get(`/events/${encodeURIComponent(ctx.id)}/recommendations`); } catch (e) { return; }
  const acc = await accounts();
  const r = (rec.entities || []).find((x) => x.entity === entity || (x.type === en.entity_type && x.value === en.value)) || {};
  const books = (rec.playbooks || []).filter((p) => p.entity_type === en.entity_type);
  const choices = [];
  if (r.policy) choices.push(['policy', `Built-in policy: ${r.policy.title || r.policy.action}${r.recommended ? ' (recommended)' : ''}`]);
  for (const b of books) choices.push([`playbook:${b.name}`, `Playbook ${b.name}${b.is_default ? ' (default)' : ''}${b.description ? ` — ${b.description}` : ''}`]);
  if (choices.length === 0) choices.push(['playbook:', 'The default playbook of this entity type']);
  const how = select(choices, choices[0][0], { name: 'how', id: 'handle-how' });
  const desc = h('p', { class: 'hint', id: 'handle-desc' });
  const explain = () => {
    if (how.value === 'policy' && r.policy) desc.textContent = r.policy.description || r.policy.action || '';
    else { const b = books.find((x) => `playbook:${x.name}` === how.value); desc.textContent = b ? (b.description || '') : ''; }
    statusSel.disabled = how.value !== 'policy';
  };
  const validN = h('input', { type: 'number', min: '1', max: '525600', value: '24', name: 'validity', id: 'handle-validity', required: true });
  const validU = select([['60', 'minutes'], ['3600', 'hours'], ['86400', 'days']], '3600', { name: 'validity_unit', 'aria-label': 'Validity unit' });
  const accountList = [ev.account_id, ...acc.members.filter((m) => m.manager === ev.account_id).map((m) => m.member),
    ...acc.accounts.filter((a) => a !== ev.account_id)];
  const accSel = select([...new Set(accountList)].map((a) => {
    const m = acc.members.find((x) => x.member === a);
    return [a, a === ev.account_id ? `${a} (the event's)` : (m ? `${a} (member${m.name ? ` ${m.name}` : ''})` : a)];
  }), ev.account_id, { name: 'account', id: 'handle-account' });
  const statusSel = select([['handling', 'Handling'], ['handled', 'Handled (when every task succeeds)']], 'handled', { name: 'status', id: 'handle-status' });
  const remark = remarkField();
  how.addEventListener('change', explain);
  openDialog(`Handle ${entity.length > 60 ? entity.slice(0, 59) + '…' : entity}`, (body) => {
    body.append(field('Response', how), desc,
      h('div', { class: 'field' }, h('label', { for: 'handle-validity' }, 'Valid for'), h('div', { class: 'inline' }, validN, validU)),
      field('Destination account', accSel, 'The account whose agents apply it.'),
      field('Event status', statusSel, 'A playbook leaves the status as it is.'),
      remark.el);
    explain();
  }, [
    { label: 'Cancel' },
    {
      label: 'Apply', primary: true, onclick: async (e, close) => {
        const validity = Math.round(Number(validN.value) * Number(validU.value));
        if (!Number.isFinite(validity) || validity <= 0) throw new Error('Give a validity.');
        let ans;
        const base = `/events/${encodeURIComponent(ctx.id)}`;
        if (how.value === 'policy') {
          const body = { entities: [entity], status: statusSel.value, validity_s: validity };
          if (accSel.value && accSel.value !== ev.account_id) body.account = accSel.value;
          if (remark.value) body.remark = remark.value;
          ans = await api.post(base + '/respond', body, { quiet: true, ifMatch: ev.version });
        } else {
          const body = { entity, validity_s: validity };
          const name = how.value.slice('playbook:'.length);
          if (name) body.playbook = name;
          if (accSel.value && accSel.value !== ev.account_id) body.account = accSel.value;
          if (remark.value) body.remark = remark.value;
          ans = await api.post(base + '/playbook', body, { quiet: true, ifMatch: ev.version });
        }
        close();
        showOk(api.describeAnswer(ans));
        ctx.reload();
      },
    },
  ]);
}
