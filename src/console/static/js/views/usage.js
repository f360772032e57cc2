/* global window */
import { download, get } from '../api.js';
import { field, h, replace, table, uid } from '../dom.js';
import { addDays, count, dateInZone, daysBetween, money, RESULT_LABELS, toMajor } from '../format.js';
import { busy, clearError, errorBox, statusLine } from '../ui.js';

/*
 * Finance: calls per day stacked by result code, charged calls, and the amount
 * on a second axis, for a range of days in a chosen time zone; then usage by
 * client. The usage API groups by one dimension at a time, so the per-result
 * stack is one `group_by=result` query per day (bounded, a few at a time).
 */

const MAX_STACKED_DAYS = 92;
const PARALLEL = 4;

const RESULT_COLORS = {
  0: '#2da44e',
  '-1': '#cf222e',
  '-2': '#bf8700',
  '-3': '#fb8500',
  '-4': '#8250df',
  '-5': '#0969da',
  '-6': '#57606a',
  '-7': '#e85aad',
};
const OTHER_COLORS = ['#6e7781', '#8c959f', '#afb8c1', '#424a53'];

function keyLabel(key) {
  return RESULT_LABELS[key] ? `${key} ${RESULT_LABELS[key]}` : key;
}

async function mapLimited(list, limit, fn) {
  const out = new Array(list.length);
  let next = 0;
  async function worker() {
    while (next < list.length) {
      const i = next;
      next += 1;
      out[i] = await fn(list[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, list.length) }, worker));
  return out;
}

function timeZones() {
  try {
    return Intl.supportedValuesOf('timeZone');
  } catch {
    return ['UTC', 'Asia/Shanghai'];
  }
}

