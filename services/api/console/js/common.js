// SPDX-License-Identifier: Apache-2.0
// Pieces several pages share: the accounts the caller may pick from, the bulk-answer
// summary, the keyset pager, local <-> UTC conversion of datetime-local inputs, and
// the ATT&CK stage list.

import * as api from './api.js';
import { h } from './ui.js';

/** The accounts the caller holds (an admin: every one known), and the member accounts. */
export async function accounts() {
  try {
    const a = await api.cached('/accounts');
    return { accounts: a.accounts || [], members: a.member_accounts || [], perimeter: a.perimeter_agents || [] };
  } catch (e) {
    const me = api.currentUser();
    return { accounts: (me && me.accounts) || [], members: [], perimeter: [] };
  }
}

/** The value of a datetime-local input as RFC 3339 UTC ('' when empty). */
export function localInputToIso(v) {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().replace(/\.000Z$/, 'Z');
}

/** An RFC 3339 time as the value of a datetime-local input in the browser's zone. */
export function isoToLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(/^\d{4}-\d{2}-\d{2}$/.test(iso) ? iso + 'T00:00:00Z' : iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * Sums up a bulk answer ({ok, failed, items:[{id, status, message, problem}]}) as a
 * sentence and a list of the items that did not succeed, with the API's detail.
 */
export function bulkSummary(ans, names) {
  const items = (ans && ans.items) || [];
  const bad = items.filter((i) => i.status !== 'ok');
  const okN = ans && typeof ans.ok === 'number' ? ans.ok : items.length - bad.length;
  const sentence = bad.length === 0 ? `Done for ${okN} event${okN === 1 ? '' : 's'}.`
    : `Done for ${okN}; ${bad.length} not done.`;
  const list = bad.length ? h('ul', { class: 'bulk-failures' }, bad.map((i) => h('li', null,
    h('strong', null, (names && names.get(i.id)) || i.id), ': ',
    i.status === 'pending' ? `pending (command ${i.command_id})` : ((i.problem && i.problem.detail) || i.message || i.status)))) : null;
  return { sentence, list, failed: bad.length };
}

/**
 * A keyset pager: remembers the cursors of the pages seen so Previous works.
 * state: {cursors: [null, c1, c2...], index}. Answers the cursor of the current page.
 */
export class Pager {
  constructor() { this.reset(); }
  reset() { this.cursors = [null]; this.index = 0; this.next = null; }
  get cursor() { return this.cursors[this.index]; }
  setNext(c) { this.next = c; }
  forward() { if (!this.next) return false; this.cursors[this.index + 1] = this.next; this.index++; return true; }
  back() { if (this.index === 0) return false; this.index--; return true; }

  /** The pager's controls: "rows a–b of total", Previous, Next. */
  controls(shown, limit, total, onMove, label = 'rows') {
    const from = total === 0 ? 0 : this.index * limit + 1;
    const to = this.index * limit + shown;
    const prev = h('button', { type: 'button', class: 'pager-prev', disabled: this.index === 0 }, 'Previous');
    const next = h('button', { type: 'button', class: 'pager-next', disabled: !this.next }, 'Next');
    prev.addEventListener('click', () => { if (this.back()) onMove(); });
    next.addEventListener('click', () => { if (this.forward()) onMove(); });
    return h('div', { class: 'pager' },
      h('span', { class: 'pager-text', 'aria-live': 'polite' }, total === 0 ? `${label} 0 of 0` : `${label} ${from}–${to} of ${total}`), prev, next);
  }
}

/** The ATT&CK enterprise tactics (id, name) for the stage filter. */
export const TACTICS = [
  ['TA0043', 'Reconnaissance'], ['TA0042', 'Resource Development'], ['TA0001', 'Initial Access'],
  ['TA0002', 'Execution'], ['TA0003', 'Persistence'], ['TA0004', 'Privilege Escalation'],
  ['TA0005', 'Defense Evasion'], ['TA0006', 'Credential Access'], ['TA0007', 'Discovery'],
  ['TA0008', 'Lateral Movement'], ['TA0009', 'Collection'], ['TA0011', 'Command and Control'],
  ['TA0010', 'Exfiltration'], ['TA0040', 'Impact'],
];

export const LEVELS = ['critical', 'high', 'medium', 'low'];
export const EVENT_STATUSES = ['unhandled', 'handling', 'handled', 'failed'];
export const URGENCIES = ['act_now', 'high', 'medium', 'low'];

/** Writes a poll loop for a pending command: answers its final CommandAnswer or the last seen. */
export async function followCommand(ans, tries = 10) {
  let a = ans;
  for (let i = 0; i < tries && a && (a.status === 'pending' || a.status === 'progress'); i++) {
    await new Promise((r) => setTimeout(r, 1000));
    a = await api.get('/commands/' + encodeURIComponent(a.command_id), { quiet: true }).catch(() => a);
  }
  return a;
}
