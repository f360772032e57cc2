import { containsIdCardNumber } from '../domain/id-card-in-text';

/**
 * A header value as the client may have meant it. Node decodes header bytes as Latin-1, so a
 * client that wrote UTF-8 (a full-width digit, a soft hyphen: `C2 AD`) arrives as mojibake
 * (`Â­`) in which the detector would see a letter between the digits; read as UTF-8 again, it
 * is what the client wrote. Both readings are checked.
 */
export function headerReadings(value: string): string[] {
  // eslint-disable-next-line no-control-regex
  if (!/[^\x00-\x7F]/.test(value)) return [value];
  try {
    return [value, new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(value, 'latin1'))];
  } catch {
    return [value]; // not UTF-8: Latin-1 is what was sent
  }
}

/**
 * What is wrong with an `Idempotency-Key`, or null. The key is stored in clear
 * (`idempotency_keys.key`, the lookup column) for 24 h: a client that uses the ID number it
 * verifies as its key (a natural choice for "this person's check") would store it unencrypted.
 * Refused however it is written (see id-card-in-text.ts), and so is an idgate API key. Length
 * is checked where the key is used.
 */
export function idempotencyKeyProblem(key: string): string | null {
  const readings = headerReadings(key);
  if (readings.some((text) => containsIdCardNumber(text))) {
    return 'must not contain an ID number: the key is stored in clear; use a random value (e.g. a UUID)';
  }
  // Not any long random run (random keys are what clients should send), only idgate's own key format.
  if (readings.some((text) => /idg_(live|test)_/i.test(text))) {
    return 'must not contain an API key: the key is stored in clear';
  }
  return null;
}
