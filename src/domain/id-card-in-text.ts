/*
 * The one detector of ID numbers written inside free text: a client's `reference`, a caller's
 * `X-Request-Id`, an `Idempotency-Key`, a URL path segment. Whatever it finds would be shown
 * unmasked, stored in clear or logged, so it errs on the side of finding too much: a false
 * positive costs a caller a 400 (or its request id), a miss leaks personal data for years.
 *
 * The text is first brought to the form a reader would see (see `normalizeForIdSearch`), then
 * searched for the shapes of an ID number (GB 11643-1999) without insisting on a valid check
 * character: a mistyped ID number is still somebody's ID number. Pure functions.
 */

/**
 * Characters a reader does not see: format characters (zero-width space, soft hyphen, word
 * joiner, BOM…), combining marks and everything Unicode says to ignore when rendering.
 */
const INVISIBLE = /^[\p{Cf}\p{M}\p{Default_Ignorable_Code_Point}]$/u;
const DECIMAL_DIGIT = /^\p{Nd}$/u;
const LETTER_OR_NUMBER = /^[\p{L}\p{N}]$/u;
/**
 * A UUID in canonical form (8-4-4-4-12 hex digits). Its digit groups joined across the dashes
 * would make an ID number's shape in about one UUID in a thousand; a UUID is an identifier,
 * never a place someone writes an ID number by mistake, so it is read as a word.
 */
const UUID =
  /(?<![0-9A-Za-z])[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![0-9A-Za-z])/g;
/** Fewer digits than the legacy form cannot hold a whole ID number. */
const DIGIT_RUN = /[0-9]{15,}/g;
const EARLIEST_BIRTH_YEAR = 1900;
const CHINA_UTC_OFFSET_MS = 8 * 60 * 60 * 1000;

/** How the normalisation treats a character: 0–9 a digit of that value, or one of these. */
const INVISIBLE_CHAR = -1;
const LETTER = -2;
const SEPARATOR = -3;

// Non-ASCII characters are classified by Unicode property once each: a 5 MB field must not cost a
// regex per character. Bounded, so that text made of every code point cannot make it grow for ever.
const classes = new Map<number, number>();
const MAX_CACHED_CLASSES = 20_000;

/**
 * The value of a Unicode decimal digit (general category Nd). Unicode keeps every Nd character in
 * contiguous runs of ten, 0 to 9 in order (some scripts' runs adjoin), so the value is the distance
 * from the start of its run, modulo ten.
 */
export function decimalDigitValue(digit: string): number {
  const codePoint = digit.codePointAt(0)!;
  let start = codePoint;
  while (start > 0 && DECIMAL_DIGIT.test(String.fromCodePoint(start - 1))) start--;
  return (codePoint - start) % 10;
}

/** The class of a non-ASCII code point (see the constants above). */
function classOfCodePoint(codePoint: number): number {
  let found = classes.get(codePoint);
  if (found === undefined) {
    const ch = String.fromCodePoint(codePoint);
    found = INVISIBLE.test(ch)
      ? INVISIBLE_CHAR
      : DECIMAL_DIGIT.test(ch)
        ? decimalDigitValue(ch)
        : LETTER_OR_NUMBER.test(ch)
          ? LETTER
          : SEPARATOR;
    if (classes.size < MAX_CACHED_CLASSES) classes.set(codePoint, found);
  }
  return found;
}

/**
 * Free text as the detector reads it: NFKC (full-width and styled digits and letters become
 * ASCII), invisible characters dropped, every decimal digit of any script (Arabic-Indic,
 * Devanagari…) as its ASCII digit, and any run of separators (anything but letters and digits:
 * dashes, spaces, dots, slashes, underscores, any script's punctuation) between two digits, or
 * between a digit and an X, removed: `360426-1991.01.01 0071` → `360426199101010071`.
 */
