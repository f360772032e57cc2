import { ApiProperty } from '@nestjs/swagger';

const RESULT_CODES = ['0', '-1', '-2', '-3', '-4', '-5', '-6', '-7'];

export class VerificationDto {
  @ApiProperty({ description: 'Verification id.', format: 'uuid' })
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

  @ApiProperty({ description: 'Whether the call was charged; null while not known.', nullable: true, type: Boolean })
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
  })
  reused: boolean;

  @ApiProperty({
    description: 'Name: masked (`张*三`) unless the caller’s role may see it in full; empty when unknown or purged.',
    example: '张*',
  })
  name: string;

  @ApiProperty({
    description: 'ID number: masked (`360426********0071`) unless the caller’s role may see it in full.',
    example: '360426********0071',
  })
  id_card: string;

  @ApiProperty({ description: 'Sex read from the card (image mode); empty otherwise.' })
  sex: string;

  @ApiProperty({ description: 'Ethnic group read from the card (image mode); empty otherwise.' })
  nation: string;

  @ApiProperty({ description: 'Birth date read from the card (image mode); empty otherwise.' })
  birth: string;

  @ApiProperty({
    description:
      'Address read from the card (image mode): masked after its first 6 characters unless the role may see it in full.',
  })
  address: string;

  @ApiProperty({ description: 'The client’s own reference, if given.', nullable: true, type: String })
  reference: string | null;

  @ApiProperty({
    description: 'The upstream’s trace id for this call, when it gave one.',
    nullable: true,
    type: String,
  })
  upstream_trace_id: string | null;

  @ApiProperty({ description: 'The client app this verification belongs to.', format: 'uuid' })
  client_id: string;

  @ApiProperty({ description: 'When the verification was recorded (UTC).', format: 'date-time' })
  created_at: string;

  @ApiProperty({
    description: 'When it left `pending` (UTC), or null.',
    format: 'date-time',
    nullable: true,
    type: String,
  })
  completed_at: string | null;
}

export class VerificationPageDto {
  @ApiProperty({ type: [VerificationDto], description: 'Verifications, newest first.' })
  items: VerificationDto[];

  @ApiProperty({ description: 'Cursor for the next page; null on the last page.', nullable: true, type: String })
  next_cursor: string | null;
}
