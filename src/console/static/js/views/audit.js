import { download, get, post } from '../api.js';
import { field, formValues, h, replace, select, table } from '../dom.js';
import { count, fromLocalInput, localTime } from '../format.js';
import { busy, clearError, errorBox, pager, showError, statusLine } from '../ui.js';

/*
 * Compliance: the audit trail with filters (searched by POST: an ID number
 * stays in the body), the chain's integrity badge, and exports.
 */

const ACTIONS = [
  'verification.created',
  'verification.completed',
  'verification.failed',
  'verification.unknown',
  'verification.viewed',
  'verification.searched',
  'verification.settled',
  'verification.reused',
  'api_key.created',
  'api_key.revoked',
  'client.created',
  'client.updated',
  'auth.failed',
  'auth.denied',
  'reconciliation.created',
  'price.created',
  'pii.purged',
  'pii.rekeyed',
  'audit.searched',
  'audit.exported',
  'audit.checkpoint_signed',
];
const OUTCOMES = ['success', 'failure', 'denied'];

// Ids are UUIDv7 (time first): their tail tells them apart. The full id is in the cell's title.
const short = (id) => (id && id.length > 13 ? `…${id.slice(-8)}` : id);

function actorCell(a) {
  if (!a) return '—';
  const label = a.type === 'api_key' ? `${a.role ?? 'key'} ${short(a.id)}` : [a.type, a.id].filter(Boolean).join(' ');
  return h('span', { class: 'mono', title: [a.type, a.id, a.role].filter(Boolean).join(' ') }, label);
}

/** Details: a one-line summary that opens to the full JSON (keyboard: Enter on the summary). */
function detailsCell(details) {
  if (!details || (typeof details === 'object' && Object.keys(details).length === 0)) return '';
  const text = JSON.stringify(details);
  const brief = Object.entries(details)
    .map(
      ([k, v]) =>
        `${k}: ${Array.isArray(v) && v.every((x) => typeof x !== 'object') ? v.join(' ') : v !== null && typeof v === 'object' ? '…' : v}`,
    )
    .join(', ');
  return h(
    'details',
    { class: 'json' },
    h('summary', {}, brief.length > 60 ? `${brief.slice(0, 60)}…` : brief),
    h('pre', {}, JSON.stringify(details, null, 2).length < 2000 ? JSON.stringify(details, null, 2) : text),
  );
}

/** The events table, shared with the verification page. */
export function auditEventsTable(caption, events) {
  return table(
    caption,
    [
      {
        label: 'Seq',
        num: true,
        cell: (e) => (e.seq === null ? h('span', { title: 'Not sealed yet' }, 'sealing…') : String(e.seq)),
      },
      { label: 'When', cell: (e) => h('span', { class: 'nowrap', title: e.occurred_at }, localTime(e.occurred_at)) },
      { label: 'Actor', cell: (e) => actorCell(e.actor) },
      { label: 'Action', cell: (e) => e.action },
      {
        label: 'Target',
        cell: (e) =>
          e.target?.type
            ? h(
                'span',
                { class: 'mono', title: `${e.target.type} ${e.target.id ?? ''}` },
                `${e.target.type} ${short(e.target.id) ?? ''}`,
              )
            : '—',
      },
      {
        label: 'Outcome',
        cell: (e) => h('span', { class: `badge ${e.outcome === 'success' ? 'ok' : 'bad'}` }, e.outcome),
      },
      {
        label: 'Request',
        cell: (e) => (e.request_id ? h('span', { class: 'mono', title: e.request_id }, short(e.request_id)) : '—'),
      },
      { label: 'Details', class: 'details-cell', cell: (e) => detailsCell(e.details) },
    ],
    events,
  );
}

