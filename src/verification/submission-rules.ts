import { validationProblem } from '../common/problem';
import type { Channel, Mode, VerificationRequest } from './verification.types';

/** What either channel's body holds once its DTO has checked types and sizes. */
export interface SubmissionBody {
  name?: string;
  id_card?: string;
  image_url?: string;
  encryption?: unknown[];
  reference?: string;
  image_base64?: unknown;
}

export interface ParsedSubmission {
  request: VerificationRequest;
  mode: Mode;
  idempotencyKey?: string;
}

const MAX_IDEMPOTENCY_KEY = 255;

/**
 * The one check of a submission beyond its DTO's types and sizes, on both channels: which mode
 * it is, what it must carry, and the Idempotency-Key's length. Throws a 400 naming every field
 * at fault. What the key may contain (no ID number) is checked for every request as it arrives
 * (common/body-parsers.ts); the field *contents* are not errors here but local checks answered
 * -2 / -3 as the upstream would (encryption-rules.ts).
 */
export function parseSubmission(
  channel: Channel,
  body: SubmissionBody,
  idempotencyKey: string | undefined,
): ParsedSubmission {
  const problems: Array<{ field: string; message: string }> = [];
  if (channel === 'api' && body.image_base64 !== undefined) {
    problems.push({
      field: 'image_base64',
      message: 'is not supported: the upstream takes image URLs only; host the image and send image_url',
    });
  }
  if (channel === 'api' && body.image_url !== undefined && (body.name !== undefined || body.id_card !== undefined)) {
    problems.push({ field: 'image_url', message: 'cannot be combined with name and id_card: choose one mode' });
  }
  if (body.image_url === undefined && !body.encryption) {
    if (body.name === undefined) problems.push({ field: 'name', message: 'is required unless image_url is sent' });
    if (body.id_card === undefined)
      problems.push({ field: 'id_card', message: 'is required unless image_url is sent' });
  }
  if (idempotencyKey !== undefined && (idempotencyKey.length === 0 || idempotencyKey.length > MAX_IDEMPOTENCY_KEY)) {
    problems.push({ field: 'Idempotency-Key', message: `must be 1-${MAX_IDEMPOTENCY_KEY} characters` });
  }
  if (problems.length > 0) throw validationProblem(problems);
  return {
    mode: body.image_url !== undefined ? 'image' : 'name_id_card',
    idempotencyKey,
    request: {
      name: body.name,
      idCard: body.id_card,
      imageUrl: body.image_url,
      encryption: body.encryption,
      reference: channel === 'api' ? body.reference : undefined,
    },
  };
}
