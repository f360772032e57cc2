import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/*
 * Field-level encryption of personal data at rest: AES-256-GCM under a key ring.
 * Each stored value names the key that sealed it, so keys can rotate: new values
 * use the newest key, old values stay readable while their key is in the ring,
 * and a re-key pass moves them forward.
 *
 * Stored form (text): `v1.<keyId>.<iv base64url>.<ciphertext base64url>.<tag base64url>`.
 * The field's name is bound in as additional authenticated data, so a value
 * copied into another column (say, a name into the address) fails to decrypt.
 */

export interface PiiKeyMaterial {
  id: string;
  key: Buffer;
}

const VERSION = 'v1';
const IV_BYTES = 12;

export class PiiCipherError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PiiCipherError';
  }
}

export class PiiCipher {
  private readonly byId: Map<string, Buffer>;
  private readonly active: PiiKeyMaterial;

  /** `ring` is oldest first; the last key encrypts. */
  constructor(ring: readonly PiiKeyMaterial[]) {
    if (ring.length === 0) throw new PiiCipherError('the PII key ring is empty');
    for (const k of ring) {
      if (k.key.length !== 32) throw new PiiCipherError(`PII key ${k.id} is not 32 bytes`);
      if (!/^[A-Za-z0-9_-]{1,32}$/.test(k.id)) throw new PiiCipherError('PII key ids use letters, digits, _ and -');
    }
    this.byId = new Map(ring.map((k) => [k.id, k.key]));
    this.active = ring[ring.length - 1];
  }

  get activeKeyId(): string {
    return this.active.id;
  }

  encrypt(field: string, plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.active.key, iv);
    cipher.setAAD(Buffer.from(field, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [
      VERSION,
      this.active.id,
      iv.toString('base64url'),
      body.toString('base64url'),
      tag.toString('base64url'),
    ].join('.');
  }

  decrypt(field: string, stored: string): string {
    const parts = stored.split('.');
    if (parts.length !== 5 || parts[0] !== VERSION) throw new PiiCipherError('not an encrypted PII value');
    const [, keyId, iv, body, tag] = parts;
    const key = this.byId.get(keyId);
    if (!key) throw new PiiCipherError(`PII key ${keyId} is not in the key ring`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(field, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      // Never include the value or key material in the error.
      throw new PiiCipherError(`PII value in ${field} failed authentication`);
    }
  }

  /** The key id a stored value was sealed with. */
  static keyIdOf(stored: string): string | null {
    const parts = stored.split('.');
    return parts.length === 5 && parts[0] === VERSION ? parts[1] : null;
  }

  /** True when the value was sealed with an older key than the active one. */
  needsRekey(stored: string): boolean {
    return PiiCipher.keyIdOf(stored) !== this.active.id;
  }
}
