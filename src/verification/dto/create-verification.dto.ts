import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsArray, IsObject, IsOptional, IsString, MaxLength, MinLength } from 'class-validator';
import { IsPublicImageUrl } from '../image-url-rules';

/*
 * Field formats are deliberately loose here: an ID number or name that breaks the
 * rules is not a 400 but a verification answered -2 / -3 (SPEC §4.3), as the
 * upstream does. Only types and sane sizes are enforced.
 */
export class CreateVerificationDto {
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
    description: 'Resident ID number, 18 characters (a 15-digit legacy number is converted).',
    example: '360426199101010071',
    maxLength: 64,
  })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  id_card?: string;

  @ApiPropertyOptional({
    description:
      'Image mode: URL of a photo of the card’s portrait side (the upstream downloads it; idgate never stores it).',
    example: 'https://images.example.com/idcard/360426199101010071.jpg',
    maxLength: 2048,
  })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(2048)
  @IsPublicImageUrl()
  image_url?: string;

  @ApiPropertyOptional({
    description:
      'Not supported: the upstream accepts image URLs only. Host the image and send `image_url`. Sending this field is refused with 400.',
  })
  @IsOptional()
  image_base64?: unknown;

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

  @ApiPropertyOptional({
    description: 'Your own id for this verification (searchable).',
    example: 'order-1234',
    maxLength: 255,
  })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  reference?: string;
}
