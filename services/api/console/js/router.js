// SPDX-License-Identifier: Apache-2.0
// The hash router: #/events?status=unhandled, #/events/ev-.../chain?entity=ip:1.2.3.4.
// A route is a path of segments and a query; pages read both and write the query back
// (filters live in the address, so back/forward and reload keep them).

/** The current route: {path: ['events', 'ev-…', 'chain'], query: URLSearchParams}. */
export function current() {
  const raw = location.hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const pathPart = q >= 0 ? raw.slice(0, q) : raw;
  const query = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
  const path = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  return { path, query };
}

/** The hash of a path (segments) and a query object or URLSearchParams. */
export function href(path, query) {
  const p = '#/' + path.map(encodeURIComponent).join('/');
  let q = '';
  if (query) {
    const u = query instanceof URLSearchParams ? query : new URLSearchParams(
      Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== ''));
    const str = u.toString();
    if (str) q = '?' + str;
  }
  return p + q;
}

/** Goes to a route (a new history entry unless replace). */
export function go(path, query, replace = false) {
  const target = href(path, query);
  if (location.hash === target) { window.dispatchEvent(new HashChangeEvent('hashchange')); return; }
  if (replace) history.replaceState(null, '', target);
  else location.hash = target;
  if (replace) window.dispatchEvent(new HashChangeEvent('hashchange'));
}
