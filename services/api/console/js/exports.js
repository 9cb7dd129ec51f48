// SPDX-License-Identifier: Apache-2.0
// The Exports page: the caller's export jobs with their progress, the download of a
// finished workbook, and a new export from filters (levels, statuses, time range). An
// export of ticked events is made from the events list, which opens this page on the new
// job (#/exports?job=ID). The list holds stored jobs only (done or failed): a job the
// exporter is still making is read on its own (GET /exports/{id}: running with its
// percent; before its first progress record GET /commands/{id}: pending), shown first,
// and polled until it is stored.

import * as api from './api.js';
import { go } from './router.js';
import { badge, field, fill, h, showOk, table, time } from './ui.js';
import { EVENT_STATUSES, LEVELS, localInputToIso, Pager } from './common.js';

const LIMIT = 25;

export function render(main, route) {
  const highlight = route.query.get('job') || '';
  const pager = new Pager();
  let alive = true;
  let timer = null;
  const listEl = h('div', { class: 'list-area', id: 'exports-list' });
  const checks = (name, values) => h('fieldset', { class: 'checks' }, h('legend', null, name),
    values.map((v) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: name.toLowerCase(), value: v }), ' ', v)));
  const since = h('input', { type: 'datetime-local', name: 'since' });
  const until = h('input', { type: 'datetime-local', name: 'until' });
  const form = h('form', { class: 'filter-form', 'aria-label': 'New export', id: 'export-form' },
    h('h2', null, 'New export'),
    h('p', { class: 'muted' }, 'At most 1,000 events of the last 180 days; to export chosen events, tick them in the events list.'),
    h('div', { class: 'filter-checks' }, checks('Levels', LEVELS), checks('Statuses', EVENT_STATUSES)),
    h('div', { class: 'filter-grid' }, field('Last seen since', since), field('First seen until', until)),
    h('div', { class: 'form-buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Export')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    const body = {};
    const lv = fd.getAll('levels'); if (lv.length) body.levels = lv;
    const st = fd.getAll('statuses'); if (st.length) body.statuses = st;
    const s = localInputToIso(since.value); if (s) body.since = s;
    const u = localInputToIso(until.value); if (u) body.until = u;
    const ans = await api.post('/exports', body).catch(() => null);
    if (!ans) return;
    const job = (ans.result && ans.result.job_id) || ans.command_id;
    showOk(ans.status === 'pending' ? `Export ${job} is being made.` : `Export ${job} is ready.`);
    go(['exports'], { job });
  });
  fill(main, h('h1', null, 'Exports'), api.canChange() ? form : null, h('h2', null, 'Your exports'), listEl);

  // The job named in the address while the exporter is still making it: a job-like
  // object (state pending or running), or null once it is stored or unknown.
  async function unstored(listed) {
    if (!highlight || listed.some((j) => j.job_id === highlight)) return null;
    const path = encodeURIComponent(highlight);
    try { return await api.get(`/exports/${path}`, { quiet: true }); }
    catch (e) { if (e.status !== 404) return null; }
    const c = await api.get(`/commands/${path}`, { quiet: true }).catch(() => null);
    if (!c) return null;
    if (c.status === 'pending') return { job_id: highlight, state: 'pending', progress: 0, message: 'Waiting for the exporter.' };
    if (c.status === 'progress') return { job_id: highlight, state: 'running', progress: (c.result && c.result.percent) || 0, message: c.message || '' };
    if (c.status === 'error') return { job_id: highlight, state: 'failed', progress: 0, message: c.message || '' };
    return null;
  }

  // The download sits under the job's id, so a phone shows it without scrolling sideways.
  function jobTable(jobs, id) {
    return table(['Job', 'State', 'Progress', 'Events', 'Created', 'Finished', 'Message'],
      jobs.map((j) => h('tr', { class: j.job_id === highlight ? 'selected' : null, dataset: { id: j.job_id, state: j.state } },
        h('td', { class: 'col-job' }, h('span', { class: 'small job-id' }, j.job_id),
          j.state === 'done' ? h('button', {
            type: 'button', class: 'download', 'aria-label': `Download the workbook of ${j.job_id}`,
            onclick: () => api.download(`/exports/${encodeURIComponent(j.job_id)}/file`, j.file_name || `cwpp-events-${j.job_id}.xlsx`).catch(() => {}),
          }, 'Download') : null),
        h('td', null, badge(j.state, 'state')),
        h('td', { class: 'col-progress' }, h('progress', { max: '100', value: String(j.progress ?? 0), 'aria-label': `Progress of ${j.job_id}` }), ` ${j.progress ?? 0} %`),
        h('td', { class: 'num' }, String(j.events ?? '')), h('td', null, time(j.created_at)), h('td', null, time(j.finished_at)),
        h('td', null, j.message || ''))), { id });
  }

  async function load() {
    clearTimeout(timer);
    let r;
    try { r = await api.get('/exports' + api.qs({ limit: LIMIT, cursor: pager.cursor })); }
    catch (e) { if (alive) fill(listEl, h('p', { class: 'empty' }, e.message)); return; }
    if (!alive) return;
    pager.setNext(r.next_cursor);
    const extra = pager.cursor ? null : await unstored(r.exports);
    if (!alive) return;
    const running = !!extra && (extra.state === 'running' || extra.state === 'pending');
    fill(listEl,
      extra ? [h('h3', null, running ? 'Being made' : 'This export'), jobTable([extra], 'exports-running')] : null,
      r.exports.length ? jobTable(r.exports, 'exports-table') : h('p', { class: 'empty' }, extra ? 'No finished export yet.' : 'No export yet.'),
      pager.controls(r.exports.length, LIMIT, r.total, load, 'Exports'));
    if (running) timer = setTimeout(load, 1000);
  }
  load();
  return () => { alive = false; clearTimeout(timer); };
}
