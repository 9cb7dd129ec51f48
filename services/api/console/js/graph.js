// SPDX-License-Identifier: Apache-2.0
// The provenance graph as an SVG we draw ourselves (no Graphviz in the browser): a
// simple layered layout, left to right. Each node's layer is its longest path from a
// node without predecessors (cycles broken by taking the remaining nodes in turn); the
// order within a layer follows the mean position of the node's neighbours, swept a few
// times to uncross edges. The picture pans by dragging and zooms by the wheel or the
// buttons (changing the viewBox); nodes are focusable buttons, and activating one
// calls onNode(node). Values are text nodes: hostile strings never become markup.

import { h, s } from './ui.js';

const NODE_W = 190;
const NODE_H = 44;
const GAP_X = 90;
const GAP_Y = 26;
const PAD = 30;

/** Computes {layers: [[node]], pos: Map(id -> {x, y})} for nodes and edges. */
export function layout(nodes, edges) {
  const ids = nodes.map((n) => n.id);
  const succ = new Map(ids.map((i) => [i, []]));
  const pred = new Map(ids.map((i) => [i, []]));
  for (const e of edges) {
    if (!succ.has(e.from) || !succ.has(e.to) || e.from === e.to) continue;
    succ.get(e.from).push(e.to);
    pred.get(e.to).push(e.from);
  }
  // Kahn's order; what stays in a cycle is taken by the smallest remaining in-degree.
  const indeg = new Map(ids.map((i) => [i, pred.get(i).length]));
  const layer = new Map();
  const done = new Set();
  const queue = ids.filter((i) => indeg.get(i) === 0);
  while (done.size < ids.length) {
    if (queue.length === 0) {
      let best = null;
      for (const i of ids) if (!done.has(i) && (best === null || indeg.get(i) < indeg.get(best))) best = i;
      queue.push(best);
    }
    const n = queue.shift();
    if (done.has(n)) continue;
    done.add(n);
    let l = 0;
    for (const p of pred.get(n)) if (layer.has(p)) l = Math.max(l, layer.get(p) + 1);
    layer.set(n, l);
    for (const m of succ.get(n)) {
      indeg.set(m, indeg.get(m) - 1);
      if (indeg.get(m) === 0 && !done.has(m)) queue.push(m);
    }
  }
  const nLayers = Math.max(0, ...layer.values()) + 1;
  const layers = Array.from({ length: nLayers }, () => []);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  for (const i of ids) layers[layer.get(i)].push(byId.get(i));
  // Order: by type then value first, then barycentre sweeps.
  const typeRank = { host: 0, host_account: 1, ip: 2, process: 3, file: 4 };
  for (const L of layers) L.sort((a, b) => (typeRank[a.type] ?? 9) - (typeRank[b.type] ?? 9) || String(a.value).localeCompare(String(b.value)));
  const idx = new Map();
  const index = () => { for (const L of layers) L.forEach((n, k) => idx.set(n.id, k)); };
  index();
  for (let sweep = 0; sweep < 4; sweep++) {
    const down = sweep % 2 === 0;
    for (let li = down ? 1 : nLayers - 2; down ? li < nLayers : li >= 0; li += down ? 1 : -1) {
      const L = layers[li];
      const bc = new Map();
      for (const n of L) {
        const nb = (down ? pred : succ).get(n.id).filter((m) => layer.get(m) !== li);
        bc.set(n.id, nb.length ? nb.reduce((a, m) => a + idx.get(m), 0) / nb.length : idx.get(n.id));
      }
      L.sort((a, b) => bc.get(a.id) - bc.get(b.id));
      index();
    }
  }
  const tallest = Math.max(1, ...layers.map((L) => L.length));
  const pos = new Map();
  layers.forEach((L, li) => {
    const offset = ((tallest - L.length) * (NODE_H + GAP_Y)) / 2;
    L.forEach((n, k) => pos.set(n.id, { x: PAD + li * (NODE_W + GAP_X), y: PAD + offset + k * (NODE_H + GAP_Y) }));
  });
  return {
    layers, pos, layerOf: layer,
    width: PAD * 2 + nLayers * NODE_W + (nLayers - 1) * GAP_X,
    height: PAD * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y,
  };
}

function short(v, n) { const t = String(v ?? ''); return t.length > n ? t.slice(0, n - 1) + '…' : t; }

/**
 * Draws the graph into a figure with zoom buttons. onNode(node) is called when a node is
 * clicked or activated with Enter/Space. Answers the figure element.
 */
