/**
 * Chinese resident ID numbers (GB 11643-1999): 6-digit address code, 8-digit birth
 * date, 3-digit sequence (odd: male, even: female) and an ISO 7064 MOD 11-2 check
 * character. Pure functions: no framework, no I/O.
 */

export type Sex = 'male' | 'female';

export type IdCardNumberRejection =
  /** Empty after trimming. */
  | 'empty'
  /** Neither 18 nor (legacy) 15 characters. */
  | 'wrong_length'
  /** Anything but digits, and `X` in the last place of an 18-character number. */
  | 'invalid_characters'
  /** The birth date is not a real calendar date, or is before 1900. */
  | 'invalid_birth_date'
  /** The birth date is after today (China time). */
  | 'future_birth_date'
  /** The check character does not match the first 17 digits. */
  | 'wrong_check_character';

export type IdCardNumberCheck =
  | {
      ok: true;
      /** 18 characters, upper-case `X`; a 15-digit legacy number converted. */
      normalized: string;
      /** `YYYY-MM-DD`. */
      birthDate: string;
      sex: Sex;
      /** The input was the 15-digit legacy form. */
      legacy: boolean;
    }
  | { ok: false; reason: IdCardNumberRejection };

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARACTERS = '10X98765432';
/** Nobody alive was born earlier; it also rejects typos such as 0990 for 1990. */
const EARLIEST_BIRTH_YEAR = 1900;
/** Birth dates on the card are Chinese calendar days: "today" is today in UTC+8 (no DST). */
const CHINA_UTC_OFFSET_MS = 8 * 60 * 60 * 1000;

/** The ISO 7064 MOD 11-2 check character for the first 17 digits. */
export function idCardCheckCharacter(first17: string): string {
  if (!/^\d{17}$/.test(first17)) throw new RangeError('idCardCheckCharacter needs exactly 17 digits');
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(first17[i]) * WEIGHTS[i];
  return CHECK_CHARACTERS[sum % 11];
}

function isRealDate(year: number, month: number, day: number): boolean {
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

function chinaToday(now: Date): string {
  return new Date(now.getTime() + CHINA_UTC_OFFSET_MS).toISOString().slice(0, 10).replaceAll('-', '');
}

/**
 * Validates and normalises an ID number. Surrounding whitespace is ignored; a lower-case
 * `x` is accepted; the 15-digit legacy form is converted (insert `19`, compute the check
 * character). Address codes are not checked against a region list on purpose: codes
 * change over time (Chongqing moved from 51xxxx to 50xxxx) and old numbers stay valid.
 */
export function checkIdCardNumber(input: string, now: Date): IdCardNumberCheck {
  const trimmed = input.trim();
  if (trimmed === '') return { ok: false, reason: 'empty' };

  let first17: string;
  let legacy = false;
  if (trimmed.length === 18) {
    if (!/^\d{17}[\dXx]$/.test(trimmed)) return { ok: false, reason: 'invalid_characters' };
    first17 = trimmed.slice(0, 17);
  } else if (trimmed.length === 15) {
    if (!/^\d{15}$/.test(trimmed)) return { ok: false, reason: 'invalid_characters' };
    first17 = `${trimmed.slice(0, 6)}19${trimmed.slice(6)}`;
    legacy = true;
  } else {
    return { ok: false, reason: /^[\dXx]+$/.test(trimmed) ? 'wrong_length' : 'invalid_characters' };
  }

  const birth = first17.slice(6, 14);
  const year = Number(birth.slice(0, 4));
  const month = Number(birth.slice(4, 6));
  const day = Number(birth.slice(6, 8));
  if (year < EARLIEST_BIRTH_YEAR || !isRealDate(year, month, day)) return { ok: false, reason: 'invalid_birth_date' };
  if (birth > chinaToday(now)) return { ok: false, reason: 'future_birth_date' };

  const check = idCardCheckCharacter(first17);
  if (!legacy && trimmed[17].toUpperCase() !== check) return { ok: false, reason: 'wrong_check_character' };

  return {
    ok: true,
    normalized: first17 + check,
    birthDate: `${birth.slice(0, 4)}-${birth.slice(4, 6)}-${birth.slice(6, 8)}`,
    sex: Number(first17[16]) % 2 === 1 ? 'male' : 'female',
    legacy,
  };
}

/** Fewer characters than this: nothing is shown (6 visible would be most of the value). */
const MIN_LENGTH_SHOWING_ANY = 8;

/**
 * An ID number as shown to someone who may not see it in full. Only characters that can never
 * be part of the birth date are shown, whatever the value:
 * - a well-formed 18-character number (17 digits and a digit or X): the first 6 (address code)
 *   and the last 4 (sequence and check character), `110101********1234`;
 * - a 15-digit legacy number (with a real birth date in places 7-12): the first 6 and the last 3
 *   (sequence), `360426******007`; 15 digits that are not one may be an 18-character number cut
 *   short, whose last 3 are birth-date digits;
 * - anything else (a wrong length, other characters: numbers answered -2): the first 6 at most,
 *   since in a number cut short or padded the last characters may well be birth-date digits
 *   (`36042619910101` would show `0101`); nothing at all below 8 characters.
 * Masked characters become `*`, one per character, so a masked value always holds one.
 * Surrounding whitespace is ignored, as the checks do. The one mask for every view, the
 * audit trail and the console.
 */
export function maskIdCardNumber(value: string): string {
  const trimmed = value.trim();
  const chars = Array.from(trimmed);
  const shown = (head: number, tail: number) =>
    chars.slice(0, head).join('') + '*'.repeat(chars.length - head - tail) + chars.slice(chars.length - tail).join('');
  if (/^\d{17}[\dXx]$/.test(trimmed)) return shown(6, 4);
  if (/^\d{15}$/.test(trimmed) && checkIdCardNumber(trimmed, new Date()).ok) return shown(6, 3);
  if (chars.length < MIN_LENGTH_SHOWING_ANY) return '*'.repeat(Math.max(chars.length, 1));
  return shown(6, 0);
}

/**
 * The form an ID number is hashed in for exact search: a valid number normalised
 * (upper-case `X`, 15-digit form converted), anything else trimmed and upper-cased,
 * so every module derives the same HMAC from the same input.
 */
export function normalizeIdCardNumber(input: string, now: Date = new Date()): string {
  const check = checkIdCardNumber(input, now);
  return check.ok ? check.normalized : input.trim().toUpperCase();
}
