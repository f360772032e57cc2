import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength, MinLength } from 'class-validator';
import { DropInRequestDto } from './drop-in.dto';

/*
 * The upstream's request fields (shared with the drop-in endpoint), plus idgate's own.
 * Field formats are deliberately loose: an ID number or name that breaks the rules
 * is not a 400 but a verification answered -2 / -3 (SPEC §4.3), as the upstream does.
 * Only types and sane sizes are enforced.
 */
export class CreateVerificationDto extends DropInRequestDto {
  @ApiPropertyOptional({
    description:
      'Not supported: the upstream accepts image URLs only. Host the image and send `image_url`. Sending this field is refused with 400.',
  })
  @IsOptional()
  image_base64?: unknown;

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
