// SPDX-License-Identifier: Apache-2.0
// The console's only way to the server: a fetch wrapper over the public API (/api/v1).
// It sends the session cookie (same origin), adds X-CSRF-Token to every change, never
// lets the browser cache an answer, turns RFC 9457 problem details into ApiError (whose
// message is the problem's `detail` sentence), shows a progress indicator when a
// request takes longer than 300 ms, and on a 401 forgets everything and asks the shell
// to show the login page. Session state (who am I, the CSRF token, cached lists) lives
// here and is cleared on every login and logout, so nothing crosses from one user to
// the next.

const BASE = '/api/v1';

/** An answer that is not 2xx: status, the problem's code, detail and the whole body. */
export class ApiError extends Error {
  constructor(status, problem) {
    const detail = (problem && typeof problem.detail === 'string' && problem.detail)
      || (problem && problem.title) || `The server answered ${status}.`;
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.code = (problem && problem.code) || 'http_' + status;
    this.problem = problem || {};
  }
}

// Session state: reset by clearSession().
let csrf = null;
let me = null;
let generation = 0;          // bumps on every login/logout: late answers of an old session are dropped
const cache = new Map();     // small per-session memo (accounts, playbooks, users)

const listeners = { unauthorized: [], busy: [], error: [] };

/** Subscribes fn to 'unauthorized' (no arguments), 'busy' (true/false) or 'error' (ApiError). */
export function on(kind, fn) { listeners[kind].push(fn); }
function emit(kind, arg) { for (const fn of listeners[kind]) { try { fn(arg); } catch (e) { console.error(e); } } }

let inflight = 0;
let busyTimer = null;
function busyStart() {
  inflight++;
  if (inflight === 1 && busyTimer === null) {
    busyTimer = setTimeout(() => { busyTimer = null; if (inflight > 0) emit('busy', true); }, 300);
  }
}
function busyEnd() {
  inflight = Math.max(0, inflight - 1);
  if (inflight === 0) {
    if (busyTimer !== null) { clearTimeout(busyTimer); busyTimer = null; }
    emit('busy', false);
  }
}

/** Forgets the session: CSRF token, who am I, every cached list. */
export function clearSession() {
  csrf = null;
  me = null;
  cache.clear();
  generation++;
}

export function currentUser() { return me; }
export function canChange() { return !!me && me.role !== 'viewer'; }
export function isAdmin() { return !!me && me.role === 'admin'; }

/** Builds a query string from an object, leaving out empty values. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    u.set(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

/**
 * Calls the API. method GET/POST/PUT/DELETE, path under /api/v1 (with its query), body
 * an object sent as JSON. opts: {ifMatch, quiet (no error banner), raw (answer the
 * Response), noAuthRedirect, background (a page's own refresh: no progress indicator)}. Answers the parsed JSON (null for an empty body) or throws
 * ApiError. A 202 answers {status:'pending', command_id} as the server sent it.
 */
export async function api(method, path, body, opts = {}) {
  const gen = generation;
  const headers = { 'Accept': opts.raw ? '*/*' : 'application/json, application/problem+json' };
  const change = method !== 'GET' && method !== 'HEAD';
  if (change && csrf) headers['X-CSRF-Token'] = csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (opts.ifMatch !== undefined && opts.ifMatch !== null) headers['If-Match'] = '"' + opts.ifMatch + '"';
  const busy = !opts.background;
  if (busy) busyStart();
  let resp;
  try {
    resp = await fetch(BASE + path, {
      method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (busy) busyEnd();
    const err = new ApiError(0, { detail: 'The server cannot be reached.', code: 'network' });
    if (!opts.quiet) emit('error', err);
    throw err;
  }
  try {
    if (gen !== generation) throw new ApiError(0, { detail: 'The session changed.', code: 'stale' });
    if (opts.raw && resp.ok) return resp;
    const text = await resp.text();
    let data = null;
    if (text) { try { data = JSON.parse(text); } catch (e) { data = null; } }
    if (!resp.ok) {
      const err = new ApiError(resp.status, data);
      if (resp.status === 401 && !opts.noAuthRedirect) {
        clearSession();
        emit('unauthorized');
      } else if (!opts.quiet) {
        emit('error', err);
      }
      throw err;
    }
    return data;
  } finally {
    if (busy) busyEnd();
  }
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body, opts) => api('POST', path, body === undefined ? {} : body, opts);

/** Logs in; on success the session's CSRF token and who-am-I are known. */
export async function login(username, password) {
  clearSession();
  const s = await api('POST', '/login', { username, password }, { quiet: true, noAuthRedirect: true });
  csrf = s.csrf_token;
  await loadMe();
  return me;
}

/** Reads /me (after a reload the cookie may still be valid; its CSRF token comes back here). */
export async function loadMe() {
  const m = await api('GET', '/me', undefined, { quiet: true, noAuthRedirect: true });
  me = m;
  if (m.csrf_token) csrf = m.csrf_token;
  return me;
}

/** Logs out (the server ends the session) and forgets everything either way. */
export async function logout() {
  try { await api('POST', '/logout', {}, { quiet: true, noAuthRedirect: true }); }
  finally { clearSession(); }
}

/** A per-session memo of a GET (accounts, playbooks, users): cleared with the session. */
export function cached(path) {
  if (!cache.has(path)) {
    const p = get(path).catch((e) => { cache.delete(path); throw e; });
    cache.set(path, p);
  }
  return cache.get(path);
}

/** Forgets one memo after a change that alters it. */
export function uncache(path) { cache.delete(path); }

/**
 * Downloads a file answer (an export's workbook) with the session cookie and hands it to
 * the browser as a download named by Content-Disposition.
 */
export async function download(path, fallbackName) {
  const resp = await api('GET', path, undefined, { raw: true });
  const blob = await resp.blob();
  const cd = resp.headers.get('Content-Disposition') || '';
  const m = /filename="?([^";]+)"?/.exec(cd);
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = m ? m[1] : fallbackName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Describes a change's answer in one sentence (ok, or pending with its command id). */
export function describeAnswer(ans) {
  if (!ans) return 'Done.';
  if (ans.status === 'pending') return `Sent; the service has not answered yet (command ${ans.command_id}).`;
  return ans.message || 'Done.';
}
