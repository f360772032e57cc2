import { ApiProperty } from '@nestjs/swagger';

const RESULT_CODES = ['0', '-1', '-2', '-3', '-4', '-5', '-6', '-7'];

export class VerificationDto {
  @ApiProperty({ description: 'Verification id.', format: 'uuid', example: '01a22bbc-7a65-7df5-8dc9-1a9a2b25f50a' })
  id: string;

  @ApiProperty({
    description:
      '`pending` while the upstream is being called; `completed` (answered), `failed` (an upstream error known not to be charged) or `unknown` (outcome could not be known; settled by reconciliation).',
    enum: ['pending', 'completed', 'failed', 'unknown'],
  })
  status: string;

  @ApiProperty({
    description: 'The upstream result code as a string; null until known.',
    enum: RESULT_CODES,
    nullable: true,
    type: String,
    example: '0',
  })
  result: string | null;

  @ApiProperty({
    description: 'The upstream’s description of the result.',
    nullable: true,
    type: String,
    example: 'The name and ID card number are consistent',
  })
  description: string | null;

  @ApiProperty({
    description: 'Whether the call was charged; null while not known.',
    nullable: true,
    type: Boolean,
    example: true,
  })
  charged: boolean | null;

  @ApiProperty({ description: 'Charge status.', enum: ['charged', 'not_charged', 'unknown'] })
  charge_status: string;

  @ApiProperty({
    description: 'Cost of this verification in minor units of `currency`; null while unknown.',
    nullable: true,
    type: Number,
    example: 50,
  })
  amount: number | null;

  @ApiProperty({ description: 'ISO 4217 currency of `amount`.', example: 'CNY' })
  currency: string;

  @ApiProperty({
    description:
      'True when the result was reused from an earlier verification within the client’s reuse window (not charged).',
    example: false,
  })
  reused: boolean;

  @ApiProperty({
    description:
      'Name: in full for compliance; masked (`张*三`) for finance and in a client’s reads; in the answer to a client’s own submission, masked in name + ID mode and as read from the card in image mode. Empty when unknown or purged.',
    example: '张*',
  })
  name: string;

  @ApiProperty({
    description:
      'ID number: in full for compliance; first 6 and last 4 characters (`360426********0071`) for finance and in a client’s reads (the hidden digits are the birth date); in the answer to a client’s own submission, masked in name + ID mode and as read from the card in image mode.',
    example: '360426********0071',
  })
  id_card: string;

  @ApiProperty({
    description:
      'Sex read from the card (image mode): for compliance, and in the answer to the client’s own image submission; empty otherwise (withheld from masked views).',
    example: '',
  })
  sex: string;

  @ApiProperty({
    description:
      'Ethnic group read from the card (image mode): for compliance, and in the answer to the client’s own image submission; empty otherwise (withheld from masked views).',
    example: '',
  })
  nation: string;

  @ApiProperty({
    description:
      'Birth date read from the card (image mode): for compliance, and in the answer to the client’s own image submission; empty otherwise (withheld from masked views: it is what the ID number’s mask hides).',
    example: '',
  })
  birth: string;

  @ApiProperty({
    description:
      'Address read from the card (image mode): for compliance, and in the answer to the client’s own image submission; empty otherwise (withheld from masked views).',
    example: '',
  })
  address: string;

  @ApiProperty({
    description: 'The client’s own reference, if given (shown to every role that may read the verification).',
    nullable: true,
    type: String,
    example: 'order-1234',
  })
  reference: string | null;

  @ApiProperty({
    description: 'The upstream’s trace id for this call, when it gave one.',
    nullable: true,
    type: String,
    example: 'f3457c23-da79-4d7a-ad7b-e94bc622f43f',
  })
  upstream_trace_id: string | null;

  @ApiProperty({
    description: 'The client app this verification belongs to.',
    format: 'uuid',
    example: '01a1f6d4-46c6-7ebb-9e02-5cb499515b8d',
  })
  client_id: string;

  @ApiProperty({
    description: 'When the verification was recorded (UTC).',
    format: 'date-time',
    example: '2026-11-30T09:15:02.117Z',
  })
  created_at: string;

  @ApiProperty({
    description: 'When it left `pending` (UTC), or null.',
    format: 'date-time',
    nullable: true,
    type: String,
    example: '2026-11-30T09:15:02.846Z',
  })
  completed_at: string | null;
}

export class VerificationPageDto {
  @ApiProperty({ type: [VerificationDto], description: 'Verifications, newest first.' })
  items: VerificationDto[];

  @ApiProperty({
    description: 'Cursor for the next page; null on the last page.',
    nullable: true,
    type: String,
    example: 'WyIwMWEyMmJiYy03YTY1LTdkZjUtOGRjOS0xYTlhMmIyNWY1MGEiXQ',
  })
  next_cursor: string | null;
}
