// SPDX-License-Identifier: Apache-2.0
// Small DOM helpers shared by the pages. Everything the server sends is put in the page
// as text (textContent, attributes), never as markup: alert names, paths and command
// lines are hostile input. Times are shown in the browser's zone, with the UTC time in
// the title (hover). Dialogs are <dialog> elements with real labels, an optional remark
// on every change, and the problem's detail sentence shown inside them.

/**
 * Makes an element: h('button', {class: 'x', onclick: fn, disabled: true}, 'text', child...).
 * Attributes starting with "on" become listeners; null/false attributes are left out;
 * children may be strings, nodes, arrays or null.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVGNS = 'http://www.w3.org/2000/svg';
/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (k === 'checked' && 'checked' in el) el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** Empties a node and fills it with children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A fresh element id. */
export function nextId(prefix = 'f') { uid++; return `${prefix}-${uid}`; }

/** A labelled form control: field('Status', select) gives <div><label for>..</label>control</div>. */
export function field(label, control, hint) {
  if (!control.id) control.id = nextId();
  return h('div', { class: 'field' },
    h('label', { for: control.id }, label), control,
    hint ? h('small', { class: 'hint' }, hint) : null);
}

/** A <select> from [value, label] pairs (or plain strings). */
export function select(options, value, attrs) {
  const el = h('select', attrs);
  for (const o of options) {
    const [v, l] = Array.isArray(o) ? o : [o, o];
    el.append(h('option', { value: v }, l));
  }
  if (value !== undefined && value !== null) el.value = value;
  return el;
}

const pad = (n) => String(n).padStart(2, '0');
/** The local time of an RFC 3339 string as "YYYY-MM-DD HH:MM:SS" (browser's zone). */
export function localTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A <time> in the browser's zone whose title is the UTC time; '—' for none. */
export function time(iso) {
  if (iso === null || iso === undefined || iso === '') return h('span', { class: 'muted' }, '—');
  const d = typeof iso === 'number' ? new Date(iso) : new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', null, String(iso));
  const utc = d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC');
  return h('time', { datetime: d.toISOString(), title: utc }, localTime(d.toISOString()));
}

/** Seconds as a short duration: 45 s, 12 min, 3 h 5 min, 2 d 4 h. */
export function duration(sec) {
  if (sec === null || sec === undefined) return '—';
  sec = Math.round(sec);
  if (sec < 60) return `${sec} s`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min${sec % 60 ? ` ${sec % 60} s` : ''}`;
  if (sec < 86400) return `${Math.floor(sec / 3600)} h${sec % 3600 >= 60 ? ` ${Math.floor((sec % 3600) / 60)} min` : ''}`;
  return `${Math.floor(sec / 86400)} d${sec % 86400 >= 3600 ? ` ${Math.floor((sec % 86400) / 3600)} h` : ''}`;
}

/** A coloured badge: badge('critical', 'level'). */
export function badge(value, kind) {
  const v = value === null || value === undefined ? '—' : String(value);
  return h('span', { class: ['badge', kind ? `${kind}-${v.replace(/[^a-z0-9_]/gi, '_')}` : null] }, v.replace(/_/g, ' '));
}

// The error banner and the progress indicator live in index.html.
/** Shows the problem's detail sentence in the banner (role=alert). */
export function showError(message) {
  const b = document.getElementById('banner');
  fill(b.querySelector('.banner-text'), message);
  b.hidden = false;
  b.classList.remove('banner-ok');
}
/** Shows a success sentence in the banner (role=status via the same region). */
export function showOk(message) {
  const b = document.getElementById('banner');
  fill(b.querySelector('.banner-text'), message);
  b.hidden = false;
  b.classList.add('banner-ok');
}
export function hideBanner() { document.getElementById('banner').hidden = true; }

export function setBusy(on) {
  document.getElementById('progress').classList.toggle('active', !!on);
  document.body.setAttribute('aria-busy', on ? 'true' : 'false');
}

/**
 * Opens a modal dialog. build(body, close) fills the body and answers nothing; buttons is
 * [{label, primary, onclick(ev, close, errorEl)}]. The dialog has an error line where a
 * handler may show the problem's detail (via dialogError). Answers {dialog, close}.
 */
export function openDialog(title, build, buttons, opts = {}) {
  const titleId = nextId('dlg');
  const err = h('p', { class: 'dialog-error', role: 'alert', hidden: true });
  const body = h('div', { class: 'dialog-body' });
  const foot = h('div', { class: 'dialog-buttons' });
  const dlg = h('dialog', { class: ['dialog', opts.wide ? 'dialog-wide' : null], 'aria-labelledby': titleId },
    h('form', { method: 'dialog', class: 'dialog-form', onsubmit: (e) => e.preventDefault() },
      h('h2', { id: titleId }, title), body, err, foot));
  const opener = document.activeElement;
  const refocus = () => { if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus(); };
  const close = () => { dlg.close(); dlg.remove(); refocus(); };
  for (const b of buttons) {
    const btn = h('button', { type: b.primary ? 'submit' : 'button', class: b.primary ? 'primary' : null }, b.label);
    btn.addEventListener('click', async (ev) => {
      ev.preventDefault();
      if (!b.onclick) { close(); return; }
      err.hidden = true;
      btn.disabled = true;
      try { await b.onclick(ev, close, err); }
      catch (e) { err.textContent = e.message || String(e); err.hidden = false; }
      finally { btn.disabled = false; }
    });
    foot.append(btn);
  }
  dlg.addEventListener('cancel', () => { setTimeout(() => { dlg.remove(); refocus(); }, 0); });
  build(body, close);
  document.body.append(dlg);
  dlg.showModal();
  const first = body.querySelector('input, select, textarea, button');
  if (first) first.focus();
  return { dialog: dlg, close, body };
}

/** A remark textarea (optional on every change), labelled. */
export function remarkField() {
  const ta = h('textarea', { rows: 2, maxlength: 4000, name: 'remark', class: 'remark' });
  return { el: field('Remark (optional)', ta), get value() { return ta.value.trim(); } };
}

/** Truncates a long text for display (the whole text stays in the title). */
export function clip(text, n = 80) {
  const t = String(text ?? '');
  return t.length > n ? h('span', { title: t }, t.slice(0, n - 1) + '…') : t;
}

/** A table from column heads and rows of cells. */
export function table(heads, rows, attrs) {
  return h('div', { class: 'table-wrap' },
    h('table', attrs,
      h('thead', null, h('tr', null, heads.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', null, rows)));
}

/** A definition list from [term, description] pairs. */
export function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}
