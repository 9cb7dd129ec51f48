// SPDX-License-Identifier: Apache-2.0
// The Admin page (admins only; the API refuses anyone else with 403): users (add, role,
// enable/disable, grant/revoke an account, one-time password), API tokens, playbooks,
// accounts with their member accounts and perimeter agents, and each account's
// notification setting. Every change takes an optional remark where the API has one.

import * as api from './api.js';
import { badge, field, fill, h, openDialog, remarkField, select, showOk, table, time } from './ui.js';
import { LEVELS } from './common.js';

export function render(main) {
  const sections = {
    users: h('section', { class: 'card', id: 'admin-users' }),
    tokens: h('section', { class: 'card', id: 'admin-tokens' }),
    accounts: h('section', { class: 'card', id: 'admin-accounts' }),
    playbooks: h('section', { class: 'card', id: 'admin-playbooks' }),
  };
  fill(main, h('h1', null, 'Admin'), Object.values(sections));
  users(sections.users);
  tokens(sections.tokens);
  accountsSection(sections.accounts);
  playbooks(sections.playbooks);
}

/** A dialog with some controls and a remark, sending one change; after() redraws. */
function change(title, controls, send, after, withRemark = true) {
  const remark = withRemark ? remarkField() : null;
  openDialog(title, (body) => { for (const c of controls) body.append(c); if (remark) body.append(remark.el); }, [
    { label: 'Cancel' },
    {
      label: 'Save', primary: true, onclick: async (e, close) => {
        const ans = await send(remark && remark.value ? { remark: remark.value } : {});
        close();
        showOk(ans && ans.password ? `One-time password for ${ans.user}: ${ans.password}` : api.describeAnswer(ans));
        api.uncache('/users'); api.uncache('/accounts');
        after();
      },
    },
  ]);
}

async function users(sec) {
  fill(sec, h('h2', null, 'Users'), h('p', { class: 'loading' }, 'Loading…'));
  let r;
  try { r = await api.get('/users'); } catch (e) { fill(sec, h('h2', null, 'Users'), h('p', { class: 'empty' }, e.message)); return; }
  const again = () => users(sec);
  const me = api.currentUser();
  const path = (u, what) => `/users/${encodeURIComponent(u)}/${what}`;
  const add = () => {
    const name = h('input', { required: true, maxlength: 64, pattern: '[A-Za-z0-9][A-Za-z0-9._@-]*' });
    const role = select(['analyst', 'viewer', 'admin'], 'analyst');
    const disp = h('input', { maxlength: 256 });
    change('Add a user', [field('User name', name), field('Role', role), field('Display name', disp)],
      () => api.post('/users', { user: name.value.trim(), role: role.value, ...(disp.value ? { display_name: disp.value } : {}) }, { quiet: true }), again, false);
  };
  fill(sec, h('h2', null, 'Users'), h('button', { type: 'button', onclick: add, id: 'user-add' }, 'Add a user…'),
    table(['User', 'Display name', 'Role', 'State', 'Accounts', ''], (r.users || []).map((u) => {
      const self = u.user === me.user;
      return h('tr', { dataset: { user: u.user } }, h('td', null, u.user), h('td', null, u.display_name || ''),
        h('td', null, badge(u.role, 'role')), h('td', null, badge(u.state, 'state')), h('td', null, u.accounts || ''),
        h('td', { class: 'actions' },
          self ? null : h('button', { type: 'button', onclick: () => { const s = select(['analyst', 'viewer', 'admin'], u.role); change(`Role of ${u.user}`, [field('Role', s)], (b) => api.post(path(u.user, 'role'), { role: s.value, ...b }, { quiet: true }), again); } }, 'Role…'),
          self ? null : h('button', { type: 'button', onclick: () => change(`${u.state === 'enabled' ? 'Disable' : 'Enable'} ${u.user}`, [], (b) => api.post(path(u.user, u.state === 'enabled' ? 'disable' : 'enable'), b, { quiet: true }), again) }, u.state === 'enabled' ? 'Disable…' : 'Enable…'),
          h('button', { type: 'button', onclick: () => { const a = h('input', { required: true, maxlength: 200 }); change(`Grant ${u.user} an account`, [field('Account', a)], (b) => api.post(path(u.user, 'grant'), { account: a.value.trim(), ...b }, { quiet: true }), again); } }, 'Grant…'),
          h('button', { type: 'button', onclick: () => { const a = h('input', { required: true, maxlength: 200 }); change(`Revoke an account of ${u.user}`, [field('Account', a)], (b) => api.post(path(u.user, 'revoke'), { account: a.value.trim(), ...b }, { quiet: true }), again); } }, 'Revoke…'),
          h('button', { type: 'button', onclick: () => change(`Reset the password of ${u.user}`, [h('p', null, 'A one-time password is shown once; their sessions end.')], () => api.post(path(u.user, 'password'), {}, { quiet: true }), again, false) }, 'Reset password…')));
    }), { id: 'users-table' }));
}

