// SPDX-License-Identifier: Apache-2.0
// The console's entry module: the shell. It finds out who is logged in (GET /me; the
// cookie may outlive a reload), draws the header (pages, who am I, log out), routes the
// hash to a page module, and sends the user back to the login page whenever the API
// answers 401. Every page is a module exporting render(main, route) that may answer a
// cleanup function, called before the next page is drawn.

import * as api from './js/api.js';
import { current, go } from './js/router.js';
import { fill, h, hideBanner, setBusy, showError } from './js/ui.js';
import * as loginPage from './js/login.js';
import * as eventsPage from './js/events.js';
import * as eventPage from './js/event.js';
import * as alertsPage from './js/alerts.js';
import * as rulesPage from './js/rules.js';
import * as responsePage from './js/response.js';
import * as exportsPage from './js/exports.js';
import * as adminPage from './js/admin.js';

const pages = {
  events: eventsPage, alerts: alertsPage, whitelist: rulesPage,
  response: responsePage, exports: exportsPage, admin: adminPage,
};

const main = document.getElementById('main');
let cleanup = null;
let lastPath = '';

api.on('busy', setBusy);
api.on('error', (e) => showError(e.message));
api.on('unauthorized', () => {
  showHeader(false);
  const r = current();
  if (r.path[0] !== 'login') go(['login'], { next: location.hash.slice(1) }, true);
});

document.querySelector('#banner .banner-close').addEventListener('click', hideBanner);
document.getElementById('logout').addEventListener('click', async () => {
  await api.logout().catch(() => {});
  showHeader(false);
  go(['login'], null, true);
});
const navToggle = document.getElementById('nav-toggle');
navToggle.addEventListener('click', () => {
  const open = navToggle.getAttribute('aria-expanded') !== 'true';
  navToggle.setAttribute('aria-expanded', String(open));
  document.getElementById('nav').classList.toggle('open', open);
});

function showHeader(on) {
  const top = document.getElementById('top');
  top.hidden = !on;
  const me = api.currentUser();
  const who = document.getElementById('whoami');
  if (on && me) {
    fill(who, h('span', { class: 'who-name', title: me.display_name || me.user }, me.user),
      ' ', h('span', { class: `badge role-${me.role}` }, me.role));
    document.getElementById('nav-admin').hidden = me.role !== 'admin';
    document.body.classList.toggle('viewer', me.role === 'viewer');
  } else {
    who.replaceChildren();
    document.body.classList.remove('viewer');
  }
}

function markNav(name) {
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.getElementById('nav').classList.remove('open');
  navToggle.setAttribute('aria-expanded', 'false');
}

async function route() {
  const r = current();
  const pathKey = r.path.join('/');
  if (cleanup) { try { cleanup(); } catch (e) { console.error(e); } cleanup = null; }
  if (pathKey !== lastPath) hideBanner();
  lastPath = pathKey;
  if (r.path[0] === 'login') {
    showHeader(false);
    markNav('');
    cleanup = loginPage.render(main, r, () => {
      const next = r.query.get('next');
      if (next && !next.startsWith('/login')) location.hash = '#' + next;
      else go(['events'], null, true);
    }) || null;
    return;
  }
  if (!api.currentUser()) {
    try { await api.loadMe(); }
    catch (e) {
      if (e.status !== 401) showError(e.message);
      go(['login'], { next: location.hash.slice(1) }, true);
      return;
    }
  }
  showHeader(true);
  let name = r.path[0] || 'events';
  if (name === 'events' && r.path[1]) {
    markNav('events');
    cleanup = eventPage.render(main, r) || null;
    return;
  }
  if (!pages[name]) { go(['events'], null, true); return; }
  if (name === 'admin' && !api.isAdmin()) name = 'events';
  markNav(name);
  cleanup = pages[name].render(main, r) || null;
}

window.addEventListener('hashchange', () => { route().catch((e) => showError(e.message)); });
route().catch((e) => showError(e.message));
