import * as crypto from 'node:crypto';
import { canonicalJson, ChainedEventFields, isoMillis, JsonValue } from '../canonical';
import { MAC_LABEL } from '../event-authenticity';

/*
 * The two canonical forms the integrity walk needs for every event, built in one pass:
 * the chain's (canonical.ts: canonicalEvent) and the MAC's (event-authenticity.ts:
 * macCanonical), which differ only by occurred_at. Both are the same bytes as the
 * reference functions (integrity-canonical.spec.ts checks that on arbitrary events):
 * the fixed outer object is written out with its keys already in sorted order, and every
 * value goes through canonicalJson / JSON.stringify as the reference does. Calling the two
 * reference functions instead costs about three times as much per event.
 */

/** A string or null column as canonicalJson writes it. */
function scalar(value: string | null): string {
  return typeof value === 'string' ? JSON.stringify(value) : canonicalJson(value as JsonValue);
}

export interface CanonicalPair {
  /** canonicalEvent(e): what the chain hash covers (after prev_hash and a newline). */
  event: string;
  /** macCanonical(e): what the event's MAC covers. */
  mac: string;
}

/** canonicalEvent(e) and macCanonical(e) at once. `details` may be given already in canonical form. */
export function canonicalPair(e: ChainedEventFields, canonicalDetails?: string): CanonicalPair {
  const details = canonicalDetails ?? canonicalJson(e.details);
  // Keys in UTF-16 order: action, actor{id,role,type}, details, id, id_card_hmac, ip, [occurred_at], outcome, request_id, target{id,type}.
  const head =
    `{"action":${scalar(e.action)},"actor":{"id":${scalar(e.actorId)},"role":${scalar(e.actorRole)},` +
    `"type":${scalar(e.actorType)}},"details":${details},"id":${scalar(e.id)},` +
    `"id_card_hmac":${scalar(e.idCardHmac)},"ip":${scalar(e.ip)}`;
  const tail =
    `,"outcome":${scalar(e.outcome)},"request_id":${scalar(e.requestId)},` +
    `"target":{"id":${scalar(e.targetId)},"type":${scalar(e.targetType)}}}`;
  return {
    event: `${head},"occurred_at":${JSON.stringify(isoMillis(e.occurredAt))}${tail}`,
    mac: `${MAC_LABEL}\n${head}${tail}`,
  };
}

// crypto.hash (Node ≥ 20.12) hashes a short string in about half the time of createHash().update().digest().
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

/** Lowercase hex SHA-256 of the UTF-8 text: chainHash(prev, canonical) is sha256Hex(`${prev}\n${canonical}`). */
export function sha256Hex(text: string): string {
  return oneShot ? oneShot('sha256', text, 'hex') : crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

/** eventHash(prevHash, e) given canonicalPair(e).event. */
export function linkHash(prevHash: string, canonicalEvent: string): string {
  return sha256Hex(`${prevHash}\n${canonicalEvent}`);
}

/**
 * True when `mac` is the MAC of `macText` (canonicalPair(e).mac) under `key`: the same
 * verdict as macMatches(key, e, mac), lowercase hex only, compared in constant time.
 */
export function macValid(key: Buffer, macText: string, mac: string | null): boolean {
  if (mac === null || mac.length !== 64) return false;
  const given = Buffer.from(mac, 'utf8');
  if (given.length !== 64) return false;
  const expected = crypto.createHmac('sha256', key).update(macText, 'utf8').digest('hex');
  return crypto.timingSafeEqual(Buffer.from(expected, 'latin1'), given);
}
