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
  @ApiProperty({ description: 'Client id.', format: 'uuid' })
  id: string;

  @ApiProperty({ description: 'Unique name of the client app.' })
  name: string;

  @ApiProperty({ description: 'When the client was created (UTC).', format: 'date-time' })
  created_at: string;

  static from(client: ClientApp): ClientDto {
    return { id: client.id, name: client.name, created_at: client.createdAt.toISOString() };
  }
}

export class ClientPageDto {
  @ApiProperty({ type: [ClientDto], description: 'Clients, newest first.' })
  items: ClientDto[];

  @ApiProperty({ description: 'Cursor for the next page; null on the last page.', nullable: true, type: String })
  next_cursor: string | null;
}
