import { createHash, randomBytes } from 'node:crypto';

/*
 * API key format: `idg_<env>_<8 visible chars><32 secret chars>`, 40 random
 * base64url characters in all (240 bits). Only a SHA-256 of the whole key is
 * stored: the key is high-entropy, so a fast hash is enough to make the stored
 * value useless to a thief, and lookups stay a single index probe.
 */

export type KeyEnvironment = 'live' | 'test';

const KEY_PATTERN = /^idg_(live|test)_[A-Za-z0-9_-]{40}$/;
const VISIBLE_CHARS = 8;

export interface GeneratedKey {
  key: string;
  prefix: string;
  hash: string;
}

export function generateApiKey(environment: KeyEnvironment): GeneratedKey {
  const body = randomBytes(30).toString('base64url'); // 40 chars
  const key = `idg_${environment}_${body}`;
  return { key, prefix: visiblePrefix(key), hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function looksLikeApiKey(candidate: string): boolean {
  return KEY_PATTERN.test(candidate);
}

/** The part of a key that may be shown and logged: `idg_test_AbCd1234`. */
export function visiblePrefix(key: string): string {
  const match = /^(idg_(?:live|test)_)([A-Za-z0-9_-]*)/.exec(key);
  return match ? match[1] + match[2].slice(0, VISIBLE_CHARS) : '(not an idgate key)';
}

/** Reads the key from `Authorization: Bearer …` or `X-API-Key`. */
export function keyFromHeaders(headers: Record<string, string | string[] | undefined>): string | null {
  const auth = headers['authorization'];
  if (typeof auth === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (match) return match[1];
  }
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.trim()) return apiKey.trim();
  return null;
}
