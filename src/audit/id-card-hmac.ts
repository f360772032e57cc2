import { createHmac } from 'node:crypto';

/*
 * The keyed hash that lets staff find events (and verifications) about one ID
 * number without storing or decrypting it. Every module must derive it the
 * same way, so it lives in one function: HMAC-SHA256 under PII_HMAC_KEY over
 * the UTF-8 of the *normalised* number, lowercase hex.
 */
export function idCardHmac(hmacKey: Buffer, normalizedIdCard: string): string {
  return createHmac('sha256', hmacKey).update(normalizedIdCard, 'utf8').digest('hex');
}

/**
 * Minimal normalisation for searching (trim, upper-case the check character).
 * The domain module's full normaliser (15→18 digits) should replace this once
 * it lands; both must agree with what the verification module hashes.
 */
export function basicIdCardNormalization(idCard: string): string {
  return idCard.trim().toUpperCase();
}
