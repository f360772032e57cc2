import { ApiProperty } from '@nestjs/swagger';
import { IsInt, Max, Min, ValidateIf } from 'class-validator';
import type { ClientPolicy } from '../client-policy.service';

export class ClientPolicyDto {
  @ApiProperty({
    description: 'Most verifications per UTC day that may reach the upstream; null for no limit.',
    nullable: true,
    type: Number,
    example: 1000,
  })
  @ValidateIf((_, v) => v !== null)
  @IsInt()
  @Min(0)
  @Max(100_000_000)
  daily_limit: number | null;

  @ApiProperty({
    description: 'Most spend per UTC month in minor units (unknown calls count as charged); null for no cap.',
    nullable: true,
    type: Number,
    example: 500000,
  })
  @ValidateIf((_, v) => v !== null)
  @IsInt()
  @Min(0)
  monthly_spend_cap: number | null;

  @ApiProperty({
    description:
      'Seconds within which a repeat of the same name + ID number returns the stored result, not charged; null: off.',
    nullable: true,
    type: Number,
    example: 3600,
  })
  @ValidateIf((_, v) => v !== null)
  @IsInt()
  @Min(1)
  @Max(90 * 24 * 3600)
  reuse_window_seconds: number | null;

  static from(p: ClientPolicy): ClientPolicyDto {
    return {
      daily_limit: p.dailyLimit,
      monthly_spend_cap: p.monthlySpendCap,
      reuse_window_seconds: p.reuseWindowSeconds,
    };
  }
}
