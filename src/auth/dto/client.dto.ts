import { ApiProperty } from '@nestjs/swagger';
import { IsString, Length, Matches } from 'class-validator';
import type { ClientApp } from '../clients.service';

export class CreateClientDto {
  @ApiProperty({
    description: 'Unique name of the client app.',
    example: 'acme-checkout',
    minLength: 1,
    maxLength: 100,
  })
  @IsString()
  @Length(1, 100)
  @Matches(/^[\p{L}\p{N}][\p{L}\p{N} ._-]*$/u, {
    message: 'must start with a letter or digit and use letters, digits, spaces, ".", "_" or "-"',
  })
  name: string;
}

export class ClientDto {
  @ApiProperty({ description: 'Client id.', format: 'uuid', example: '01a1f6d4-46c6-7ebb-9e02-5cb499515b8d' })
  id: string;

  @ApiProperty({ description: 'Unique name of the client app.', example: 'acme-checkout' })
  name: string;

  @ApiProperty({
    description: 'When the client was created (UTC).',
    format: 'date-time',
    example: '2026-11-20T02:41:09.318Z',
  })
  created_at: string;

  static from(client: ClientApp): ClientDto {
    return { id: client.id, name: client.name, created_at: client.createdAt.toISOString() };
  }
}

export class ClientPageDto {
  @ApiProperty({ type: [ClientDto], description: 'Clients, newest first.' })
  items: ClientDto[];

  @ApiProperty({
    description: 'Cursor for the next page; null on the last page.',
    nullable: true,
    type: String,
    example: 'WyIwMWExZjZkNC00NmM2LTdlYmItOWUwMi01Y2I0OTk1MTViOGQiXQ',
  })
  next_cursor: string | null;
}
