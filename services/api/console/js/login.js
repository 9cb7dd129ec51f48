// SPDX-License-Identifier: Apache-2.0
// The login page: user name and password, POST /api/v1/login. The API's detail sentence
// (wrong password, locked, too many attempts) is shown under the form.

import * as api from './api.js';
import { fill, h } from './ui.js';

/** Draws the login form; onDone() is called once logged in. */
export function render(main, route, onDone) {
  api.clearSession();
  const user = h('input', { id: 'login-user', name: 'username', autocomplete: 'username', required: true, maxlength: 64 });
  const pass = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: 1024 });
  const err = h('p', { id: 'login-error', class: 'form-error', role: 'alert' });
  const btn = h('button', { type: 'submit', class: 'primary', id: 'login-submit' }, 'Log in');
  const form = h('form', { class: 'login-form', 'aria-labelledby': 'login-title', novalidate: true },
    h('h1', { id: 'login-title' }, 'Log in to the CWPP console'),
    h('div', { class: 'field' }, h('label', { for: 'login-user' }, 'User name'), user),
    h('div', { class: 'field' }, h('label', { for: 'login-password' }, 'Password'), pass),
    err, btn);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    if (!user.value || !pass.value) { err.textContent = 'Enter your user name and password.'; return; }
    btn.disabled = true;
    try {
      await api.login(user.value.trim(), pass.value);
      pass.value = '';
      onDone();
    } catch (ex) {
      err.textContent = ex.message;
      pass.value = '';
      pass.focus();
    } finally {
      btn.disabled = false;
    }
  });
  fill(main, h('section', { class: 'login-page' }, form));
  user.focus();
}
