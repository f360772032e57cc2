import { allPages, get, post } from '../api.js';
import { field, formValues, h, replace, select, table } from '../dom.js';
import { chargedText, fromLocalInput, localTime, money, RESULT_LABELS, resultText, shortId } from '../format.js';
import { busy, clearError, errorBox, pager, showError, statusLine } from '../ui.js';
import { auditEventsTable } from './audit.js';

/*
 * Compliance: the newest verifications on open, search them (always by POST, so
 * neither an ID number nor any other filter reaches a URL), page through them,
 * open one. Lists are asked for masked (view=masked), so browsing is no read of
 * personal data; opening a record shows it in full, and that read is audited.
 */

const RESULT_OPTIONS = [
  ['', 'Any'],
  ...Object.entries(RESULT_LABELS)
    .sort((a, b) => Number(b[0]) - Number(a[0]))
    .map(([c, l]) => [c, `${c} ${l}`]),
];
const STATUS_OPTIONS = [
  ['', 'Any'],
  ['completed', 'completed'],
  ['pending', 'pending'],
  ['failed', 'failed'],
  ['unknown', 'unknown'],
];
const CHARGED_OPTIONS = [
  ['', 'Any'],
  ['true', 'charged'],
  ['false', 'not charged'],
  ['unknown', 'unknown'],
];

/** Audit actions that change a verification's state (its history). */
const STATE_ACTIONS = new Set([
  'verification.created',
  'verification.completed',
  'verification.failed',
  'verification.unknown',
  'verification.settled',
  'verification.reused',
]);

