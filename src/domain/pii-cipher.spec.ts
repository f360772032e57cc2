import { randomBytes } from 'node:crypto';
import { PiiCipher, PiiCipherError } from './pii-cipher';

const key = (id: string) => ({ id, key: randomBytes(32) });

describe('PiiCipher', () => {
  it('round-trips Chinese text and never stores the plaintext', () => {
    const cipher = new PiiCipher([key('k1')]);
    const sealed = cipher.encrypt('name', '阿卜杜·热合曼𠀀');
    expect(sealed).toMatch(/^v1\.k1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(sealed).not.toContain('阿卜杜');
    expect(cipher.decrypt('name', sealed)).toBe('阿卜杜·热合曼𠀀');
  });

  it('uses a fresh IV each time', () => {
    const cipher = new PiiCipher([key('k1')]);
    expect(cipher.encrypt('id_card', '360426199101010071')).not.toBe(cipher.encrypt('id_card', '360426199101010071'));
  });

  it('encrypts with the newest key and still reads values sealed with older ones', () => {
    const k1 = key('k1');
    const k2 = key('k2');
    const old = new PiiCipher([k1]).encrypt('name', '张三');
    const rotated = new PiiCipher([k1, k2]);
    expect(rotated.decrypt('name', old)).toBe('张三');
    expect(rotated.needsRekey(old)).toBe(true);
    const fresh = rotated.encrypt('name', '张三');
    expect(PiiCipher.keyIdOf(fresh)).toBe('k2');
    expect(rotated.needsRekey(fresh)).toBe(false);
  });

  it('refuses a value whose key left the ring, a tampered value, or a value moved to another field', () => {
    const k1 = key('k1');
    const sealed = new PiiCipher([k1]).encrypt('name', '张三');
    expect(() => new PiiCipher([key('k2')]).decrypt('name', sealed)).toThrow(/not in the key ring/);

    const cipher = new PiiCipher([k1]);
    const parts = sealed.split('.');
    const body = Buffer.from(parts[3], 'base64url');
    body[0] ^= 1;
    parts[3] = body.toString('base64url');
    expect(() => cipher.decrypt('name', parts.join('.'))).toThrow(PiiCipherError);
    expect(() => cipher.decrypt('address', sealed)).toThrow(/failed authentication/);
    expect(() => cipher.decrypt('name', 'plain text')).toThrow(/not an encrypted PII value/);
  });

  it('errors never carry the plaintext', () => {
    const sealed = new PiiCipher([key('k1')]).encrypt('name', '李四');
    try {
      new PiiCipher([key('k1')]).decrypt('name', sealed);
      throw new Error('expected failure');
    } catch (err) {
      expect(String((err as Error).message)).not.toContain('李四');
    }
  });

  it('rejects malformed rings', () => {
    expect(() => new PiiCipher([])).toThrow(/empty/);
    expect(() => new PiiCipher([{ id: 'k1', key: randomBytes(16) }])).toThrow(/32 bytes/);
  });
});
