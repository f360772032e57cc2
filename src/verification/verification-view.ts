import { maskIdCardNumber } from '../domain/id-card-number';
import { maskPersonName } from '../domain/person-name';
import { RESULT_DESCRIPTIONS, UpstreamResultCode } from '../upstream/upstream.types';
import type { VerificationDto } from './dto/verification.dto';
import { chargedFlag } from './verification-rules';
import type { VerificationRecord } from './verification.types';

const ADDRESS_VISIBLE_CHARS = 6;

export function maskAddress(address: string): string {
  const chars = Array.from(address);
  if (chars.length <= ADDRESS_VISIBLE_CHARS) return address === '' ? '' : '*'.repeat(chars.length);
  return chars.slice(0, ADDRESS_VISIBLE_CHARS).join('') + '*'.repeat(Math.min(8, chars.length - ADDRESS_VISIBLE_CHARS));
}

/** The API's view of a verification; personal data masked unless `fullPii`. */
export function toVerificationDto(v: VerificationRecord, fullPii: boolean): VerificationDto {
  const pii = v.pii;
  const ocr = pii?.ocr;
  const show = (value: string, mask: (s: string) => string) => (value === '' ? '' : fullPii ? value : mask(value));
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
    name: show(pii?.name ?? '', maskPersonName),
    id_card: show(pii?.idCard ?? '', maskIdCardNumber),
    sex: ocr?.sex ?? '',
    nation: ocr?.nation ?? '',
    birth: ocr?.birth ?? '',
    address: show(ocr?.address ?? '', maskAddress),
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