async function tokens(sec) {
  fill(sec, h('h2', null, 'API tokens'), h('p', { class: 'loading' }, 'Loading…'));
  let r;
  try { r = await api.get('/tokens'); } catch (e) { fill(sec, h('h2', null, 'API tokens'), h('p', { class: 'empty' }, e.message)); return; }
  const again = () => tokens(sec);
  const issue = () => {
    const name = h('input', { required: true, maxlength: 128 });
    const days = h('input', { type: 'number', min: '1', max: '90', value: '30' });
    openDialog('Issue an API token', (b) => b.append(field('Name', name), field('Valid for (days)', days)), [
      { label: 'Cancel' },
      {
        label: 'Issue', primary: true, onclick: async (e, close, err) => {
          const t = await api.post('/tokens', { name: name.value.trim(), expires_in_s: Math.round(Number(days.value) * 86400) }, { quiet: true });
          close();
          openDialog('Your new token', (b) => b.append(h('p', null, 'Copy it now: it is shown once.'), h('code', { class: 'secret' }, t.token)), [{ label: 'Done' }]);
          again();
        },
      },
    ]);
  };
  fill(sec, h('h2', null, 'API tokens'), h('button', { type: 'button', onclick: issue }, 'Issue a token…'),
    table(['Name', 'Kind', 'Created', 'Expires', 'Last used', 'State', ''], (r.tokens || []).map((t) => h('tr', null,
      h('td', null, t.name || t.token_id), h('td', null, t.kind), h('td', null, time(t.created_at)), h('td', null, time(t.expires_at)),
      h('td', null, time(t.last_used_at)), h('td', null, t.active ? 'active' : (t.revoked_at ? 'revoked' : 'expired')),
      h('td', null, t.active ? h('button', { type: 'button', class: 'danger', onclick: () => change(`Revoke ${t.name || t.token_id}`, [], () => api.api('DELETE', `/tokens/${encodeURIComponent(t.token_id)}`, undefined, { quiet: true }), again, false) }, 'Revoke…') : null))), { id: 'tokens-table' }));
}

