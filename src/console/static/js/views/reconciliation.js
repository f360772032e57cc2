/* global FormData */
import { download, get, request } from '../api.js';
import { field, h, replace, select, table } from '../dom.js';
import { count, localTime, money, resultText } from '../format.js';
import { busy, clearError, errorBox, pager, showError, statusLine } from '../ui.js';

/*
 * Finance: upload the vendor's statement, read the reconciliation summary,
 * page through its lines by status, export them as CSV.
 */

const STATUSES = [
  ['matched', 'Matched'],
  ['missing_internal', 'On the bill, not ours'],
  ['missing_vendor', 'Ours, not on the bill'],
  ['charge_mismatch', 'Charge mismatch'],
  ['amount_mismatch', 'Amount mismatch'],
  ['result_mismatch', 'Result mismatch'],
  ['duplicate', 'Billed twice'],
  ['malformed', 'Malformed line'],
  ['not_billed', 'Unknown, not billed'],
];
const NOT_DIFFERENCES = new Set(['matched', 'not_billed']);

export function reconciliationView() {
  const box = errorBox();
  const status = statusLine();
  const fileInput = h('input', { type: 'file', name: 'file', accept: '.csv,text/csv', required: true });
  const upload = h('button', { type: 'submit' }, 'Upload and reconcile');
  const fileField = field('Vendor statement (CSV)', fileInput, 'Columns: trace_id, called_at, result, charged, amount');
  fileField.classList.add('wide');
  const uploadForm = h(
    'form',
    { class: 'filters', 'aria-label': 'Upload a vendor statement' },
    fileField,
    field('Period from (optional)', h('input', { type: 'date', name: 'from' }), 'Default: the statement’s own dates'),
    field('Period to (optional)', h('input', { type: 'date', name: 'to' }), 'Exclusive'),
    h('div', { class: 'actions' }, upload),
  );
  const idInput = h('input', { type: 'text', name: 'id', spellcheck: 'false', autocomplete: 'off', size: 38 });
  const openButton = h('button', { type: 'submit', class: 'secondary' }, 'Open');
  const openForm = h(
    'form',
    { class: 'filters', 'aria-label': 'Open an earlier reconciliation' },
    field('Reconciliation id', idInput),
    h('div', { class: 'actions' }, openButton),
  );

  const report = h('div', {});
  let current = null;
  let statusFilter = '';

  uploadForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void busy(upload, box, uploadForm, async () => {
      const file = fileInput.files?.[0];
      if (!file) {
        throw Object.assign(new Error('Choose the vendor statement file.'), {
          fieldErrors: [{ field: 'file', message: 'is required' }],
        });
      }
      status.textContent = `Reconciling ${file.name}…`;
      const form = new FormData();
      // Period fields go before the file part (the API streams the file).
      for (const name of ['from', 'to']) {
        const v = uploadForm.elements.namedItem(name).value;
        if (v) form.append(name, v);
      }
      form.append('file', file, file.name);
      try {
        const rec = await request('POST', '/v1/billing/reconciliations', { form });
        status.textContent = `Reconciled ${file.name}.`;
        show(rec);
      } catch (err) {
        status.textContent = '';
        throw err;
      }
    });
  });

  openForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void busy(openButton, box, openForm, async () => {
      const id = idInput.value.trim();
      if (!id) {
        throw Object.assign(new Error('Enter a reconciliation id.'), {
          fieldErrors: [{ field: 'id', message: 'is required' }],
        });
      }
      show(await get(`/v1/billing/reconciliations/${encodeURIComponent(id)}`));
    });
  });

  const itemsBox = errorBox();
  const items = h('div', {});
  const statusSelect = select('status', [['', 'All statuses'], ...STATUSES]);
  const exportButton = h('button', { type: 'button', class: 'secondary' }, 'Export CSV');
  const pages = pager('Reconciliation lines', async (cursor) => {
    try {
      const page = await get(`/v1/billing/reconciliations/${current.id}/items`, {
        status: statusFilter,
        cursor,
        limit: 50,
      });
      clearError(itemsBox);
      renderItems(page.items);
      return page.next_cursor;
    } catch (err) {
      showError(itemsBox, err);
      throw err;
    }
  });
  statusSelect.addEventListener('change', () => {
    statusFilter = statusSelect.value;
    syncPressed();
    void pages.first().catch(() => {});
  });
  exportButton.addEventListener('click', () =>
    busy(exportButton, itemsBox, null, () =>
      download(
        `/v1/billing/reconciliations/${current.id}/export`,
        { format: 'csv', status: statusFilter },
        `reconciliation-${current.id}.csv`,
      ),
    ),
  );

  let summaryButtons = [];
  function syncPressed() {
    for (const b of summaryButtons) b.setAttribute('aria-pressed', String(b.dataset.status === statusFilter));
  }

  function show(rec) {
    current = rec;
    statusFilter = '';
    statusSelect.value = '';
    const c = rec.counts ?? {};
    const byStatus = rec.amounts?.by_status ?? {};
    summaryButtons = [['', 'All lines'], ...STATUSES].map(([s, label]) => {
      const n =
        s === ''
          ? Object.entries(c)
              .filter(([k]) => k !== 'differences')
              .reduce((t, [, v]) => t + v, 0)
          : (c[s] ?? 0);
      const b = h(
        'button',
        {
          type: 'button',
          'data-status': s,
          class: s && !NOT_DIFFERENCES.has(s) && n > 0 ? 'diff' : undefined,
          'aria-pressed': 'false',
          onclick: () => {
            statusFilter = s;
            statusSelect.value = s;
            syncPressed();
            void pages.first().catch(() => {});
          },
        },
        h('span', { class: 'count' }, count(n)),
        h('span', { class: 'label' }, label),
      );
      return b;
    });
    const verdict =
      (c.differences ?? 0) === 0
        ? h('p', { class: 'badge ok', role: 'status' }, 'The statement reconciles: no differences.')
        : h('p', { class: 'badge bad', role: 'status' }, `${count(c.differences)} difference(s) to look into.`);
    const amounts = rec.amounts ?? {};
    const amountRows = STATUSES.filter(([s]) => byStatus[s]).map(([s, label]) => ({ s, label, ...byStatus[s] }));
    replace(
      report,
      h('h2', { id: 'rec-title', tabindex: '-1' }, `Reconciliation ${rec.id}`),
      h(
        'dl',
        { class: 'record' },
        h('dt', {}, 'Run at'),
        h('dd', {}, `${localTime(rec.created_at)} (${rec.created_at})`),
        h('dt', {}, 'Statement'),
        h(
          'dd',
          {},
          `${count(rec.line_count)} line(s), ${count(rec.file_bytes)} bytes, SHA-256 `,
          h('code', {}, rec.file_sha256 ?? ''),
        ),
        h('dt', {}, 'Period'),
        h(
          'dd',
          {},
          rec.period?.from
            ? `${localTime(rec.period.from)} – ${localTime(rec.period.to)} (${rec.period.source === 'explicit' ? 'as given' : 'from the statement'})`
            : 'none',
        ),
        h('dt', {}, 'Vendor total'),
        h('dd', {}, money(amounts.vendor_total, rec.currency)),
        h('dt', {}, 'Our total'),
        h('dd', {}, money(amounts.internal_total, rec.currency)),
        h('dt', {}, 'Difference'),
        h('dd', {}, money(amounts.difference, rec.currency)),
        h('dt', {}, 'Settled unknown calls'),
        h('dd', {}, `${count(rec.settled?.charged)} charged, ${count(rec.settled?.not_charged)} not charged`),
      ),
      verdict,
      h(
        'div',
        { class: 'summary-grid', role: 'group', 'aria-label': 'Lines by status: choose one to list its lines' },
        summaryButtons,
      ),
      amountRows.length
        ? table(
            'Amounts by status',
            [
              { label: 'Status', cell: (r) => r.label },
              { label: 'Vendor', num: true, cell: (r) => money(r.vendor, rec.currency) },
              { label: 'Ours', num: true, cell: (r) => money(r.internal, rec.currency) },
            ],
            amountRows,
          )
        : null,
      h('h2', {}, 'Lines'),
      h('div', { class: 'toolbar' }, field('Show', statusSelect), h('span', { class: 'spacer' }), exportButton),
      itemsBox,
      items,
      pages.el,
    );
    syncPressed();
    report.querySelector('#rec-title').focus();
    void pages.first().catch(() => {});
  }

  function stacked(first, second) {
    return h('span', { class: 'stacked' }, h('span', {}, first), h('span', { class: 'sub' }, second));
  }

  function renderItems(list) {
    replace(
      items,
      table(
        list.length ? `${list.length} line(s) on this page` : 'No line with this status',
        [
          { label: '#', num: true, cell: (i) => (i.line_no === null ? '—' : String(i.line_no)) },
          {
            label: 'Status',
            cell: (i) => h('span', { class: `badge ${NOT_DIFFERENCES.has(i.status) ? 'ok' : 'bad'}` }, i.status),
          },
          { label: 'Trace id', cell: (i) => h('span', { class: 'mono' }, i.trace_id ?? '—') },
          {
            label: 'Called at',
            cell: (i) =>
              i.called_at ? h('span', { class: 'nowrap', title: i.called_at }, localTime(i.called_at)) : '—',
          },
          // Each side in one stacked cell (result, then charge · amount): twelve columns overflowed at 1,280 px.
          {
            label: 'Vendor',
            cell: (i) =>
              stacked(
                resultText(i.vendor_result),
                i.vendor_charged === null && i.vendor_amount === null
                  ? ''
                  : `${i.vendor_charged === null ? '—' : i.vendor_charged ? 'charged' : 'not charged'} · ${money(i.vendor_amount, current.currency)}`,
              ),
          },
          {
            label: 'Ours',
            cell: (i) =>
              stacked(
                resultText(i.internal_result),
                i.internal_charge_status === null && i.internal_amount === null
                  ? ''
                  : `${i.internal_charge_status ?? '—'} · ${money(i.internal_amount, current.currency)}`,
              ),
          },
          { label: 'Settled', cell: (i) => i.settlement ?? '' },
          { label: 'Problem', cell: (i) => i.problem ?? '' },
        ],
        list,
      ),
    );
  }

  const el = h(
    'section',
    { 'aria-labelledby': 'reconciliation-title' },
    h('h1', { id: 'reconciliation-title' }, 'Reconciliation'),
    uploadForm,
    openForm,
    box,
    status,
    report,
  );
  return { el };
}
