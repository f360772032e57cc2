import { containsKeyLikeRun } from '../auth/api-key-secret';
import { containsIdCardNumber, longestDigitRun } from '../domain/id-card-in-text';

/*
 * A request path as it may be written to the log and echoed in a problem body's `instance`.
 * Paths are the caller's: someone will send `GET /v1/verifications/360426199101010071` or
 * paste a key into a URL. Segments of idgate's own routes (words, UUIDs) are kept, so a log
 * line still says what was asked; any other segment becomes `:redacted`.
 */

export const REDACTED_SEGMENT = ':redacted';
/** Longer than any segment of idgate's routes and assets (a UUID is 36), shorter than a key. */
export const MAX_SEGMENT_LENGTH = 40;
/** Digits in a row that are a phone number (11 in China) or more: never part of a route. */
const MAX_DIGIT_RUN = 10;
/** What idgate's route and asset segments are made of (RFC 3986 unreserved characters). */
const PLAIN_SEGMENT = /^[A-Za-z0-9._~-]+$/;
/** Percent-decoding is repeated a few times so that `%2533` (encoded twice) is judged as `3`. */
const MAX_DECODING_ROUNDS = 3;

function decoded(segment: string): string | null {
  let value = segment;
  for (let round = 0; round < MAX_DECODING_ROUNDS && value.includes('%'); round++) {
    try {
      value = decodeURIComponent(value);
    } catch {
      return null;
    }
  }
  return value;
}

/** Whether one path segment may be written as it is. */
export function isSafeSegment(segment: string): boolean {
  if (segment === '') return true;
  const value = decoded(segment);
  if (value === null || value.length > MAX_SEGMENT_LENGTH || !PLAIN_SEGMENT.test(value)) return false;
  return !containsIdCardNumber(value) && !containsKeyLikeRun(value) && longestDigitRun(value) <= MAX_DIGIT_RUN;
}

/**
 * The path without its query string and fragment (never logged: not needed, and the caller's),
 * each unsafe segment replaced by `:redacted`. Pure.
 */
export function safePath(path: string): string {
  const bare = path.split(/[?#]/, 1)[0];
  return bare
    .split('/')
    .map((segment) => (isSafeSegment(segment) ? segment : REDACTED_SEGMENT))
    .join('/');
}
