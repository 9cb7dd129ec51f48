// SPDX-License-Identifier: Apache-2.0
// The event chain tab: the timeline (every alert in order, the gap to the previous one
// and whether the pace quickened) and the provenance graph (graph.js). Clicking an
// entity of the graph opens the Entities tab on it.

import * as api from './api.js';
import { go } from './router.js';
import { badge, duration, fill, h, time } from './ui.js';
import { drawGraph } from './graph.js';

/** Draws the chain of ctx.id into panel. */
export async function renderChain(panel, ctx) {
  fill(panel, h('p', { class: 'loading' }, 'Loading…'));
  let c;
  try { c = await api.get(`/events/${encodeURIComponent(ctx.id)}/chain`); }
  catch (e) { fill(panel, h('p', { class: 'empty' }, e.message)); return; }
  if (!ctx.alive) return;
  const tl = c.timeline || [];
  const onNode = (n) => go(['events', ctx.id, 'entities'], { entity: `${n.type}:${n.value}` });
  fill(panel,
    h('section', { class: 'card' },
      h('h2', null, 'Provenance graph'),
      (c.graph && (c.graph.nodes || []).length) ? drawGraph(c.graph, onNode) : h('p', { class: 'muted' }, 'No entity links yet.')),
    h('section', { class: 'card' },
      h('h2', null, 'Timeline'),
      h('p', { class: 'muted' }, `${tl.length} alert${tl.length === 1 ? '' : 's'} over ${duration(c.span_s)} on ${c.asset_count ?? '?'} asset${c.asset_count === 1 ? '' : 's'}.`),
      h('ol', { class: 'timeline', id: 'timeline' }, tl.map((a) => [
        a.gap_s !== null && a.gap_s !== undefined ? h('li', { class: ['gap', `pace-${String(a.pace || '').replace(/\s+/g, '_')}`], 'aria-label': `Gap ${duration(a.gap_s)}, ${a.pace}` },
          h('span', { class: 'gap-line' }), `+${duration(a.gap_s)}`, a.pace && a.pace !== 'start' ? ` · ${a.pace}` : '') : null,
        h('li', { class: 'tl-item' },
          h('div', { class: 'tl-when' }, time(a.first_seen)),
          h('div', { class: 'tl-what' },
            h('strong', null, a.name), ' ', badge(a.severity, 'level'), ' ', badge(a.status, 'status'),
            h('div', { class: 'muted' }, [a.asset_id, a.source, a.attack_tactic, a.defense && a.defense !== 'none' ? `defence: ${a.defense}` : null, a.occurrences > 1 ? `${a.occurrences} occurrences` : null].filter(Boolean).join(' · ')),
            a.reason ? h('div', { class: 'tl-reason' }, 'Joined: ', a.reason) : null)),
      ]))));
}