export function usageView() {
  const defaultTz = 'Asia/Shanghai';
  const fromInput = h('input', { type: 'date', name: 'from', required: true, value: dateInZone(defaultTz, -13) });
  const lastInput = h('input', { type: 'date', name: 'to', required: true, value: dateInZone(defaultTz, 0) });
  const listId = uid('zones');
  const tzInput = h('input', {
    type: 'text',
    name: 'tz',
    list: listId,
    required: true,
    value: defaultTz,
    spellcheck: 'false',
  });
  const zones = h(
    'datalist',
    { id: listId },
    ['UTC', ...timeZones()].map((z) => h('option', { value: z })),
  );
  const box = errorBox();
  const status = statusLine();
  const submit = h('button', { type: 'submit' }, 'Show usage');
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Usage period' },
    field('First day', fromInput),
    field('Last day', lastInput, 'Included'),
    field('Time zone', tzInput, 'Day boundaries, e.g. Asia/Shanghai'),
    zones,
    h('div', { class: 'actions' }, submit),
  );

  const canvas = h('canvas', { role: 'img', 'aria-label': 'Usage chart' });
  const chartBox = h('div', { class: 'chart-box', hidden: true }, canvas);
  const chartNote = h('p', { class: 'status-line' });
  const dayTable = h('div', {});
  const clientTable = h('div', {});
  let chart = null;
  let period = null;

  function csvButton(label, groupBy) {
    const button = h('button', { type: 'button', class: 'secondary', disabled: true }, label);
    button.addEventListener('click', () =>
      busy(button, box, form, () =>
        download('/v1/billing/usage', { ...period, group_by: groupBy, format: 'csv' }, `usage-${groupBy}.csv`),
      ),
    );
    return button;
  }
  const dayCsv = csvButton('Export days (CSV)', 'day');
  const clientCsv = csvButton('Export clients (CSV)', 'client');

  async function load() {
    const tz = tzInput.value.trim();
    const first = fromInput.value;
    const last = lastInput.value;
    if (!first || !last || last < first) {
      throw Object.assign(new Error('Choose a first day on or before the last day.'), {
        fieldErrors: [{ field: 'to', message: 'must not be before the first day' }],
      });
    }
    period = { from: first, to: addDays(last, 1), tz };
    status.textContent = 'Loading usage…';
    const [byDay, byClient] = await Promise.all([
      get('/v1/billing/usage', { ...period, group_by: 'day' }),
      get('/v1/billing/usage', { ...period, group_by: 'client' }),
    ]);
    const days = daysBetween(period.from, period.to);
    let perDay = null;
    if (days.length <= MAX_STACKED_DAYS) {
      perDay = await mapLimited(days, PARALLEL, (d) =>
        get('/v1/billing/usage', { from: d, to: addDays(d, 1), tz, group_by: 'result' }),
      );
    }
    renderChart(days, byDay, perDay);
    renderDayTable(days, byDay);
    renderClientTable(byClient);
    dayCsv.disabled = false;
    clientCsv.disabled = false;
    const total = byDay.totals?.[0];
    status.textContent = total
      ? `${count(total.calls)} call(s), ${count(total.charged_calls)} charged, ${money(total.amount, total.currency)} from ${first} to ${last} (${tz}).`
      : `No calls from ${first} to ${last} (${tz}).`;
  }

  function renderChart(days, byDay, perDay) {
    const Chart = window.Chart;
    const dayItems = new Map(byDay.items.map((i) => [i.key, i]));
    const currency = byDay.totals?.[0]?.currency ?? byDay.items[0]?.currency ?? 'CNY';
    const datasets = [];
    if (perDay) {
      const keys = [...new Set(perDay.flatMap((r) => r.items.map((i) => i.key)))].sort((a, b) => {
        const na = Number(a);
        const nb = Number(b);
        if (Number.isNaN(na) || Number.isNaN(nb)) return Number.isNaN(na) - Number.isNaN(nb) || a.localeCompare(b);
        return nb - na;
      });
      let other = 0;
      for (const key of keys) {
        const color = RESULT_COLORS[key] ?? OTHER_COLORS[other++ % OTHER_COLORS.length];
        datasets.push({
          type: 'bar',
          label: keyLabel(key),
          data: perDay.map((r) => r.items.filter((i) => i.key === key).reduce((s, i) => s + i.calls, 0)),
          backgroundColor: color,
          stack: 'calls',
          yAxisID: 'y',
          order: 2,
        });
      }
      chartNote.textContent = 'Bars: calls per day by result code (or status while there is no result).';
    } else {
      datasets.push({
        type: 'bar',
        label: 'Calls',
        data: days.map((d) => dayItems.get(d)?.calls ?? 0),
        backgroundColor: '#0969da',
        stack: 'calls',
        yAxisID: 'y',
        order: 2,
      });
      chartNote.textContent = `Over ${MAX_STACKED_DAYS} days: bars show all calls, not split by result code.`;
    }
    datasets.push({
      type: 'line',
      label: 'Charged calls',
      data: days.map((d) => dayItems.get(d)?.charged_calls ?? 0),
      borderColor: '#1b1f24',
      backgroundColor: '#1b1f24',
      stack: 'charged',
      yAxisID: 'y',
      order: 1,
    });
    datasets.push({
      type: 'line',
      label: `Amount (${currency})`,
      data: days.map((d) => toMajor(dayItems.get(d)?.amount ?? 0, currency)),
      borderColor: '#d4a72c',
      backgroundColor: '#d4a72c',
      borderDash: [6, 4],
      stack: 'amount',
      yAxisID: 'y1',
      order: 0,
    });
    canvas.setAttribute(
      'aria-label',
      `Calls per day from ${days[0]} to ${days[days.length - 1]}, stacked by result, with charged calls and amount; the same numbers are in the table below.`,
    );
    chartBox.hidden = false;
    if (chart) chart.destroy();
    if (!Chart) {
      chartNote.textContent = 'The chart library did not load; the numbers are in the table below.';
      return;
    }
    chart = new Chart(canvas, {
      data: { labels: days, datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: 'index', intersect: false },
        plugins: { legend: { position: 'bottom' } },
        scales: {
          x: { stacked: true },
          y: { stacked: true, beginAtZero: true, title: { display: true, text: 'Calls' }, ticks: { precision: 0 } },
          y1: {
            position: 'right',
            beginAtZero: true,
            grid: { drawOnChartArea: false },
            title: { display: true, text: `Amount (${currency})` },
          },
        },
      },
    });
  }

  function renderDayTable(days, byDay) {
    const items = new Map(byDay.items.map((i) => [i.key, i]));
    const rows = days.map((d) => items.get(d) ?? { key: d, calls: 0, charged_calls: 0, unknown_calls: 0, amount: 0 });
    const totals = byDay.totals?.[0];
    replace(dayTable, h('h2', {}, 'By day'), numbersTable('Usage per day', 'Day', rows, totals));
  }

  function renderClientTable(byClient) {
    replace(
      clientTable,
      h('h2', {}, 'By client'),
      byClient.items.length
        ? numbersTable('Usage per client', 'Client id', byClient.items, byClient.totals?.[0])
        : h('p', {}, 'No calls in this period.'),
    );
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void busy(submit, box, form, load).then(() => {
      if (!box.hidden) status.textContent = '';
    });
  });

  const el = h(
    'section',
    { 'aria-labelledby': 'usage-title' },
    h('h1', { id: 'usage-title' }, 'Usage'),
    form,
    box,
    status,
    chartBox,
    chartNote,
    h('div', { class: 'toolbar' }, dayCsv, clientCsv),
    dayTable,
    clientTable,
  );
  let started = false;
  return {
    el,
    shown() {
      if (started) return;
      started = true;
      clearError(box, form);
      void busy(submit, box, form, load);
    },
  };
}

function numbersTable(caption, keyLabelText, rows, totals) {
  const currencyOf = (r) => r.currency ?? totals?.currency ?? 'CNY';
  const columns = [
    { label: keyLabelText, key: 'key', cell: (r) => h('span', { class: 'mono' }, r.key) },
    { label: 'Calls', num: true, key: 'calls', cell: (r) => count(r.calls) },
    { label: 'Charged calls', num: true, key: 'charged_calls', cell: (r) => count(r.charged_calls) },
    { label: 'Unknown charge', num: true, key: 'unknown_calls', cell: (r) => count(r.unknown_calls) },
    { label: 'Amount', num: true, key: 'amount', cell: (r) => money(r.amount, currencyOf(r)) },
  ];
  return table(
    caption,
    columns,
    rows,
    totals
      ? (c) =>
          c.key === 'key' ? 'Total' : c.key === 'amount' ? money(totals.amount, totals.currency) : count(totals[c.key])
      : undefined,
  );
}
