import type { UpstreamOcrFields } from '../upstream/upstream.types';
import type { ChargeState, VerificationState } from './verification-rules';

export type Channel = 'api' | 'drop_in';
export type Mode = 'name_id_card' | 'image';

/** A verification as the rest of idgate sees it, personal data decrypted (null once purged). */
export interface VerificationRecord {
  id: string;
  clientId: string;
  channel: Channel;
  mode: Mode;
  reference: string | null;
  status: VerificationState;
  result: string | null;
  description: string | null;
  chargeStatus: ChargeState;
  unitPrice: number;
  amount: number | null;
  currency: string;
  localCheck: boolean;
  reusedFromId: string | null;
  upstreamTraceId: string | null;
  upstreamError: string | null;
  createdAt: Date;
  completedAt: Date | null;
  /** Null when the fields were never readable (encrypted input) or have been purged. */
  pii: {
    name: string;
    idCard: string;
    ocr: UpstreamOcrFields | null;
  } | null;
  piiPurgedAt: Date | null;
}

/** What a client submits (both channels). */
export interface VerificationRequest {
  name?: string;
  idCard?: string;
  imageUrl?: string;
  encryption?: unknown[];
  reference?: string;
}

export interface VerificationFilters {
  from?: Date;
  to?: Date;
  result?: string;
  charged?: 'true' | 'false' | 'unknown';
  status?: string;
  reference?: string;
  clientId?: string;
  idCard?: string;
  name?: string;
}
