/**
 * Names as they appear on a Chinese resident ID card: Chinese characters (including the
 * CJK extensions on the supplementary planes), ASCII letters for foreign-style names, and
 * the middle dot `·` (U+00B7) between the parts of a minority or transliterated name
 * (State Ethnic Affairs Commission notice, 2016). Pure functions: no framework, no I/O.
 *
 * After NFC, nothing else is a name character: no combining marks (`张\u0301三` would
 * otherwise pass as two Han characters and be charged), no accented or non-Latin letters,
 * no variation selectors, no iteration marks. An ID card prints none of these, and whatever
 * the rules do not name is answered -3 locally instead of becoming a paid call.
 *
 * Spaces: allowed only between two letters of a foreign-style name ("MARIA JOSE"), one
 * space after collapsing runs of whitespace. A space next to a Chinese character or the
 * middle dot is refused rather than silently removed: "张 三" is more likely a typo or
 * two names than one person, and we never change which person a name denotes.
 */

export const NAME_SEPARATOR = '\u00B7';
export const MAX_NAME_CODE_POINTS = 50;

/**
 * Dots that users type for the separator: bullet U+2022, katakana middle dot U+30FB and
 * its half-width form U+FF65, full-width full stop U+FF0E, hyphenation point U+2027,
 * Greek ano teleia U+0387 (NFC maps it too), and the bullet / dot operators U+2219, U+22C5.
 */
const SEPARATOR_LOOKALIKES = /[\u2022\u30FB\uFF65\uFF0E\u2027\u0387\u2219\u22C5]/gu;

export type PersonNameRejection =
  | 'empty'
  /** More than 50 code points after normalisation. */
  | 'too_long'
  | 'contains_digits'
  /** Combining marks, non-ASCII letters, punctuation, symbols, emoji, control characters… */
  | 'invalid_characters'
  /** `·` at the start or end, doubled, or next to a space. */
  | 'misplaced_separator'
  /** A space that is not between two letters of a foreign-style name. */
  | 'misplaced_space';

export type PersonNameCheck = { ok: true; normalized: string } | { ok: false; reason: PersonNameRejection };

type Kind = 'han' | 'letter' | 'separator' | 'space' | 'digit' | 'other';

function kindOf(ch: string): Kind {
  if (ch === NAME_SEPARATOR) return 'separator';
  if (ch === ' ') return 'space';
  // A Han character is an ideograph (Lo); 〇 (U+3007) is a number by category but a character in names.
  // Radicals (So) and iteration marks (Lm, 々) are Han by script but not characters of a name.
  if ((/\p{Script=Han}/u.test(ch) && /\p{Lo}/u.test(ch)) || ch === '\u3007') return 'han';
  if (/^[A-Za-z]$/.test(ch)) return 'letter';
  if (/\p{N}/u.test(ch)) return 'digit';
  // Combining marks, accented and non-Latin letters, punctuation, symbols, controls…
  return 'other';
}

/** Trim, NFC, unify separator look-alikes and collapse inner whitespace; then validate. */
export function checkPersonName(input: string): PersonNameCheck {
  const normalized = input.normalize('NFC').trim().replace(SEPARATOR_LOOKALIKES, NAME_SEPARATOR).replace(/\s+/gu, ' ');
  if (normalized === '') return { ok: false, reason: 'empty' };

  const chars = Array.from(normalized); // code points, not UTF-16 units
  if (chars.length > MAX_NAME_CODE_POINTS) return { ok: false, reason: 'too_long' };

  const kinds = chars.map(kindOf);
  if (kinds.includes('digit')) return { ok: false, reason: 'contains_digits' };
  if (kinds.includes('other')) return { ok: false, reason: 'invalid_characters' };

  for (let i = 0; i < kinds.length; i++) {
    const before = kinds[i - 1];
    const after = kinds[i + 1];
    switch (kinds[i]) {
      case 'separator':
        if (before === undefined || after === undefined || before === 'separator' || before === 'space') {
          return { ok: false, reason: 'misplaced_separator' };
        }
        if (after === 'space') return { ok: false, reason: 'misplaced_separator' };
        break;
      case 'space':
        if (before !== 'letter' || after !== 'letter') return { ok: false, reason: 'misplaced_space' };
        break;
    }
  }
  return { ok: true, normalized };
}

/**
 * First and last character visible, the rest starred (`张*三`, two characters `张*`,
 * one character unchanged). Counts code points, so a supplementary-plane character is
 * never split in half.
 */
export function maskPersonName(name: string): string {
  const chars = Array.from(name);
  if (chars.length <= 1) return name;
  if (chars.length === 2) return `${chars[0]}*`;
  return chars[0] + '*'.repeat(chars.length - 2) + chars[chars.length - 1];
}
