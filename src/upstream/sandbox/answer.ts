import { checkIdCardNumber } from '../../domain/id-card-number';
import { checkPersonName } from '../../domain/person-name';
import type { UpstreamOcrFields, UpstreamResultCode } from '../upstream.types';
import { IdentityRegister } from './identity-register';

/** What the vendor decides for a well-formed request: a result code and the fields it returns. */
export interface Decision {
  result: UpstreamResultCode;
  fields: UpstreamOcrFields;
  /** The normalised identity the decision is about, for the daily-limit counters (absent if invalid). */
  subject?: { name: string; idCard: string };
}

export type DecideOutcome = { ok: true; decision: Decision } | { ok: false; message: string };

const EMPTY_FIELDS: UpstreamOcrFields = { name: '', id_card: '', sex: '', nation: '', birth: '', address: '' };
/** `…/idcard/<id_card>.jpg`, on the URL's path (query and fragment ignored). */
const IMAGE_PATH = /\/idcard\/([0-9A-Za-z]{15,18})\.jpg$/;

function imageIdCard(imageUrl: string): string | null {
  let path: string;
  try {
    path = new URL(imageUrl).pathname;
  } catch {
    return null;
  }
  return IMAGE_PATH.exec(path)?.[1] ?? null;
}

/**
 * The sandbox vendor's decision, before any fault: local checks (-2, -3) with the same
 * rules as idgate, then the register (-5 unknown number, -1 other name, 0 match).
 * Name + ID mode wins when both it and an image are given (as Tencent's API does). In
 * name + ID mode the OCR fields are empty strings and name / id_card echo the request.
 */
export function decide(body: unknown, register: IdentityRegister, now: Date): DecideOutcome {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { ok: false, message: 'The request body must be a JSON object.' };
  }
  const { name, id_card, image_url } = body as Record<string, unknown>;
  for (const [field, value] of Object.entries({ name, id_card, image_url })) {
    if (value !== undefined && typeof value !== 'string') return { ok: false, message: `${field} must be a string.` };
  }

  if (typeof name === 'string' || typeof id_card === 'string') {
    return { ok: true, decision: decideByNameAndNumber(name as string | undefined, id_card as string | undefined) };
  }
  if (typeof image_url === 'string') {
    const fromImage = imageIdCard(image_url);
    if (fromImage === null) return { ok: false, message: 'The image could not be recognised as an ID card.' };
    const number = checkIdCardNumber(fromImage, now);
    if (!number.ok) return { ok: true, decision: { result: '-2', fields: { ...EMPTY_FIELDS, id_card: fromImage } } };
    const person = register.find(number.normalized);
    if (!person) {
      return { ok: true, decision: { result: '-5', fields: { ...EMPTY_FIELDS, id_card: number.normalized } } };
    }
    const { sex, nation, birth, address } = person;
    return {
      ok: true,
      decision: {
        result: '0',
        fields: { name: person.name, id_card: person.id_card, sex, nation, birth, address },
        subject: { name: person.name, idCard: person.id_card },
      },
    };
  }
  return { ok: false, message: 'Either name and id_card, or image_url, is required.' };

  function decideByNameAndNumber(givenName: string | undefined, givenNumber: string | undefined): Decision {
    const echo = { ...EMPTY_FIELDS, name: givenName ?? '', id_card: givenNumber ?? '' };
    const number = checkIdCardNumber(givenNumber ?? '', now);
    if (!number.ok) return { result: '-2', fields: echo };
    const personName = checkPersonName(givenName ?? '');
    if (!personName.ok) return { result: '-3', fields: echo };
    const subject = { name: personName.normalized, idCard: number.normalized };
    const person = register.find(number.normalized);
    if (!person) return { result: '-5', fields: echo, subject };
    return {
      result: IdentityRegister.sameName(person.name, personName.normalized) ? '0' : '-1',
      fields: echo,
      subject,
    };
  }
}