export function normalizeForIdSearch(text: string): string {
  const source = text.normalize('NFKC');
  // Unchanged stretches are copied in one piece from `copyFrom`: most text needs no change.
  let out = '';
  let copyFrom = 0;
  // Where the separators seen right after a digit start: dropped if a digit or an X follows, kept otherwise.
  let pendingFrom = -1;
  let afterDigit = false;
  for (let i = 0; i < source.length; i++) {
    const code = source.charCodeAt(i);
    let kind: number;
    let width = 1;
    if (code >= 0x30 && code <= 0x39) kind = code - 0x30;
    else if (code < 0x80) kind = (code | 0x20) >= 0x61 && (code | 0x20) <= 0x7a ? LETTER : SEPARATOR;
    else {
      const codePoint = source.codePointAt(i)!;
      if (codePoint > 0xffff) width = 2;
      kind = classOfCodePoint(codePoint);
    }
    if (kind === INVISIBLE_CHAR) {
      // Not seen, so neither a separator nor text: dropped (within pending separators, when they are settled).
      if (pendingFrom < 0) {
        out += source.slice(copyFrom, i);
        copyFrom = i + width;
      }
    } else if (kind === SEPARATOR && afterDigit) {
      if (pendingFrom < 0) {
        out += source.slice(copyFrom, i);
        copyFrom = i;
        pendingFrom = i;
      }
    } else {
      const joins = kind >= 0 || (afterDigit && (code === 0x58 || code === 0x78));
      if (pendingFrom >= 0) {
        if (!joins) out += keptSeparators(source, pendingFrom, i);
        copyFrom = i;
        pendingFrom = -1;
      }
      if (kind >= 0 && code !== 0x30 + kind) {
        out += source.slice(copyFrom, i) + DIGITS[kind];
        copyFrom = i + width;
      }
      afterDigit = kind >= 0;
    }
    i += width - 1;
  }
  if (pendingFrom >= 0) return out + keptSeparators(source, pendingFrom, source.length);
  return out + source.slice(copyFrom);
}

const DIGITS = '0123456789';

/** The separators of source[from, to), without the invisible characters among them. */
function keptSeparators(source: string, from: number, to: number): string {
  let kept = '';
  for (const ch of source.slice(from, to)) if (classOfAny(ch) !== INVISIBLE_CHAR) kept += ch;
  return kept;
}

function classOfAny(ch: string): number {
  const code = ch.charCodeAt(0);
  return code < 0x80 ? SEPARATOR : classOfCodePoint(ch.codePointAt(0)!);
}

const digitAt = (run: string, i: number) => run.charCodeAt(i) - 0x30;
const twoDigits = (run: string, i: number) => digitAt(run, i) * 10 + digitAt(run, i + 1);
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** A real calendar date (checked without allocating: this runs once per position of a digit run). */
function isRealDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month - 1]) return false;
  return month !== 2 || day < 29 || (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0));
}

/**
 * Whether a run of ASCII digits holds an ID number's shape anywhere in it: 17 digits with a
 * birth date `YYYYMMDD` (1900 up to `latestYear`) in places 7–14 (the 18-character form,
 * whatever its check character, or with it cut off), or 15 digits with a date `YYMMDD` in
 * places 7–12 (the legacy form, born 19YY). Every position is tried: an ID number does not
 * stop being one when a digit is written before or after it.
 */
export function digitRunHoldsIdShape(run: string, latestYear: number): boolean {
  for (let i = 0; i + 17 <= run.length; i++) {
    const year = twoDigits(run, i + 6) * 100 + twoDigits(run, i + 8);
    if (year < EARLIEST_BIRTH_YEAR || year > latestYear) continue;
    if (isRealDate(year, twoDigits(run, i + 10), twoDigits(run, i + 12))) return true;
  }
  for (let i = 0; i + 15 <= run.length; i++) {
    if (isRealDate(1900 + twoDigits(run, i + 6), twoDigits(run, i + 8), twoDigits(run, i + 10))) return true;
  }
  return false;
}

/**
 * Whether free text holds (what may be) an ID number, however it is written: with separators,
 * invisible characters, other scripts' digits, full-width forms, a trailing x. For every field
 * or header that is shown, stored or logged in clear.
 */
export function containsIdCardNumber(text: string, now: Date = new Date()): boolean {
  // Birth dates are Chinese calendar days: the year is the year in UTC+8.
  const latestYear = new Date(now.getTime() + CHINA_UTC_OFFSET_MS).getUTCFullYear();
  const withoutUuids = text.includes('-') ? text.replace(UUID, 'uuid') : text;
  for (const match of normalizeForIdSearch(withoutUuids).matchAll(DIGIT_RUN)) {
    if (digitRunHoldsIdShape(match[0], latestYear)) return true;
  }
  return false;
}

/** The longest run of digits in free text once normalised (11 digits: a mobile number). */
export function longestDigitRun(text: string): number {
  let longest = 0;
  // A UUID is a word here too: its digit groups joined across the dashes often make 11 or more.
  const withoutUuids = text.includes('-') ? text.replace(UUID, 'uuid') : text;
  for (const match of normalizeForIdSearch(withoutUuids).matchAll(/[0-9]+/g))
    longest = Math.max(longest, match[0].length);
  return longest;
}
