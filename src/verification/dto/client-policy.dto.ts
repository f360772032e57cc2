import { ApiProperty } from '@nestjs/swagger';
import { INT4_MAX, IsInteger } from '../../common/integer';
import { Nullable } from '../../common/nullable';
import type { ClientPolicy } from '../client-policy.service';

export class ClientPolicyDto {
  @ApiProperty({
    description: 'Most verifications per UTC day that may reach the upstream; null for no limit.',
    nullable: true,
    type: Number,
    minimum: 0,
    maximum: 100_000_000,
    example: 1000,
  })
  @Nullable()
  @IsInteger({ min: 0, max: 100_000_000 })
  daily_limit: number | null;

  @ApiProperty({
    description: 'Most spend per UTC month in minor units (unknown calls count as charged); null for no cap.',
    nullable: true,
    type: Number,
    minimum: 0,
    maximum: INT4_MAX,
    example: 500000,
  })
  @Nullable()
  @IsInteger({ min: 0, max: INT4_MAX })
  monthly_spend_cap: number | null;

  @ApiProperty({
    description:
      'Seconds within which a repeat of the same name + ID number returns the stored result, not charged; null: off.',
    nullable: true,
    type: Number,
    minimum: 1,
    maximum: 90 * 24 * 3600,
    example: 3600,
  })
  @Nullable()
  @IsInteger({ min: 1, max: 90 * 24 * 3600 })
  reuse_window_seconds: number | null;

  static from(p: ClientPolicy): ClientPolicyDto {
    return {
      daily_limit: p.dailyLimit,
      monthly_spend_cap: p.monthlySpendCap,
      reuse_window_seconds: p.reuseWindowSeconds,
    };
  }
}
