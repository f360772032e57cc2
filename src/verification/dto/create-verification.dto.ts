import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength, MinLength, registerDecorator } from 'class-validator';
import { containsIdCardNumber } from '../../domain/id-card-in-text';
import { Nullable } from '../../common/nullable';
import { DropInRequestDto } from './drop-in.dto';

/**
 * A reference is shown unmasked to every role that may read the verification and is an
 * exact-match filter: an ID number in it would undo the mask and the search rules.
 */
function HoldsNoIdCardNumber(): PropertyDecorator {
  return (target: object, propertyName: string | symbol) =>
    registerDecorator({
      name: 'holdsNoIdCardNumber',
      target: target.constructor,
      propertyName: String(propertyName),
      validator: {
        validate: (value: unknown) => typeof value !== 'string' || !containsIdCardNumber(value),
        defaultMessage: () =>
          'must not contain an ID number: references are shown unmasked to every role that reads the verification',
      },
    });
}

/*
 * The upstream's request fields (shared with the drop-in endpoint), plus idgate's own.
 * Field formats are deliberately loose: an ID number or name that breaks the rules
 * is not a 400 but a verification answered -2 / -3 (SPEC §4.3), as the upstream does.
 * Only types and sane sizes are enforced.
 */
export class CreateVerificationDto extends DropInRequestDto {
  @ApiPropertyOptional({
    type: String,
    description:
      'Not supported: the upstream accepts image URLs only. Host the image and send `image_url`. Sending this field is refused with 400.',
    example:
      '/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/',
  })
  // Null too: whatever is sent here gets the message that says what to send instead.
  @Nullable()
  @IsOptional()
  image_base64?: unknown;

  @ApiPropertyOptional({
    description:
      'Your own id for this verification (searchable). Shown unmasked to every role that may read the verification: it must not contain an ID number (400), and should hold no other personal data.',
    example: 'order-1234',
    maxLength: 255,
  })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  @HoldsNoIdCardNumber()
  reference?: string;
}
