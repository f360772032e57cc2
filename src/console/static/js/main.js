/* global document */
import { ApiError, get, session, setUnauthorizedHandler } from './api.js';
import { field, h, replace } from './dom.js';
import { errorBox, showError } from './ui.js';
import { verificationsView } from './views/verifications.js';
import { auditView } from './views/audit.js';
import { usageView } from './views/usage.js';
import { reconciliationView } from './views/reconciliation.js';

/*
 * The console shell: sign-in, the sections the key's role may use, sign-out.
 * Navigation is in-memory only: nothing (least of all an ID number) is put in
 * the URL or the browser history.
 */

const SECTIONS = [
  { id: 'verifications', label: 'Verifications', roles: ['compliance'], view: verificationsView },
  { id: 'audit', label: 'Audit trail', roles: ['compliance'], view: auditView },
  { id: 'usage', label: 'Usage', roles: ['finance', 'admin'], view: usageView },
  { id: 'reconciliation', label: 'Reconciliation', roles: ['finance'], view: reconciliationView },
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const whoText = document.getElementById('who-text');

const state = { me: null, section: null, views: new Map() };

function sectionsFor(role) {
  return SECTIONS.filter((s) => s.roles.includes(role));
}

function signOut(message) {
  session.clear();
  state.me = null;
  state.section = null;
  state.views.clear();
  nav.replaceChildren();
  nav.hidden = true;
  who.hidden = true;
  whoText.textContent = '';
  renderSignIn(message);
}

function renderSignIn(message) {
  const box = errorBox();
  const input = h('input', {
    type: 'password',
    name: 'key',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    placeholder: 'idg_live_…',
  });
  void keyPlaceholder().then((text) => {
    if (text) input.placeholder = text;
  });
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    { 'aria-labelledby': 'signin-title', novalidate: true },
    field('API key', input, 'Kept in this browser tab only, and cleared when you sign out or close the tab.'),
    button,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      showError(
        box,
        new ApiError(400, { detail: 'Enter your API key.', errors: [{ field: 'key', message: 'is required' }] }),
        form,
      );
      input.focus();
      return;
    }
    button.disabled = true;
    try {
      const me = await get('/v1/me', undefined, { key });
      if (!sectionsFor(me.role).length) {
        showError(
          box,
          new ApiError(403, { detail: `This console is for compliance and finance staff; this is a ${me.role} key.` }),
          form,
        );
        return;
      }
      session.save(key);
      input.value = '';
      start(me);
    } catch (err) {
      showError(box, err.status === 401 ? new ApiError(401, { detail: err.message || 'Unknown API key.' }) : err, form);
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  const notice = message ? h('p', { class: 'notice', role: 'status' }, message) : null;
  replace(
    main,
    h(
      'section',
      { class: 'signin' },
      h('h1', { id: 'signin-title' }, 'Sign in to the idgate console'),
      h('p', {}, 'Compliance and finance staff: sign in with your idgate API key.'),
      notice,
      box,
      form,
    ),
  );
  input.focus();
}

/** The key prefix this instance issues: idg_test_ when it runs the sandbox (its readiness report says which). */
async function keyPlaceholder() {
  try {
    const res = await fetch('/health/ready', { headers: { Accept: 'application/json' }, cache: 'no-store' });
    const mode = (await res.json())?.upstream?.mode;
    return mode === 'sandbox' ? 'idg_test_…' : mode === 'vendor' ? 'idg_live_…' : null;
  } catch {
    return null;
  }
}

function start(me) {
  state.me = me;
  whoText.textContent = `Signed in as ${me.role} (${me.prefix})`;
  who.hidden = false;
  const sections = sectionsFor(me.role);
  replace(
    nav,
    sections.map((s) => h('button', { type: 'button', 'data-section': s.id, onclick: () => show(s.id) }, s.label)),
  );
  nav.hidden = false;
  show(sections[0].id);
}

/** Opens a section (views keep their state while the session lasts). */
function show(id, arg) {
  const section = SECTIONS.find((s) => s.id === id);
  if (!section || !state.me || !section.roles.includes(state.me.role)) return;
  state.section = id;
  for (const b of nav.querySelectorAll('button')) {
    if (b.dataset.section === id) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  let view = state.views.get(id);
  if (!view) {
    view = section.view({ me: state.me, navigate: show });
    state.views.set(id, view);
  }
  replace(main, view.el);
  view.shown?.(arg);
  document.title = `${section.label} · idgate console`;
  main.focus();
}

document.getElementById('sign-out').addEventListener('click', () => signOut('You are signed out.'));
setUnauthorizedHandler((problem) =>
  signOut(`Signed out: ${(problem?.detail || 'the API no longer accepts this key').replace(/\.$/, '')}.`),
);

async function boot() {
  const key = session.key();
  if (!key) return renderSignIn();
  try {
    start(await get('/v1/me'));
  } catch (err) {
    if (err.status !== 401) renderSignIn(err.message);
  }
}

void boot();
