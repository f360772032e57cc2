import { checkIdCardNumber } from '../domain/id-card-number';
import { containsIdCardNumber } from '../domain/id-card-in-text';
import { checkPersonName } from '../domain/person-name';
import { RESULT_DESCRIPTIONS, UpstreamOcrFields } from '../upstream/upstream.types';
import type { Mode, VerificationRequest } from './verification.types';

/*
 * The vendor's field encryption (`encryption`, Tencent FaceID's Encryption object as an array:
 * `{ algorithm, ciphertext_blob, encrypt_list, iv, tag_list }`). idgate holds no key to
 * decrypt, so a field counts as encrypted if and only if an `encrypt_list` names it; every
 * other field is in clear and gets the local checks and its HMAC like any request. A
 * parameter that encrypts nothing, names unknown fields, or claims a field that is readable
 * would let plaintext through without checks or hashes: it is refused (400). Pure functions.
 */

/** The request fields the vendor can take encrypted. */
export const ENCRYPTABLE_FIELDS = ['name', 'id_card'] as const;
export type EncryptableField = (typeof ENCRYPTABLE_FIELDS)[number];

export const ENCRYPTION_ALGORITHMS = ['AES-256-CBC', 'SM4-GCM'] as const;
const ENTRY_FIELDS = new Set(['algorithm', 'ciphertext_blob', 'encrypt_list', 'iv', 'tag_list']);
/** "Customer-defined string, length 16 characters" (the vendor's documentation). */
export const IV_LENGTH = 16;
/** Sane bounds on what is passed through (a KMS ciphertext blob is a few hundred characters). */
const MAX_BLOB_LENGTH = 8192;
const MAX_TAG_LENGTH = 512;

type RequestFields = { name?: unknown; id_card?: unknown; image_url?: unknown };

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * An ID number in clear: 15 digits, or 17 digits and a check character, whatever separators or
 * full-width forms surround them. Also anything non-ASCII: the vendor's ciphertexts are base64.
 */
export function readsAsIdCardNumber(value: string, now: Date = new Date()): boolean {
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7F]/.test(value)) return true;
  const compact = value.normalize('NFKC').replace(/[\s\-_.]/g, '');
  // Digits alone, of an ID number's length or one more or without its check character: no
  // cipher writes that (and hex of 7 or 8 random bytes is all digits now and then: not 14 or 16).
  if (/^(?:\d{15}|\d{17}|\d{17}[\dXx]|\d{19})$/.test(compact)) return true;
  // An ID number inside other text, as references are judged. Hex ciphertexts hold long digit
  // runs by chance, so in them only a whole number whose check character is right counts.
  return /^[0-9A-Fa-f]+$/.test(compact) ? holdsValidIdCardNumber(compact, now) : containsIdCardNumber(value, now);
}

/** Whether some 18 characters of `text` are a valid ID number (date and check character). */
function holdsValidIdCardNumber(text: string, now: Date): boolean {
  for (const match of text.matchAll(/(?=(\d{17}[\dXx]))/g)) {
    if (checkIdCardNumber(match[1], now).ok) return true;
  }
  return false;
}

/**
 * A name in clear: anything non-ASCII (Chinese characters, the separator `·`: never in base64),
 * or a name of several words. A single ASCII word (`Maria`) cannot be told from a short base64
 * ciphertext and is taken as encrypted.
 */
export function readsAsName(value: string): boolean {
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7F]/.test(value)) return true;
  return checkPersonName(value).ok && /\S\s+\S/.test(value.trim());
}

/**
 * Problems with `encryption` for this request (empty: valid). Messages name the part that is
 * wrong, never a value. `encryption` absent is valid (nothing is encrypted).
 */
