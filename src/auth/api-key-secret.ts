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

/** Runs of 32 or more characters: most of a key's secret part (40 characters). */
const ALPHANUMERIC_RUN = /[A-Za-z0-9]{32,}/g;
const KEY_ALPHABET_RUN = /[A-Za-z0-9_-]{32,}/g;
/** Hex digits and dashes only: UUIDs, W3C trace ids, digests. A key's 40 random characters are never all hex. */
const HEX_ONLY = /^[0-9A-Fa-f-]+$/;
const mixedCase = (run: string) => /[A-Z]/.test(run) && /[a-z]/.test(run);

/**
 * Whether text may hold an API key's secret, with or without its `idg_…_` prefix: the prefix
 * itself; 32 or more letters and digits in a row that are not all hex digits (UUIDs, trace ids
 * and digests are hex; a key's random characters are all hex with a probability of 1e-15); or,
 * since a key's alphabet also has `-` and `_` (a secret holds one or two of them on average),
 * 32 or more characters of that alphabet mixing upper and lower case, as random characters do
 * (all but about 1 in 10^7 keys) and words joined by dashes (`order-service-request-retry-2`) do not.
 * For headers and paths that would otherwise be logged or recorded in clear.
 */
export function containsKeyLikeRun(text: string): boolean {
  if (/idg_(live|test)_/i.test(text)) return true;
  for (const match of text.matchAll(ALPHANUMERIC_RUN)) if (!HEX_ONLY.test(match[0])) return true;
  for (const match of text.matchAll(KEY_ALPHABET_RUN)) {
    if (!HEX_ONLY.test(match[0]) && mixedCase(match[0])) return true;
  }
  return false;
}

/** The part of a key that may be shown and logged: `idg_test_AbCd1234`. */
export function visiblePrefix(key: string): string {
  const match = /^(idg_(?:live|test)_)([A-Za-z0-9_-]*)/.exec(key);
  return match ? match[1] + match[2].slice(0, VISIBLE_CHARS) : '(not an idgate key)';
}

/**
 * What a request presents as its API key. A request is refused (401) rather than guessed
 * at when its credentials are ambiguous: an `Authorization: Bearer` that is not exactly one
 * token, either header sent more than once (even with the same value), an X-API-Key that is
 * not one token, an idgate key under another scheme, or two different keys in the two
 * headers. Another scheme (e.g. `Basic`, set by a proxy in front) is not ours and is ignored.
 */
export type PresentedCredentials =
  | { kind: 'none' }
  /** The header came more than once (whatever the values): Node would keep only the first Authorization. */
  | { kind: 'repeated'; header: CredentialHeader }
  | { kind: 'key'; key: string }
  | { kind: 'malformed' }
  | { kind: 'conflicting'; prefixes: [string, string] };

const BEARER = /^bearer(?:[ \t]|$)/i;
// RFC 6750 b64token: what a bearer token (and so an X-API-Key) may consist of.
const TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const BEARER_TOKEN = /^bearer[ \t]+(\S+)$/i;
const OTHER_SCHEME = /^[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*[ \t]+\S/;

type Headers = Record<string, string | string[] | undefined>;

export type CredentialHeader = 'Authorization' | 'X-API-Key';
const CREDENTIAL_HEADERS: readonly CredentialHeader[] = ['Authorization', 'X-API-Key'];

/**
 * The credential header a request carries more than once, from its raw header list
 * (`req.rawHeaders`: name, value, name, value…, as received). Node's parsed headers cannot
 * tell: it keeps only the first `Authorization` and joins repeated `X-API-Key` with ", ", so a
 * client key followed by an admin key would be served as whichever came first.
 */
export function repeatedCredentialHeader(rawHeaders: readonly string[]): CredentialHeader | null {
  const seen = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    const header = CREDENTIAL_HEADERS.find((h) => h.toLowerCase() === name);
    if (!header) continue;
    if (seen.has(header)) return header;
    seen.add(header);
  }
  return null;
}

/**
 * The credentials of a request. Pass `rawHeaders` (Node's `req.rawHeaders`) whenever there is
 * one: only it shows a repeated Authorization header.
 */
export function credentialsFromHeaders(headers: Headers, rawHeaders?: readonly string[]): PresentedCredentials {
  const repeated = rawHeaders ? repeatedCredentialHeader(rawHeaders) : null;
  if (repeated) return { kind: 'repeated', header: repeated };
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
