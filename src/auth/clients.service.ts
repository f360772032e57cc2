import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import { Page, decodeIdCursor, toPage } from '../common/pagination';
import { ProblemException } from '../common/problem';

/** A client app (tenant), as other modules see it. */
export interface ClientApp {
  id: string;
  name: string;
  createdAt: Date;
}

@Injectable()
export class ClientsService {
  constructor(private readonly prisma: PrismaService) {}

  async createClient(name: string): Promise<ClientApp> {
    const existing = await this.prisma.client.findUnique({ where: { name } });
    if (existing) throw new ProblemException('conflict', `A client named "${name}" already exists.`);
    return this.prisma.client.create({ data: { name } });
  }

  /** For the CLI's `--client NAME`: the client of that name, created if new. */
  async findOrCreateClient(name: string): Promise<ClientApp> {
    return this.prisma.client.upsert({ where: { name }, create: { name }, update: {} });
  }

  async findClient(id: string): Promise<ClientApp | null> {
    return this.prisma.client.findUnique({ where: { id } });
  }

  async listClients(cursor: string | undefined, limit: number): Promise<Page<ClientApp>> {
    const after = decodeIdCursor(cursor);
    const rows = await this.prisma.client.findMany({
      where: after === undefined ? {} : { id: { lt: after } },
      orderBy: { id: 'desc' },
      take: limit + 1,
    });
    return toPage(
      rows,
      limit,
      (r) => r,
      (r) => [r.id],
    );
  }
}