export function encryptionProblems(encryption: unknown, request: RequestFields): string[] {
  if (encryption === undefined) return [];
  if (!Array.isArray(encryption)) return ['must be an array of encryption objects'];
  if (encryption.length === 0) {
    return ['must hold at least one encryption object naming the encrypted fields (or leave encryption out)'];
  }
  if (encryption.length > ENCRYPTABLE_FIELDS.length) {
    return [`may hold at most ${ENCRYPTABLE_FIELDS.length} encryption objects (one per encryptable field)`];
  }
  const problems: string[] = [];
  const listed = new Set<string>();
  encryption.forEach((entry: unknown, i) => {
    const at = `encryption[${i}]`;
    if (!isPlainObject(entry)) {
      problems.push(`${at} must be an object`);
      return;
    }
    if (Object.keys(entry).some((k) => !ENTRY_FIELDS.has(k))) {
      problems.push(`${at} may only have algorithm, ciphertext_blob, encrypt_list, iv and tag_list`);
    }
    const { algorithm, ciphertext_blob: blob, encrypt_list: list, iv, tag_list: tags } = entry;
    if (!(ENCRYPTION_ALGORITHMS as readonly unknown[]).includes(algorithm)) {
      problems.push(`${at}.algorithm must be one of ${ENCRYPTION_ALGORITHMS.join(', ')}`);
    }
    // The vendor's OpenAPI types the blob as a number; its documentation (and Tencent's) as a string.
    const blobOk =
      (typeof blob === 'string' && blob.trim() !== '' && blob.length <= MAX_BLOB_LENGTH) ||
      (typeof blob === 'number' && Number.isFinite(blob));
    if (!blobOk) problems.push(`${at}.ciphertext_blob must be the encrypted key (a non-empty string)`);
    if (typeof iv !== 'string' || Array.from(iv).length !== IV_LENGTH) {
      problems.push(`${at}.iv must be a string of ${IV_LENGTH} characters`);
    }
    if (!Array.isArray(list) || list.length === 0) {
      problems.push(`${at}.encrypt_list must name the encrypted fields (name, id_card)`);
    } else {
      for (const field of list) {
        if (typeof field !== 'string' || !(ENCRYPTABLE_FIELDS as readonly string[]).includes(field)) {
          problems.push(`${at}.encrypt_list may name only ${ENCRYPTABLE_FIELDS.join(' and ')}`);
        } else if (listed.has(field)) {
          problems.push(`${at}.encrypt_list names ${field} a second time`);
        } else {
          listed.add(field);
        }
      }
    }
    if (tags !== undefined && (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string'))) {
      problems.push(`${at}.tag_list must be an array of strings`);
    } else if (algorithm === 'SM4-GCM') {
      // GCM authenticates each encrypted field: the vendor needs its tag to check it.
      const count = Array.isArray(list) ? list.length : 0;
      const ok =
        Array.isArray(tags) &&
        tags.length === count &&
        tags.every((t) => typeof t === 'string' && t !== '' && t.length <= MAX_TAG_LENGTH);
      if (!ok) problems.push(`${at}.tag_list must hold one tag per field in encrypt_list (SM4-GCM)`);
    }
  });

  if (request.image_url === undefined && (request.name === undefined || request.id_card === undefined)) {
    problems.push('requires name and id_card: the vendor encrypts the fields of name + ID number mode');
  }
  for (const field of listed as Set<EncryptableField>) {
    const value = request[field];
    if (typeof value !== 'string' || value.trim() === '') {
      problems.push(`encrypt_list names ${field}, but no encrypted ${field} is sent`);
    } else if (field === 'id_card' ? readsAsIdCardNumber(value) : readsAsName(value)) {
      problems.push(
        `encrypt_list names ${field}, but ${field} is readable (${field === 'id_card' ? 'an ID number' : 'a name'}, ` +
          'not a ciphertext): encrypt it, or leave it out of encrypt_list',
      );
    }
  }
  return problems;
}

/** The fields a (validated) encryption parameter names as encrypted. */
export function encryptedFieldsOf(encryption: unknown): Set<EncryptableField> {
  const fields = new Set<EncryptableField>();
  if (!Array.isArray(encryption)) return fields;
  for (const entry of encryption) {
    const list = isPlainObject(entry) ? entry.encrypt_list : undefined;
    if (!Array.isArray(list)) continue;
    for (const f of list) if ((ENCRYPTABLE_FIELDS as readonly unknown[]).includes(f)) fields.add(f as EncryptableField);
  }
  return fields;
}

/** A submission's name and ID number, split into what idgate can read and what it passes through. */
export interface PreparedFields {
  /** The clear name to store (sealed, with its HMAC): normalised when the checks passed, as sent when refused; null when encrypted or absent. */
  name: string | null;
  /** The same for the ID number. */
  idCard: string | null;
  /** The local checks' answer on the clear fields (ID number first, as the vendor does); null when they pass. */
  rejection: { result: '-2' | '-3'; description: string } | null;
  /** Both in clear: the reuse window can match them. */
  bothClear: boolean;
  /** `name` / `id_card` as sent to the vendor: clear ones normalised, encrypted ones untouched. */
  upstream: { name?: string; id_card?: string };
}

/**
 * Local checks on the fields sent in clear (the encrypted ones idgate cannot read). In image
 * mode there is nothing to check; name and ID number, if sent, go to the vendor as sent.
 */
export function prepareFields(request: VerificationRequest, mode: Mode, now: Date): PreparedFields {
  const sent = {
    ...(request.name !== undefined ? { name: request.name } : {}),
    ...(request.idCard !== undefined ? { id_card: request.idCard } : {}),
  };
  if (mode !== 'name_id_card') return { name: null, idCard: null, rejection: null, bothClear: false, upstream: sent };
  const encrypted = encryptedFieldsOf(request.encryption);
  const clearName = request.name !== undefined && !encrypted.has('name') ? request.name : null;
  const clearIdCard = request.idCard !== undefined && !encrypted.has('id_card') ? request.idCard : null;

  let name = clearName;
  let idCard = clearIdCard;
  let rejection: PreparedFields['rejection'] = null;
  if (clearIdCard !== null) {
    const check = checkIdCardNumber(clearIdCard, now);
    if (check.ok) idCard = check.normalized;
    else rejection = { result: '-2', description: RESULT_DESCRIPTIONS['-2'] };
  }
  if (rejection === null && clearName !== null) {
    const check = checkPersonName(clearName);
    if (check.ok) name = check.normalized;
    else rejection = { result: '-3', description: RESULT_DESCRIPTIONS['-3'] };
  }
  if (rejection !== null) {
    // Recorded as sent, as local rejections always were.
    name = clearName;
    idCard = clearIdCard;
  }
  return {
    name,
    idCard,
    rejection,
    bothClear: clearName !== null && clearIdCard !== null,
    upstream: {
      ...(request.name !== undefined ? { name: name ?? request.name } : {}),
      ...(request.idCard !== undefined ? { id_card: idCard ?? request.idCard } : {}),
    },
  };
}

/** Keyed hashes of personal data (PiiVault). */
export interface PiiHasher {
  idCardHmac(idCard: string): string;
  nameHmac(name: string): string;
}

/**
 * HMACs to store from the vendor's answer, for exact search: in image mode the ID number it
 * read; in name + ID mode, for a field sent encrypted (the row has no HMAC of it), the value
 * the vendor echoes when it is a readable, valid name or ID number. A field sent in clear
 * already has its HMAC and keeps it.
 */
export function answerHmacs(
  hasher: PiiHasher,
  row: { mode: string; nameHmac: string | null; idCardHmac: string | null },
  answer: UpstreamOcrFields | null,
  now: Date,
): { nameHmac?: string; idCardHmac?: string } {
  if (!answer) return {};
  if (row.mode === 'image') return answer.id_card ? { idCardHmac: hasher.idCardHmac(answer.id_card) } : {};
  const hashes: { nameHmac?: string; idCardHmac?: string } = {};
  if (row.idCardHmac === null && answer.id_card && checkIdCardNumber(answer.id_card, now).ok) {
    hashes.idCardHmac = hasher.idCardHmac(answer.id_card);
  }
  if (row.nameHmac === null && answer.name && checkPersonName(answer.name).ok) {
    hashes.nameHmac = hasher.nameHmac(answer.name);
  }
  return hashes;
}
