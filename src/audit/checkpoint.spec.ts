import { createHash, randomBytes } from 'node:crypto';
import {
  checkpointMessage,
  GENESIS_PREV,
  publicKeyFromPem,
  recordDigest,
  publicKeyId,
  signCheckpoint,
  signingKeyFromSeed,
  verifyCheckpoint,
} from './checkpoint';

describe('signed checkpoints', () => {
  const key = signingKeyFromSeed(randomBytes(32));
  const statement = {
    seq: 42,
    hash: 'ab'.repeat(32),
    signedAt: new Date('2026-03-04T05:06:07.089Z'),
    keyId: key.keyId,
  };

  it('signs the documented message', () => {
    expect(checkpointMessage(statement)).toBe(
      `idgate-audit-checkpoint/v1\nseq:42\nhash:${'ab'.repeat(32)}\nsigned_at:2026-03-04T05:06:07.089Z\nkey_id:${key.keyId}`,
    );
  });

  it('verifies its own signature and refuses any change to the statement or another key', () => {
    const signature = signCheckpoint(key, statement);
    expect(Buffer.from(signature, 'base64')).toHaveLength(64);
    expect(verifyCheckpoint(key.publicKey, statement, signature)).toBe(true);
    expect(verifyCheckpoint(key.publicKey, { ...statement, seq: 43 }, signature)).toBe(false);
    expect(verifyCheckpoint(key.publicKey, { ...statement, hash: 'cd'.repeat(32) }, signature)).toBe(false);
    expect(verifyCheckpoint(key.publicKey, statement, 'bm90IGEgc2lnbmF0dXJl')).toBe(false);
    const other = signingKeyFromSeed(randomBytes(32));
    expect(verifyCheckpoint(other.publicKey, statement, signature)).toBe(false);
  });

  it('derives the same key from the same seed, and a key id from the public key alone', () => {
    const seed = randomBytes(32);
    const a = signingKeyFromSeed(seed);
    const b = signingKeyFromSeed(Buffer.from(seed));
    expect(a.keyId).toBe(b.keyId);
    expect(a.keyId).toMatch(/^[0-9a-f]{16}$/);
    const pem = a.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    expect(publicKeyId(publicKeyFromPem(pem))).toBe(a.keyId);
    expect(() => signingKeyFromSeed(randomBytes(16))).toThrow(/32 bytes/);
  });

  it('format 2 adds the kind and the previous record, and a record digest covering the signature', () => {
    const v2 = { ...statement, version: 2 as const, kind: 'head' as const, prev: 'cd'.repeat(32) };
    expect(checkpointMessage(v2)).toBe(
      `idgate-audit-checkpoint/v2\nkind:head\nseq:42\nhash:${'ab'.repeat(32)}\nsigned_at:2026-03-04T05:06:07.089Z\n` +
        `key_id:${key.keyId}\nprev:${'cd'.repeat(32)}`,
    );
    expect(checkpointMessage({ ...v2, kind: undefined, prev: undefined })).toContain('kind:checkpoint');
    expect(checkpointMessage({ ...v2, prev: undefined })).toMatch(new RegExp(`\\nprev:${GENESIS_PREV}$`));
    const signature = signCheckpoint(key, v2);
    expect(verifyCheckpoint(key.publicKey, v2, signature)).toBe(true);
    // A format-1 reading of the same fields is another message: the signature does not carry over.
    expect(verifyCheckpoint(key.publicKey, statement, signature)).toBe(false);
    expect(verifyCheckpoint(key.publicKey, { ...v2, prev: 'ef'.repeat(32) }, signature)).toBe(false);
    expect(verifyCheckpoint(key.publicKey, { ...v2, kind: 'checkpoint' }, signature)).toBe(false);
    // The digest: sha256 over message + "\nsignature:" + signature.
    const digest = createHash('sha256')
      .update(`${checkpointMessage(v2)}\nsignature:${signature}`)
      .digest('hex');
    expect(recordDigest(v2, signature)).toBe(digest);
    expect(recordDigest(v2, signCheckpoint(signingKeyFromSeed(randomBytes(32)), v2))).not.toBe(digest);
  });
});
