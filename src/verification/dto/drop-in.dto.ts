import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength, MinLength, registerDecorator, ValidationArguments } from 'class-validator';
import { ENCRYPTABLE_FIELDS, ENCRYPTION_ALGORITHMS, encryptionProblems, IV_LENGTH } from '../encryption-rules';
import { IsPublicImageUrl } from '../image-url-rules';

/** True when a string or key anywhere in `value` holds NUL (the global pipe reports those, field by field). */
function holdsNul(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node === 'string') {
      if (node.includes('\u0000')) return true;
    } else if (node !== null && typeof node === 'object') {
      for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
        if (k.includes('\u0000')) return true;
        stack.push(v);
      }
    }
  }
  return false;
}

/**
 * `encryption` as the vendor documents it, checked against the request it comes with
 * (encryption-rules.ts): what it names is encrypted, everything else is in clear.
 */
function IsVendorEncryption(): PropertyDecorator {
  const problems = (args: ValidationArguments) =>
    holdsNul(args.value) ? [] : encryptionProblems(args.value, args.object as DropInRequestDto);
  return (target: object, propertyName: string | symbol) =>
    registerDecorator({
      name: 'isVendorEncryption',
      target: target.constructor,
      propertyName: String(propertyName),
      validator: {
        validate: (_value: unknown, args: ValidationArguments) => problems(args).length === 0,
        defaultMessage: (args: ValidationArguments) => problems(args).join('; '),
      },
    });
}

/** The upstream's request body, field for field (`POST /identity/idcard/ocr`); `POST /v1/verifications` extends it. */
export class DropInRequestDto {
  @ApiPropertyOptional({
    description:
      'Name as on the ID card (name + ID number mode), or its ciphertext when `encryption` names it (which is why it may be longer than a name).',
    example: '张三',
    maxLength: 400,
  })
  @IsOptional()
  @IsString()
  // A 50-character name encrypted with AES-256-CBC is up to 280 characters of base64.
  @MaxLength(400)
  name?: string;

  @ApiPropertyOptional({
    description: 'Resident ID number, 18 characters; a 15-digit legacy number is converted (name + ID number mode).',
    example: '360426199101010071',
    maxLength: 64,
  })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  id_card?: string;

  @ApiPropertyOptional({
    description:
      'Image mode: https URL of a photo of the card’s portrait side on a public host (the upstream downloads it; idgate never stores it).',
    example: 'https://images.example.com/idcard/360426199101010071.jpg',
  })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(2048)
  @IsPublicImageUrl()
  image_url?: string;

  @ApiPropertyOptional({
    description:
      'The vendor’s field encryption, passed through: one object per set of encrypted fields. idgate holds no key: a field is encrypted if and only if an `encrypt_list` names it (`name`, `id_card`); fields sent in clear get the local checks and their keyed hashes. Refused with 400: an empty array or list, unknown fields, a listed field not sent or readable (an ID number or a name in clear), a malformed object.',
    type: 'array',
    minItems: 1,
    maxItems: ENCRYPTABLE_FIELDS.length,
    items: {
      type: 'object',
      required: ['algorithm', 'ciphertext_blob', 'encrypt_list', 'iv'],
      additionalProperties: false,
      properties: {
        algorithm: { type: 'string', enum: [...ENCRYPTION_ALGORITHMS] },
        ciphertext_blob: { type: 'string', description: 'The symmetric key, encrypted (KMS ciphertext blob).' },
        encrypt_list: {
          type: 'array',
          minItems: 1,
          items: { type: 'string', enum: [...ENCRYPTABLE_FIELDS] },
          description: 'The request fields sent encrypted.',
        },
        iv: { type: 'string', minLength: IV_LENGTH, maxLength: IV_LENGTH, description: 'Initialisation vector.' },
        tag_list: {
          type: 'array',
          items: { type: 'string' },
          description: 'SM4-GCM: one authentication tag per field in encrypt_list.',
        },
      },
    },
    example: [
      {
        algorithm: 'AES-256-CBC',
        ciphertext_blob:
          'O7AzyLteSXdiFvo1yhaYLcBjPNjUdaNFk43t2o2iiOOXRUEf8Xa5h3xLqMMvfQDJQecF3te3Zbwp1V9qS2oY6m9glAfcVEj8JmJxRfPqtwmEDD7EDIuHQ6MM2jESvzwgziWza9DrmIcLqzkVJb8QIlqQflLx7xbM',
        encrypt_list: ['id_card'],
        iv: 'PdZidipOeTdYmTC6',
      },
    ],
  })
  @IsOptional()
  @IsVendorEncryption()
  encryption?: Record<string, unknown>[];
}

/** The upstream's response: every field a string; OCR fields empty in name + ID mode. */
export class DropInResponseDto {
  @ApiProperty({
    description: 'Result code as a string: "0" consistent, "-1" inconsistent (both charged); "-2" … "-7" not charged.',
    example: '0',
  })
  result: string;

  @ApiProperty({
    description: 'The upstream’s description of the result.',
    example: 'The name and ID card number are consistent',
  })
  description: string;

  @ApiProperty({ description: 'Name (as sent, or read from the card in image mode).', example: '张三' })
  name: string;

  @ApiProperty({
    description: 'ID number (as sent, or read from the card in image mode).',
    example: '360426199101010071',
  })
  id_card: string;

  @ApiProperty({ description: 'Sex read from the card; empty in name + ID mode.', example: '' })
  sex: string;

  @ApiProperty({ description: 'Ethnic group read from the card; empty in name + ID mode.', example: '' })
  nation: string;

  @ApiProperty({ description: 'Birth date read from the card; empty in name + ID mode.', example: '' })
  birth: string;

  @ApiProperty({ description: 'Address read from the card; empty in name + ID mode.', example: '' })
  address: string;
}