export function drawGraph(graph, onNode) {
  const nodes = graph.nodes || [];
  const edges = graph.edges || [];
  const L = layout(nodes, edges);
  const view = { x: 0, y: 0, w: Math.max(L.width, 300), h: Math.max(L.height, 160) };
  const full = { ...view };
  const svg = s('svg', {
    class: 'graph', id: 'chain-graph', role: 'group', 'aria-label': `Provenance graph: ${nodes.length} entities, ${edges.length} behaviours`,
    xmlns: 'http://www.w3.org/2000/svg', preserveAspectRatio: 'xMidYMid meet',
  });
  const setView = () => svg.setAttribute('viewBox', `${view.x} ${view.y} ${view.w} ${view.h}`);
  setView();
  svg.append(s('defs', null,
    s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '10', refY: '5', markerWidth: '8', markerHeight: '8', orient: 'auto-start-reverse' },
      s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow-head' }))));
  const world = s('g', { class: 'world' });
  svg.append(world);
  const edgeLayer = s('g', { class: 'edges' });
  const nodeLayer = s('g', { class: 'nodes' });
  world.append(edgeLayer, nodeLayer);

  for (const e of edges) {
    const a = L.pos.get(e.from);
    const b = L.pos.get(e.to);
    if (!a || !b) continue;
    let d;
    let lx;
    let ly;
    if (e.from === e.to) {
      d = `M ${a.x + NODE_W - 30} ${a.y} C ${a.x + NODE_W - 30} ${a.y - 40}, ${a.x + NODE_W + 20} ${a.y - 20}, ${a.x + NODE_W} ${a.y + 10}`;
      lx = a.x + NODE_W; ly = a.y - 24;
    } else if (b.x > a.x) {
      const x1 = a.x + NODE_W; const y1 = a.y + NODE_H / 2; const x2 = b.x; const y2 = b.y + NODE_H / 2;
      const mx = (x1 + x2) / 2;
      d = `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`;
      lx = mx; ly = (y1 + y2) / 2 - 4;
    } else {
      // Same layer or backwards: an arc above.
      const x1 = a.x + NODE_W / 2; const y1 = a.y; const x2 = b.x + NODE_W / 2; const y2 = b.y;
      const top = Math.min(y1, y2) - 40;
      d = `M ${x1} ${y1} C ${x1} ${top}, ${x2} ${top}, ${x2} ${y2}`;
      lx = (x1 + x2) / 2; ly = top + 8;
    }
    const title = `${e.src_type}:${e.src} ${e.relation} ${e.dst_type}:${e.dst}${e.alerts ? ` (${e.alerts} alert${e.alerts === 1 ? '' : 's'})` : ''}`;
    edgeLayer.append(s('g', { class: 'edge' },
      s('title', null, title),
      s('path', { d, 'marker-end': 'url(#arrow)' }),
      s('text', { x: lx, y: ly, 'text-anchor': 'middle', class: 'edge-label' }, short(e.relation, 24))));
  }

  let dragged = false;
  for (const n of nodes) {
    const p = L.pos.get(n.id);
    const g = s('g', {
      class: `node node-${String(n.type).replace(/[^a-z_]/g, '')}`, transform: `translate(${p.x} ${p.y})`,
      tabindex: '0', role: 'button', 'aria-label': `${n.type} ${n.value}: open in the Entities tab`,
      'data-type': n.type, 'data-value': n.value, 'data-id': n.id,
    },
    s('title', null, `${n.type}: ${n.value}`),
    s('rect', { width: NODE_W, height: NODE_H, rx: '6', ry: '6' }),
    s('text', { x: '10', y: '16', class: 'node-type' }, n.type),
    s('text', { x: '10', y: '34', class: 'node-value' }, short(n.value, 26)));
    g.addEventListener('click', () => { if (!dragged) onNode(n); });
    g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); onNode(n); } });
    nodeLayer.append(g);
  }

  // Pan by dragging (a move of more than 4 px is a drag, not a click), zoom by the wheel.
  let start = null;
  svg.addEventListener('pointerdown', (ev) => {
    if (ev.button !== 0) return;
    start = { x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y, id: ev.pointerId };
    dragged = false;
  });
  svg.addEventListener('pointermove', (ev) => {
    if (!start || ev.pointerId !== start.id) return;
    const dx = ev.clientX - start.x; const dy = ev.clientY - start.y;
    if (!dragged && Math.hypot(dx, dy) < 4) return;
    if (!dragged) { dragged = true; svg.setPointerCapture(ev.pointerId); svg.classList.add('dragging'); }
    const r = svg.getBoundingClientRect();
    const scale = Math.max(view.w / r.width, view.h / r.height);
    view.x = start.vx - dx * scale; view.y = start.vy - dy * scale;
    setView();
  });
  const end = (ev) => {
    if (start && ev.pointerId === start.id) {
      start = null; svg.classList.remove('dragging');
      if (dragged) setTimeout(() => { dragged = false; }, 0);
    }
  };
  svg.addEventListener('pointerup', end);
  svg.addEventListener('pointercancel', end);

  const zoom = (factor, cx, cy) => {
    const nw = Math.min(Math.max(view.w * factor, 80), full.w * 8);
    const f = nw / view.w;
    const px = cx ?? view.x + view.w / 2; const py = cy ?? view.y + view.h / 2;
    view.x = px - (px - view.x) * f; view.y = py - (py - view.y) * f;
    view.w *= f; view.h *= f;
    setView();
  };
  svg.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    const r = svg.getBoundingClientRect();
    const scale = Math.max(view.w / r.width, view.h / r.height);
    const cx = view.x + (ev.clientX - r.left - (r.width - view.w / scale) / 2) * scale;
    const cy = view.y + (ev.clientY - r.top - (r.height - view.h / scale) / 2) * scale;
    zoom(ev.deltaY > 0 ? 1.15 : 1 / 1.15, cx, cy);
  }, { passive: false });

  const tools = h('div', { class: 'graph-tools', role: 'toolbar', 'aria-label': 'Graph zoom' },
    h('button', { type: 'button', id: 'zoom-in', 'aria-label': 'Zoom in', onclick: () => zoom(1 / 1.25) }, '+'),
    h('button', { type: 'button', id: 'zoom-out', 'aria-label': 'Zoom out', onclick: () => zoom(1.25) }, '−'),
    h('button', { type: 'button', id: 'zoom-fit', onclick: () => { Object.assign(view, full); setView(); } }, 'Fit'),
    h('span', { class: 'muted' }, 'Drag to pan, wheel to zoom; click an entity to open it.'));
  return h('figure', { class: 'graph-figure' }, tools, h('div', { class: 'graph-box' }, svg),
    h('figcaption', { class: 'muted' }, `${nodes.length} entities, ${edges.length} behaviours`));
}
