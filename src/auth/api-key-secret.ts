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

/**
 * What a request presents as its API key. A request is refused (401) rather than guessed
 * at when its credentials are ambiguous: an `Authorization: Bearer` that is not exactly one
 * token, an X-API-Key that is not one token (a repeated header arrives joined with ", "),
 * an idgate key under another scheme, or two different keys in the two headers. Another
 * scheme (e.g. `Basic`, set by a proxy in front) is not ours and is ignored.
 */
export type PresentedCredentials =
  | { kind: 'none' }
  | { kind: 'key'; key: string }
  | { kind: 'malformed' }
  | { kind: 'conflicting'; prefixes: [string, string] };

const BEARER = /^bearer(?:[ \t]|$)/i;
// RFC 6750 b64token: what a bearer token (and so an X-API-Key) may consist of.
const TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const BEARER_TOKEN = /^bearer[ \t]+(\S+)$/i;
const OTHER_SCHEME = /^[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*[ \t]+\S/;

type Headers = Record<string, string | string[] | undefined>;

export function credentialsFromHeaders(headers: Headers): PresentedCredentials {
  let bearer: string | null = null;
  const authorization = headers['authorization'];
  if (Array.isArray(authorization)) return { kind: 'malformed' };
  if (authorization !== undefined && authorization.trim() !== '') {
    const value = authorization.trim();
    if (BEARER.test(value)) {
      const match = BEARER_TOKEN.exec(value);
      if (!match || !TOKEN.test(match[1])) return { kind: 'malformed' };
      bearer = match[1];
    } else if (!OTHER_SCHEME.test(value) || /idg_/i.test(value)) {
      return { kind: 'malformed' };
    }
  }
  let apiKey: string | null = null;
  const header = headers['x-api-key'];
  if (Array.isArray(header)) return { kind: 'malformed' };
  if (header !== undefined && header.trim() !== '') {
    apiKey = header.trim();
    if (!TOKEN.test(apiKey)) return { kind: 'malformed' };
  }
  if (bearer !== null && apiKey !== null && bearer !== apiKey) {
    return { kind: 'conflicting', prefixes: [visiblePrefix(bearer), visiblePrefix(apiKey)] };
  }
  const key = bearer ?? apiKey;
  return key === null ? { kind: 'none' } : { kind: 'key', key };
}
