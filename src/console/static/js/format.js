// Display formatting: times in the browser's zone, money in major units.

const pad = (n) => String(n).padStart(2, '0');

/** `2026-11-25 14:03:07` in local time; the UTC instant goes in a title. */
export function localTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `<input type=datetime-local>` value → ISO 8601 instant (UTC), or undefined. */
export function fromLocalInput(value) {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** Today's date (YYYY-MM-DD) in a time zone, plus `days`. */
export function dateInZone(tz, days = 0) {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: tz,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(new Date());
  return addDays(parts, days);
}

export function addDays(date, days) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

export function daysBetween(from, toExclusive) {
  const out = [];
  for (let d = from; d < toExclusive && out.length < 400; d = addDays(d, 1)) out.push(d);
  return out;
}

const fractionDigits = new Map();
function digitsOf(currency) {
  if (!fractionDigits.has(currency)) {
    let digits = 2;
    try {
      digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
    } catch {
      // Unknown code: assume cents.
    }
    fractionDigits.set(currency, digits);
  }
  return fractionDigits.get(currency);
}

/** Minor units → a number in major units (50 CNY fen → 0.5). */
export function toMajor(minor, currency) {
  return Number(minor ?? 0) / 10 ** digitsOf(currency || 'CNY');
}

/** Minor units → `¥0.50` style text (null → —). */
export function money(minor, currency) {
  if (minor === null || minor === undefined) return '—';
  const cur = currency || 'CNY';
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency: cur }).format(toMajor(minor, cur));
  } catch {
    return `${toMajor(minor, cur)} ${cur}`;
  }
}

export function count(n) {
  return new Intl.NumberFormat('en').format(Number(n ?? 0));
}

export const RESULT_LABELS = {
  0: 'consistent',
  '-1': 'inconsistent',
  '-2': 'illegal ID number',
  '-3': 'illegal name',
  '-4': 'document database exception',
  '-5': 'no record',
  '-6': 'comparison system upgrading',
  '-7': 'daily limit exceeded',
};

export function resultText(code) {
  if (code === null || code === undefined || code === '') return '—';
  const label = RESULT_LABELS[code];
  return label ? `${code} (${label})` : String(code);
}

export function chargedText(v) {
  if (v.charged === true) return 'charged';
  if (v.charged === false) return 'not charged';
  return 'unknown';
}

/** The tail of an id (UUIDv7 ids share their time-ordered head). */
export function shortId(id) {
  return id ? `…${String(id).slice(-8)}` : '—';
}
