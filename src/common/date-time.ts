import { applyDecorators } from '@nestjs/common';
import { Transform } from 'class-transformer';
import { ValidateBy } from 'class-validator';

/*
 * Instants a client may send (filters, price starts). PostgreSQL's timestamptz
 * stores 4713 BC to 294276 AD, but what idgate hands it is a JS Date that
 * Prisma writes as toISOString(): beyond year 9999 that is `+010000-…`, and
 * year 0 is `0000-…`, both refused (a 500 before this). So: years 0001–9999,
 * the only sane ones here anyway, starting on 0001-01-02 because a bare date
 * may be read as midnight in a time zone east of UTC (usage `tz`), which would
 * put 0001-01-01 in year 0.
 */

/** First and last instant accepted (UTC). */
export const MIN_INSTANT = Date.parse('0001-01-02T00:00:00.000Z');
export const MAX_INSTANT = Date.parse('9999-12-31T23:59:59.999Z');

const EXAMPLE = 'an ISO 8601 date-time with a zone such as 2026-01-01T00:00:00Z, or a date YYYY-MM-DD';
const FORMAT = `must be ${EXAMPLE}`;
const TYPE = `must be a string: ${EXAMPLE}`;
const RANGE = 'must be between 0001-01-02 and 9999-12-31 (UTC)';

/** `YYYY-MM-DD`, optionally `THH:MM[:SS[.fraction]]` with a zone `Z`, `±HH:MM` or `±HHMM`. */
const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d{2}):?(\d{2}))?)?$/;
/** A year of more than four digits, or signed (ISO 8601 expanded years), as JS writes them past 9999. */
const EXPANDED_YEAR = /^(?:[+-]\d{4,}|\d{5,})-/;

export type DateTimeCheck = { ok: true; at: Date } | { ok: false; problem: string };

/** Whether `value` is an instant idgate accepts, and which one; otherwise why not (a message for the field). */
export function checkDateTime(value: unknown): DateTimeCheck {
  if (typeof value !== 'string') return { ok: false, problem: TYPE };
  if (EXPANDED_YEAR.test(value)) return { ok: false, problem: RANGE };
  const m = ISO.exec(value);
  if (!m) return { ok: false, problem: FORMAT };
  const [, y, mo, d, h, mi, s, frac, z, sign, oh, om] = m;
  if (h !== undefined && z === undefined && sign === undefined) {
    // Without a zone the instant would depend on the server's time zone.
    return { ok: false, problem: 'must state its time zone (Z or ±HH:MM)' };
  }
  const year = Number(y);
  if (year === 0) return { ok: false, problem: RANGE };
  const [month, day, hour, minute, second] = [mo, d, h, mi, s].map((p) => Number(p ?? 0));
  const offsetMinutes = sign === undefined ? 0 : (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om));
  if (hour > 23 || minute > 59 || second > 59 || Number(oh ?? 0) > 23 || Number(om ?? 0) > 59) {
    return { ok: false, problem: 'is not a real date and time' };
  }
  const at = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not read years 0–99 as 1900–1999.
  at.setUTCFullYear(year, month - 1, day);
  if (at.getUTCFullYear() !== year || at.getUTCMonth() !== month - 1 || at.getUTCDate() !== day) {
    return { ok: false, problem: 'is not a real calendar date' };
  }
  const millis = frac === undefined ? 0 : Number(frac.slice(0, 3).padEnd(3, '0'));
  at.setUTCHours(hour, minute, second, millis);
  at.setTime(at.getTime() - offsetMinutes * 60_000);
  if (at.getTime() < MIN_INSTANT || at.getTime() > MAX_INSTANT) return { ok: false, problem: RANGE };
  return { ok: true, at };
}

const inRange = (d: Date) => !Number.isNaN(d.getTime()) && d.getTime() >= MIN_INSTANT && d.getTime() <= MAX_INSTANT;

/**
 * A date-time input: an ISO 8601 date-time with a zone, or a date (UTC midnight,
 * unless the endpoint says otherwise), from 0001-01-02 to 9999-12-31, real calendar dates only.
 * `toDate`: the property becomes a Date; otherwise the string is kept as sent
 * (for endpoints that read a bare date in a time zone of their own).
 */
export function IsDateTime(options: { toDate?: boolean } = {}): PropertyDecorator {
  const validate = ValidateBy({
    name: 'isDateTime',
    validator: {
      validate: (value: unknown) => (value instanceof Date ? inRange(value) : checkDateTime(value).ok),
      defaultMessage: (args) => {
        if (args?.value instanceof Date) return RANGE;
        const check = checkDateTime(args?.value);
        return check.ok ? FORMAT : check.problem;
      },
    },
  });
  if (!options.toDate) return validate;
  const toDate = Transform(({ value }: { value: unknown }) => {
    const check = checkDateTime(value);
    // Left as sent when refused, so that the validator says why.
    return check.ok ? check.at : value;
  });
  return applyDecorators(toDate, validate);
}
