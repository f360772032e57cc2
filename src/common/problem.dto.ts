import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/* The error bodies idgate sends, as OpenAPI schemas (documentation only: no validation runs on them). */

export class FieldErrorDto {
  @ApiProperty({
    description: 'The request field at fault, as the client sent it (dotted for nested ones).',
    example: 'id_card',
  })
  field!: string;

  @ApiProperty({ description: 'What is wrong with it.', example: 'check digit does not match' })
  message!: string;
}

/** RFC 9457 problem details (`application/problem+json`), the error body of every `/v1` operation. */
export class ProblemDto {
  @ApiProperty({
    description: 'Stable URN of the kind of problem (`urn:idgate:problem:<kind>`): branch on this, not on `detail`.',
    example: 'urn:idgate:problem:validation',
  })
  type!: string;

  @ApiProperty({ description: 'Short summary of the kind of problem.', example: 'Request validation failed' })
  title!: string;

  @ApiProperty({ description: 'The HTTP status, repeated.', example: 400 })
  status!: number;

  @ApiPropertyOptional({
    description: 'What went wrong with this request, for people. Never holds personal data or secrets.',
    example: 'id_card: check digit does not match',
  })
  detail?: string;

  @ApiPropertyOptional({
    description: 'The request path (query string removed; personal data never appears in it).',
    example: '/v1/verifications',
  })
  instance?: string;

  @ApiPropertyOptional({
    description: 'The request id (also the `X-Request-Id` response header): quote it to support.',
    example: '0f4c3a9e-5b1d-4c7e-9a55-2c1f0d7b8e61',
  })
  request_id?: string;

  @ApiPropertyOptional({ type: [FieldErrorDto], description: 'With 400 validation problems: each bad field.' })
  errors?: FieldErrorDto[];

  @ApiPropertyOptional({
    description: 'With 429 and some 503 answers: seconds to wait before trying again (also the `Retry-After` header).',
    example: 30,
  })
  retry_after_seconds?: number;
}

class UpstreamErrorDetailDto {
  @ApiProperty({
    description:
      'The upstream’s error code: `token_mismatched` (bad request), `invalid_token` (401/403), `api_not_implemented` (404), `too_many_requests` (429), `api_error` (5xx).',
    example: 'token_mismatched',
  })
  code!: string;

  @ApiProperty({
    description: 'What went wrong, naming the field where one is at fault.',
    example: 'id_card: is required',
  })
  message!: string;
}

/** The upstream's own error body, which the drop-in endpoint answers with: `{ success: false, error, trace_id }`. */
export class UpstreamErrorDto {
  @ApiProperty({ description: 'Always `false` on an error.', example: false })
  success!: boolean;

  @ApiProperty({ type: UpstreamErrorDetailDto, description: 'The error, in the upstream’s codes.' })
  error!: UpstreamErrorDetailDto;

  @ApiProperty({
    description: 'The request id, as the upstream names it.',
    example: '0f4c3a9e-5b1d-4c7e-9a55-2c1f0d7b8e61',
  })
  trace_id!: string;
}
