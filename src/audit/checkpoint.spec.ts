import { randomBytes } from 'node:crypto';
import {
  checkpointMessage,
  publicKeyFromPem,
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
});
