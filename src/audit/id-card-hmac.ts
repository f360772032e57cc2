import { createHmac } from 'node:crypto';

/*
 * The keyed hash that lets staff find events (and verifications) about one ID
 * number without storing or decrypting it. Every module must derive it the
 * same way, so it lives in one function: HMAC-SHA256 under PII_HMAC_KEY over
 * the UTF-8 of the *normalised* number (`normalizeIdCardNumber`), lowercase hex.
 */
export function idCardHmac(hmacKey: Buffer, normalizedIdCard: string): string {
  return createHmac('sha256', hmacKey).update(normalizedIdCard, 'utf8').digest('hex');
}