export function auditView() {
  const badge = h('div', { class: 'integrity', role: 'status', 'aria-live': 'polite' }, 'Checking the chain…');
  const box = errorBox();
  const status = statusLine();
  const results = h('div', {});
  const idCard = h('input', { type: 'text', name: 'id_card', spellcheck: 'false', maxlength: 18 });
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Filter audit events', autocomplete: 'off' },
    field('From', h('input', { type: 'datetime-local', name: 'from', step: 1 }), 'At or after (your time)'),
    field('To', h('input', { type: 'datetime-local', name: 'to', step: 1 }), 'Before (your time)'),
    field('Action', select('action', [['', 'Any'], ...ACTIONS.map((a) => [a, a])])),
    field('Outcome', select('outcome', [['', 'Any'], ...OUTCOMES.map((o) => [o, o])])),
    field('Actor id', h('input', { type: 'text', name: 'actor', spellcheck: 'false' }), 'API key id or system actor'),
    field('Target type', h('input', { type: 'text', name: 'target_type', spellcheck: 'false' }), 'e.g. verification'),
    field('Target id', h('input', { type: 'text', name: 'target_id', spellcheck: 'false' })),
    field('ID number', idCard, 'Events about this person (keyed hash)'),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit' }, 'Search'),
      h('button', { type: 'reset', class: 'secondary' }, 'Clear'),
    ),
  );

  let filters = {};
  const pages = pager('Audit events', async (cursor) => {
    try {
      const page = await post('/v1/audit/events/search', { ...filters, cursor, limit: 50 });
      clearError(box, form);
      status.textContent = page.items.length ? `${page.items.length} event(s) on this page.` : 'No event matches.';
      replace(results, auditEventsTable('Audit events, newest first', page.items));
      return page.next_cursor;
    } catch (err) {
      showError(box, err, form);
      throw err;
    }
  });

  function readFilters() {
    const values = formValues(form);
    const f = { ...values, from: fromLocalInput(values.from), to: fromLocalInput(values.to) };
    for (const k of Object.keys(f)) if (f[k] === undefined) delete f[k];
    return f;
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    filters = readFilters();
    void busy(form.querySelector('button[type=submit]'), null, null, () => pages.first());
  });
  form.addEventListener('reset', () => clearError(box, form));

  const exportStatus = statusLine();
  function exportButton(format) {
    const button = h('button', { type: 'button', class: 'secondary' }, `Export ${format.toUpperCase()}`);
    button.addEventListener('click', () =>
      busy(button, box, form, async () => {
        const f = readFilters();
        if (f.id_card) {
          throw Object.assign(
            new Error('Exports filter by everything but the ID number: clear that field to export.'),
            {
              fieldErrors: [{ field: 'id_card', message: 'is not an export filter' }],
            },
          );
        }
        exportStatus.textContent = `Preparing the ${format.toUpperCase()} export…`;
        const saved = await download('/v1/audit/events/export', { ...f, format }, `idgate-audit.${format}`);
        exportStatus.textContent = `Saved ${saved.name} (${count(saved.size)} bytes).`;
      }).finally(() => {
        if (box.hidden === false) exportStatus.textContent = '';
      }),
    );
    return button;
  }

  const recheck = h('button', { type: 'button', class: 'secondary' }, 'Check again');
  /*
   * The report's status: intact (green); attention (amber: nothing tampered, but evidence is late or
   * missing: checkpoint cadence gaps, a lagging witness); broken (red, the first bad seq). Whatever
   * the status, a signer that stopped signing (it found a segment that does not verify, and raised
   * an alert) is said on a line of its own.
   */
  async function checkIntegrity() {
    badge.className = 'integrity';
    replace(badge, 'Checking the chain…');
    recheck.disabled = true;
    try {
      const r = await get('/v1/audit/integrity');
      const status = r.status ?? (r.ok ? 'intact' : 'broken');
      const tone = status === 'intact' ? 'ok' : status === 'attention' ? 'warn' : 'bad';
      badge.className = `integrity ${tone}`;
      const witnessed = (r.witness ?? []).reduce((n, w) => n + (w.matched ?? 0), 0);
      const witnessText = r.witness?.length ? `, ${count(witnessed)} witness record(s) matched` : '';
      const text =
        status === 'broken'
          ? `Audit chain BROKEN at seq ${r.first_bad_seq ?? '?'}${r.reason ? `: ${r.reason}` : ''} (${count(r.checked)} checked${
              r.fault_count > 1 ? `, ${count(r.fault_count)} faults` : ''
            }).`
          : `Audit chain intact: ${count(r.checked)} event(s) checked${witnessText}.`;
      const lines = [h('span', { 'data-integrity': tone === 'warn' ? 'attention' : tone }, text)];
      for (const a of r.attention ?? [])
        lines.push(h('span', { class: 'detail', 'data-attention': '' }, `Attention: ${a}`));
      const refusal = r.signing?.refusal;
      if (refusal) {
        lines.push(
          h(
            'span',
            { class: 'detail', 'data-signing': 'refused' },
            `Checkpoint signing stopped since ${localTime(refusal.since)}: the chain does not verify at seq ${refusal.seq} ` +
              `(${refusal.reason}). An audit_chain_broken alert was raised.`,
          ),
        );
      } else if (r.signing?.last_alert && status !== 'intact') {
        const a = r.signing.last_alert;
        lines.push(
          h(
            'span',
            { class: 'detail' },
            `Last chain alert ${localTime(a.at)}${a.seq !== null ? ` at seq ${a.seq}` : ''}.`,
          ),
        );
      }
      replace(
        badge,
        h(
          'span',
          { class: `badge ${tone}` },
          status === 'intact' ? 'Intact' : status === 'attention' ? 'Attention' : 'Broken',
        ),
        h('span', { class: 'lines' }, ...lines),
        h('span', { class: 'spacer' }),
        recheck,
      );
    } catch (err) {
      badge.className = 'integrity bad';
      replace(badge, `The integrity check failed: ${err.message}`, h('span', { class: 'spacer' }), recheck);
    } finally {
      recheck.disabled = false;
    }
  }
  recheck.addEventListener('click', () => void checkIntegrity());

  const el = h(
    'section',
    { 'aria-labelledby': 'audit-title' },
    h('h1', { id: 'audit-title' }, 'Audit trail'),
    badge,
    form,
    h('div', { class: 'toolbar' }, exportButton('csv'), exportButton('ndjson'), exportStatus),
    box,
    status,
    results,
    pages.el,
  );

  let started = false;
  return {
    el,
    shown() {
      void checkIntegrity();
      if (!started) {
        started = true;
        void pages.first().catch(() => {});
      }
    },
  };
}
