import { checkIdCardNumber } from './id-card-number';

/**
 * Whether free text holds a valid ID number: 15 or 18 characters standing alone (not part of
 * a longer run of digits), full-width digits included. For fields every role sees unmasked,
 * such as a client's reference. Pure.
 */
export function containsIdCardNumber(text: string, now = new Date()): boolean {
  for (const match of text.normalize('NFKC').matchAll(/(?<![0-9])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9Xx])/g)) {
    if (checkIdCardNumber(match[0], now).ok) return true;
  }
  return false;
}