async function accountsSection(sec) {
  fill(sec, h('h2', null, 'Accounts'), h('p', { class: 'loading' }, 'Loading…'));
  let r;
  try { r = await api.get('/accounts'); } catch (e) { fill(sec, h('h2', null, 'Accounts'), h('p', { class: 'empty' }, e.message)); return; }
  const again = () => accountsSection(sec);
  const notif = h('div', { id: 'notifications' });
  const addMember = () => {
    const a = h('input', { required: true }); const m = h('input', { required: true }); const n = h('input');
    change('Add a member account', [field('Member account', a), field('Managed by', m), field('Name', n)],
      (b) => api.post('/accounts/members', { account: a.value.trim(), manager: m.value.trim(), ...(n.value ? { name: n.value } : {}), ...b }, { quiet: true }), again);
  };
  const perimeter = (remove, acc, asset) => {
    const a = h('input', { required: true, value: acc || '' }); const s = h('input', { required: true, value: asset || '' });
    change(remove ? 'Withdraw a perimeter agent' : 'Declare a perimeter agent', [field('Account', a), field('Asset', s)],
      (b) => api.post('/accounts/perimeter', { account: a.value.trim(), asset: s.value.trim(), ...(remove ? { remove: true } : {}), ...b }, { quiet: true }), again);
  };
  fill(sec, h('h2', null, 'Accounts'),
    h('p', null, (r.accounts || []).join(', ') || 'None.'),
    h('h3', null, 'Member accounts'), h('button', { type: 'button', onclick: addMember }, 'Add a member account…'),
    orNone(r.member_accounts, table(['Member', 'Manager', 'Name', 'By'], (r.member_accounts || []).map((m) => h('tr', null, h('td', null, m.member), h('td', null, m.manager), h('td', null, m.name || ''), h('td', null, m.created_by || ''))))),
    h('h3', null, 'Perimeter agents'), h('button', { type: 'button', onclick: () => perimeter(false) }, 'Declare a perimeter agent…'),
    orNone(r.perimeter_agents, table(['Account', 'Asset', 'Declared', ''], (r.perimeter_agents || []).map((p) => h('tr', null, h('td', null, p.account), h('td', null, p.asset),
      h('td', null, p.declared_by || '', ' ', time(p.declared_at)), h('td', null, h('button', { type: 'button', onclick: () => perimeter(true, p.account, p.asset) }, 'Withdraw…')))))),
    h('h3', null, 'Notification settings'), notif);
  const rows = await Promise.all((r.accounts || []).slice(0, 100).map((a) => api.get(`/accounts/${encodeURIComponent(a)}/notifications`, { quiet: true }).catch(() => null)));
  fill(notif, table(['Account', 'Notifications', 'From level', 'Set by', ''], rows.filter(Boolean).map((n) => h('tr', null,
    h('td', null, n.account_id), h('td', null, n.enabled ? 'on' : 'off'), h('td', null, n.min_level),
    h('td', null, n.default ? 'default' : [n.updated_by || '', ' ', time(n.updated_at)]),
    h('td', null, h('button', {
      type: 'button', onclick: () => {
        const en = select([['true', 'On'], ['false', 'Off']], String(n.enabled)); const lv = select(LEVELS, n.min_level);
        change(`Notifications of ${n.account_id}`, [field('Notifications', en), field('From level', lv)],
          (b) => api.api('PUT', `/accounts/${encodeURIComponent(n.account_id)}/notifications`, { enabled: en.value === 'true', min_level: lv.value, ...b }, { quiet: true }), again);
      },
    }, 'Change…'))))));
}

async function playbooks(sec) {
  fill(sec, h('h2', null, 'Playbooks'), h('p', { class: 'loading' }, 'Loading…'));
  let r;
  try { r = await api.get('/playbooks'); } catch (e) { fill(sec, h('h2', null, 'Playbooks'), h('p', { class: 'empty' }, e.message)); return; }
  const again = () => playbooks(sec);
  fill(sec, h('h2', null, 'Playbooks'),
    // the description under the name: a column of its own made tall rows at phone width
    orNone(r.playbooks, table(['Name', 'Entity type', 'Origin', 'Default', 'Steps', ''], (r.playbooks || []).map((p) => h('tr', { dataset: { name: p.name } },
      h('td', { class: 'col-playbook' }, h('strong', null, p.name), p.description ? h('div', { class: 'muted small' }, p.description) : null),
      h('td', null, p.entity_type), h('td', null, p.origin), h('td', null, p.default ? 'yes' : ''),
      h('td', { class: 'num' }, String(p.steps ?? '')),
      h('td', null, p.origin === 'custom' ? h('button', { type: 'button', class: 'danger', onclick: () => change(`Delete playbook ${p.name}`, [], (b) => api.api('DELETE', `/playbooks/${encodeURIComponent(p.name)}`, b, { quiet: true }), again) }, 'Delete…') : null))), { id: 'playbooks-table' })));
}

/** The table, or "None." for an empty list (a table of headings alone reads as broken). */
function orNone(list, tbl) {
  return list && list.length ? tbl : h('p', { class: 'muted' }, 'None.');
}
