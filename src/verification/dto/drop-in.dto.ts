import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsArray, IsObject, IsOptional, IsString, MaxLength, MinLength } from 'class-validator';
import { IsPublicImageUrl } from '../image-url-rules';

/** The upstream's request body, field for field (`POST /identity/idcard/ocr`); `POST /v1/verifications` extends it. */
export class DropInRequestDto {
  @ApiPropertyOptional({
    description: 'Name as on the ID card (name + ID number mode).',
    example: '张三',
    maxLength: 200,
  })
  @IsOptional()
  @IsString()
  @MaxLength(200)
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
      'The upstream’s sensitive-field encryption parameter, passed through untouched (array of `{algorithm, ciphertext_blob, encrypt_list, iv, tag_list}`). With it, idgate cannot read the fields and skips local checks.',
    type: 'array',
    items: { type: 'object' },
  })
  @IsOptional()
  @IsArray()
  @IsObject({ each: true })
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
