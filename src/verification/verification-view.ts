import { maskIdCardNumber } from '../domain/id-card-number';
import { maskPersonName } from '../domain/person-name';
import { RESULT_DESCRIPTIONS, UpstreamResultCode } from '../upstream/upstream.types';
import type { VerificationDto } from './dto/verification.dto';
import { chargedFlag } from './verification-rules';
import type { VerificationRecord } from './verification.types';

/**
 * How much of a verification's personal data a response shows (README, "Personal data per role"):
 * - `full`: everything (compliance; each such read is audited).
 * - `masked`: what a role without full access may see of any verification, read at any time
 *   (finance; a client reading its own): name `张*三`, ID number first 6 + last 4. The hidden
 *   ID digits are the birth date, and the card's sex, ethnic group, birth date and address
 *   would give it back or say more than the mask: they are withheld (empty strings).
 * - `answer`: the answer to a client's own submission. In image mode it carries what the vendor
 *   read from the card, in full, as the drop-in does (the client sent the card: nothing is
 *   revealed that it did not hold). In name + ID mode the vendor only echoes what the client
 *   sent, which is shown masked.
 */
export type PiiView = 'full' | 'masked' | 'answer';

/**
 * The API's view of a verification. `true` / `false` are the older boolean form: `true` is
 * `full`, `false` is `answer` (what apiReply renders for the submitting client).
 */
export function toVerificationDto(v: VerificationRecord, view: PiiView | boolean): VerificationDto {
  const shown: PiiView = view === true ? 'full' : view === false ? 'answer' : view;
  const pii = v.pii;
  const ocr = pii?.ocr;
  const full = shown === 'full' || (shown === 'answer' && v.mode === 'image');
  const masked = (value: string, mask: (s: string) => string) => (value === '' ? '' : full ? value : mask(value));
  // Withheld, not masked: any part of them would reveal the masked digits or more.
  const cardField = (value: string | undefined) => (full ? (value ?? '') : '');
  return {
    id: v.id,
    status: v.status,
    result: v.result,
    description: v.description,
    charged: chargedFlag(v.chargeStatus),
    charge_status: v.chargeStatus,
    amount: v.amount,
    currency: v.currency,
    reused: v.reusedFromId !== null,
    name: masked(pii?.name ?? '', maskPersonName),
    id_card: masked(pii?.idCard ?? '', maskIdCardNumber),
    sex: cardField(ocr?.sex),
    nation: cardField(ocr?.nation),
    birth: cardField(ocr?.birth),
    address: cardField(ocr?.address),
    reference: v.reference,
    upstream_trace_id: v.upstreamTraceId,
    client_id: v.clientId,
    created_at: v.createdAt.toISOString(),
    completed_at: v.completedAt?.toISOString() ?? null,
  };
}

/** The upstream's own success body, field for field (every value a string). */
export interface UpstreamStyleBody {
  result: string;
  description: string;
  name: string;
  id_card: string;
  sex: string;
  nation: string;
  birth: string;
  address: string;
}

/**
 * The drop-in endpoint answers exactly as the upstream does. In name + ID mode the
 * upstream echoes name and ID number and leaves the OCR fields empty; in image mode
 * it returns what it read from the card, which is what the caller asked for.
 */
export function toUpstreamStyleBody(v: VerificationRecord): UpstreamStyleBody {
  const ocr = v.pii?.ocr;
  const image = v.mode === 'image';
  return {
    result: v.result ?? '',
    description: v.description ?? (v.result ? RESULT_DESCRIPTIONS[v.result as UpstreamResultCode] : ''),
    name: image ? (ocr?.name ?? '') : (v.pii?.name ?? ''),
    id_card: image ? (ocr?.id_card ?? '') : (v.pii?.idCard ?? ''),
    sex: ocr?.sex ?? '',
    nation: ocr?.nation ?? '',
    birth: ocr?.birth ?? '',
    address: ocr?.address ?? '',
  };
}