export function verificationsView() {
  const box = errorBox();
  const status = statusLine();
  const results = h('div', {});
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Search verifications', autocomplete: 'off' },
    field('From', h('input', { type: 'datetime-local', name: 'from', step: 1 }), 'Created at or after (your time)'),
    field('To', h('input', { type: 'datetime-local', name: 'to', step: 1 }), 'Created before (your time)'),
    field('Result', select('result', RESULT_OPTIONS)),
    field('Status', select('status', STATUS_OPTIONS)),
    field('Charged', select('charged', CHARGED_OPTIONS)),
    field('Client id', h('input', { type: 'text', name: 'client', spellcheck: 'false' })),
    field('Reference', h('input', { type: 'text', name: 'reference', spellcheck: 'false' })),
    field(
      'ID number (exact)',
      h('input', { type: 'text', name: 'id_card', inputmode: 'text', spellcheck: 'false', maxlength: 64 }),
      'Matched by keyed hash. Each search (and page) by ID number or name is audited and counts against your hourly budget.',
    ),
    field(
      'Name (exact)',
      h('input', { type: 'text', name: 'name', spellcheck: 'false', maxlength: 200 }),
      'Matched by keyed hash; counts against the same budget.',
    ),
    field(
      'Rows per page',
      select(
        'limit',
        ['5', '10', '25', '50', '100'].map((n) => [n, n]),
        '25',
      ),
    ),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit' }, 'Search'),
      h('button', { type: 'reset', class: 'secondary' }, 'Clear'),
    ),
  );

  // Lists are masked: what a page shows is what finance sees, and no read of personal data is audited.
  let filters = { limit: 25, view: 'masked' };
  const pages = pager('Verification results', async (cursor) => {
    try {
      const page = await post('/v1/verifications/search', { ...filters, cursor });
      renderResults(page.items);
      clearError(box, form);
      return page.next_cursor;
    } catch (err) {
      showError(box, err, form);
      throw err;
    }
  });

  function renderResults(items) {
    status.textContent = items.length
      ? `${items.length} verification(s) on this page. Names and ID numbers are masked here; open a record to see it in full (that read is audited).`
      : 'No verification matches.';
    replace(
      results,
      table(
        'Verifications, newest first',
        [
          {
            label: 'Created',
            cell: (v) => h('span', { class: 'nowrap', title: v.created_at }, localTime(v.created_at)),
          },
          { label: 'Name', cell: (v) => v.name || '—' },
          { label: 'ID number', cell: (v) => h('span', { class: 'mono' }, v.id_card || '—') },
          { label: 'Result', cell: (v) => resultText(v.result) },
          { label: 'Status', cell: (v) => v.status },
          { label: 'Charge', cell: (v) => chargedText(v) },
          { label: 'Amount', num: true, cell: (v) => money(v.amount, v.currency) },
          { label: 'Reference', cell: (v) => v.reference ?? '—' },
          { label: 'Client', cell: (v) => h('span', { class: 'mono', title: v.client_id }, shortId(v.client_id)) },
          {
            label: 'Record',
            cell: (v) =>
              h(
                'button',
                {
                  type: 'button',
                  class: 'link',
                  'aria-label': `Open verification ${v.id}`,
                  onclick: () => openDetail(v.id),
                },
                'Open',
              ),
          },
        ],
        items,
      ),
    );
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const values = formValues(form);
    filters = {
      ...values,
      from: fromLocalInput(values.from),
      to: fromLocalInput(values.to),
      limit: Number(values.limit),
      view: 'masked',
    };
    for (const k of Object.keys(filters)) if (filters[k] === undefined) delete filters[k];
    const button = form.querySelector('button[type=submit]');
    void busy(button, null, null, () => pages.first());
  });
  form.addEventListener('reset', () => {
    clearError(box, form);
  });

  const listPanel = h(
    'section',
    { 'aria-labelledby': 'verifications-title' },
    h('h1', { id: 'verifications-title' }, 'Verifications'),
    form,
    box,
    status,
    results,
    pages.el,
  );
  const detailPanel = h('section', { 'aria-labelledby': 'verification-title', hidden: true });
  const el = h('div', {}, listPanel, detailPanel);

  function backToList() {
    detailPanel.hidden = true;
    detailPanel.replaceChildren();
    listPanel.hidden = false;
    form.querySelector('input')?.focus();
  }

  async function openDetail(id) {
    listPanel.hidden = true;
    detailPanel.hidden = false;
    const detailBox = errorBox();
    const back = h('button', { type: 'button', class: 'secondary', onclick: backToList }, '← Back to results');
    const body = h('div', {}, h('p', { class: 'status-line' }, 'Loading…'));
    replace(
      detailPanel,
      h('div', { class: 'toolbar' }, back),
      h('h1', { id: 'verification-title', tabindex: '-1' }, 'Verification'),
      detailBox,
      body,
    );
    back.focus();
    try {
      // This read is audited by the API (compliance sees the full record).
      const v = await get(`/v1/verifications/${encodeURIComponent(id)}`);
      const { items: events, complete } = await allPages((cursor) =>
        get('/v1/audit/events', { target_type: 'verification', target_id: id, cursor, limit: 200 }),
      );
      renderDetail(body, v, events, complete);
    } catch (err) {
      body.replaceChildren();
      showError(detailBox, err);
    }
  }

  function renderDetail(body, v, events, complete) {
    const rows = [
      ['Id', h('code', {}, v.id)],
      ['Status', v.status],
      ['Result', resultText(v.result)],
      ['Description', v.description ?? '—'],
      ['Charge', v.charge_status.replace('_', ' ')],
      ['Amount', money(v.amount, v.currency)],
      ['Reused', v.reused ? 'yes' : 'no'],
      ['Name', v.name || '—'],
      ['ID number', h('span', { class: 'mono' }, v.id_card || '—')],
      ['Sex', v.sex || '—'],
      ['Nation', v.nation || '—'],
      ['Birth', v.birth || '—'],
      ['Address', v.address || '—'],
      ['Reference', v.reference ?? '—'],
      ['Client', h('code', {}, v.client_id)],
      ['Upstream trace id', v.upstream_trace_id ? h('code', {}, v.upstream_trace_id) : '—'],
      ['Created', `${localTime(v.created_at)} (${v.created_at})`],
      ['Completed', v.completed_at ? `${localTime(v.completed_at)} (${v.completed_at})` : '—'],
    ];
    const record = h(
      'dl',
      { class: 'record' },
      rows.map(([k, val]) => [h('dt', {}, k), h('dd', {}, val)]),
    );
    const history = events.filter((e) => STATE_ACTIONS.has(e.action)).sort(byTime);
    const timeline = history.length
      ? h(
          'ol',
          { class: 'timeline' },
          history.map((e) =>
            h(
              'li',
              {},
              h('strong', {}, stateLabel(e)),
              ' · ',
              h('span', { title: e.occurred_at }, localTime(e.occurred_at)),
              h('div', { class: 'details-cell' }, summarize(e.details)),
            ),
          ),
        )
      : h('p', {}, 'No state changes recorded.');
    replace(
      body,
      h(
        'div',
        { class: 'columns' },
        h('div', {}, h('h2', {}, 'Record'), record),
        h('div', {}, h('h2', {}, 'State history'), timeline),
      ),
      h('h2', {}, 'Audit events'),
      complete
        ? null
        : h('p', { class: 'notice' }, 'Only the newest 4,000 events are shown; use the audit trail for the rest.'),
      auditEventsTable(
        `${events.length} event(s) about this verification, newest first (your view is one of them)`,
        events,
      ),
    );
    const title = detailPanel.querySelector('h1');
    title.textContent = `Verification ${v.id}`;
  }

  let started = false;
  return {
    el,
    shown() {
      // The newest verifications on open (masked: opening the page reads no personal data).
      if (!started) {
        started = true;
        void pages.first().catch(() => {});
      }
    },
  };
}

function byTime(a, b) {
  return a.occurred_at < b.occurred_at ? -1 : a.occurred_at > b.occurred_at ? 1 : (a.seq ?? 0) - (b.seq ?? 0);
}

function stateLabel(e) {
  const status = e.details?.status;
  const verb = e.action.replace('verification.', '');
  return status && status !== verb ? `${verb} → ${status}` : verb;
}

function summarize(details) {
  if (!details || typeof details !== 'object') return '';
  return Object.entries(details)
    .filter(([, v]) => v !== null && typeof v !== 'object')
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
}
