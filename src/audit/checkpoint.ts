import { createHash, createPrivateKey, createPublicKey, KeyObject, sign, verify } from 'node:crypto';

/*
 * Signed checkpoints (as CloudTrail signs its digests): an Ed25519 signature
 * over the chain head. The signed message is UTF-8 text, lines joined by "\n",
 * no trailing newline. Format 1 (before the witness):
 *
 *   idgate-audit-checkpoint/v1
 *   seq:<decimal seq>
 *   hash:<lowercase hex hash of the chain entry at seq>
 *   signed_at:<ISO 8601 UTC with milliseconds>
 *   key_id:<key id>
 *
 * Format 2 (witness records, docs/audit.md): every record names the one before
 * it, so a record missing from, or rewritten in, the history breaks the link;
 * `kind` tells a signed checkpoint from a sealed head:
 *
 *   idgate-audit-checkpoint/v2
 *   kind:checkpoint|head
 *   seq:<decimal seq>
 *   hash:<hash of the chain entry at seq>
 *   signed_at:<ISO 8601 UTC with milliseconds>
 *   key_id:<key id>
 *   prev:<digest of the previous record, or "genesis">
 *
 * signature = base64( Ed25519( message ) ). key id = first 16 hex characters of
 * SHA-256 over the raw 32-byte public key. A record's digest = lowercase hex
 * SHA-256 of message + "\nsignature:" + signature (the signature included, so a
 * re-signed record is a different record).
 */

export type CheckpointKind = 'checkpoint' | 'head';

/** `prev` of the first record of a witness history. */
export const GENESIS_PREV = 'genesis';

export interface CheckpointStatement {
  seq: number;
  hash: string;
  signedAt: Date | string;
  keyId: string;
  /** 1 when absent. */
  version?: 1 | 2;
  /** Format 2: what the record is (a signed checkpoint or a sealed head). */
  kind?: CheckpointKind;
  /** Format 2: digest of the previous record, or GENESIS_PREV. */
  prev?: string;
}

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  keyId: string;
}

// PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410): fixed 16-byte header + 32-byte seed.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function checkpointMessage(c: CheckpointStatement): string {
  const signedAt = typeof c.signedAt === 'string' ? c.signedAt : c.signedAt.toISOString();
  if ((c.version ?? 1) === 1) {
    return [
      'idgate-audit-checkpoint/v1',
      `seq:${c.seq}`,
      `hash:${c.hash}`,
      `signed_at:${signedAt}`,
      `key_id:${c.keyId}`,
    ].join('\n');
  }
  return [
    'idgate-audit-checkpoint/v2',
    `kind:${c.kind ?? 'checkpoint'}`,
    `seq:${c.seq}`,
    `hash:${c.hash}`,
    `signed_at:${signedAt}`,
    `key_id:${c.keyId}`,
    `prev:${c.prev ?? GENESIS_PREV}`,
  ].join('\n');
}

/** The digest a later format-2 record names as its `prev`: it covers the signature too. */
export function recordDigest(c: CheckpointStatement, signature: string): string {
  return createHash('sha256')
    .update(`${checkpointMessage(c)}\nsignature:${signature}`, 'utf8')
    .digest('hex');
}

export function rawPublicKey(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new TypeError('not an Ed25519 public key');
  return Buffer.from(jwk.x, 'base64url');
}

export function publicKeyId(publicKey: KeyObject): string {
  return createHash('sha256').update(rawPublicKey(publicKey)).digest('hex').slice(0, 16);
}

export function signingKeyFromSeed(seed: Buffer): SigningKey {
  if (seed.length !== 32) throw new TypeError('an Ed25519 seed is 32 bytes');
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: publicKeyId(publicKey) };
}

export function publicKeyFromPem(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new TypeError('not an Ed25519 public key');
  return key;
}

export function signCheckpoint(key: SigningKey, statement: CheckpointStatement): string {
  return sign(null, Buffer.from(checkpointMessage(statement), 'utf8'), key.privateKey).toString('base64');
}

export function verifyCheckpoint(publicKey: KeyObject, statement: CheckpointStatement, signature: string): boolean {
  try {
    return verify(null, Buffer.from(checkpointMessage(statement), 'utf8'), publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}
