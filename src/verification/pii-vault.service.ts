import { Injectable } from '@nestjs/common';
import { idCardHmac } from '../audit/id-card-hmac';
import { AppConfig } from '../config/app-config';
import { normalizeIdCardNumber } from '../domain/id-card-number';
import { checkPersonName } from '../domain/person-name';
import { PiiCipher } from '../domain/pii-cipher';
import { createHmac } from 'node:crypto';

/** The personal-data fields stored encrypted; each name is bound into its ciphertext. */
export type PiiField = 'name' | 'id_card' | 'ocr' | 'idempotent_response';

/**
 * Encryption at rest and keyed hashes for exact search, under the configured key
 * ring (PII_KEYS) and HMAC key (PII_HMAC_KEY).
 */
@Injectable()
export class PiiVault {
  private readonly cipher: PiiCipher;
  private readonly hmacKey: Buffer;

  constructor(config: AppConfig) {
    this.cipher = new PiiCipher(config.pii.keys);
    this.hmacKey = config.pii.hmacKey;
  }

  seal(field: PiiField, plaintext: string): string {
    return this.cipher.encrypt(field, plaintext);
  }

  open(field: PiiField, stored: string): string {
    return this.cipher.decrypt(field, stored);
  }

  needsRekey(stored: string): boolean {
    return this.cipher.needsRekey(stored);
  }

  get activeKeyId(): string {
    return this.cipher.activeKeyId;
  }

  /** HMAC of the normalised ID number (a 15-digit number hashes like its 18-digit form). */
  idCardHmac(idCard: string): string {
    return idCardHmac(this.hmacKey, normalizeIdCardNumber(idCard));
  }

  /** HMAC of the normalised name (look-alike dots folded, NFC), domain-separated from ID numbers. */
  nameHmac(name: string): string {
    const check = checkPersonName(name);
    const normalized = check.ok ? check.normalized : name.trim().normalize('NFC');
    return createHmac('sha256', this.hmacKey).update('name\n').update(normalized, 'utf8').digest('hex');
  }
}
