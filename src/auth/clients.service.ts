import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { AuditContext } from '../audit/audit-vocabulary';
import { PrismaService } from '../database/prisma.service';
import { Prisma } from '../generated/prisma/client';
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
  constructor(
    private readonly prisma: PrismaService,
    private readonly audit: AuditService,
  ) {}

  /** Registers a client app and audits it (`client.created`) in one transaction. */
  async createClient(name: string, context: AuditContext): Promise<ClientApp> {
    const existing = await this.prisma.client.findUnique({ where: { name } });
    if (existing) throw new ProblemException('conflict', `A client named "${name}" already exists.`);
    try {
      return await this.createAudited(name, context);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ProblemException('conflict', `A client named "${name}" already exists.`);
      throw err;
    }
  }

  /** For the CLI's `--client NAME`: the client of that name, created (and audited) if new. */
  async findOrCreateClient(name: string, context: AuditContext): Promise<ClientApp> {
    const existing = await this.prisma.client.findUnique({ where: { name } });
    if (existing) return existing;
    try {
      return await this.createAudited(name, context);
    } catch (err) {
      // Created by someone else in the meantime: that one is the client.
      const raced = isUniqueViolation(err) ? await this.prisma.client.findUnique({ where: { name } }) : null;
      if (raced) return raced;
      throw err;
    }
  }

  private createAudited(name: string, context: AuditContext): Promise<ClientApp> {
    return this.prisma.$transaction(async (tx) => {
      const client = await tx.client.create({ data: { name } });
      await this.audit.record(tx, context, {
        action: 'client.created',
        target: { type: 'client', id: client.id },
        details: { client_name: client.name },
      });
      return client;
    });
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

function isUniqueViolation(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002';
}
