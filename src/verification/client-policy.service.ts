import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import type { AuditContext } from '../audit/audit-vocabulary';
import { ClientsService } from '../auth/clients.service';
import { ProblemException } from '../common/problem';
import { PrismaService } from '../database/prisma.service';
import { Prisma } from '../generated/prisma/client';

/** A client's limits and options; null means no limit / off. */
export interface ClientPolicy {
  clientId: string;
  dailyLimit: number | null;
  monthlySpendCap: number | null;
  reuseWindowSeconds: number | null;
}

@Injectable()
export class ClientPolicyService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly clients: ClientsService,
    private readonly audit: AuditService,
  ) {}

  async policyFor(clientId: string, tx: Prisma.TransactionClient = this.prisma): Promise<ClientPolicy> {
    const row = await tx.clientPolicy.findUnique({ where: { clientId } });
    return {
      clientId,
      dailyLimit: row?.dailyLimit ?? null,
      monthlySpendCap: row?.monthlySpendCap ?? null,
      reuseWindowSeconds: row?.reuseWindowSeconds ?? null,
    };
  }

  /** A client's policy as admins read it: 404 for a client that does not exist (as PUT answers). */
  async policyOfExistingClient(clientId: string): Promise<ClientPolicy> {
    if (!(await this.clients.findClient(clientId))) throw new ProblemException('not-found', 'No client with that id.');
    return this.policyFor(clientId);
  }

  async setPolicy(
    clientId: string,
    policy: Omit<ClientPolicy, 'clientId'>,
    context: AuditContext,
  ): Promise<ClientPolicy> {
    if (!(await this.clients.findClient(clientId))) throw new ProblemException('not-found', 'No client with that id.');
    return this.prisma.$transaction(async (tx) => {
      const row = await tx.clientPolicy.upsert({
        where: { clientId },
        create: { clientId, ...policy },
        update: policy,
      });
      await this.audit.record(tx, context, {
        action: 'client.updated',
        target: { type: 'client', id: clientId },
        details: {
          daily_limit: policy.dailyLimit,
          monthly_spend_cap: policy.monthlySpendCap,
          reuse_window_seconds: policy.reuseWindowSeconds,
        },
      });
      return {
        clientId,
        dailyLimit: row.dailyLimit,
        monthlySpendCap: row.monthlySpendCap,
        reuseWindowSeconds: row.reuseWindowSeconds,
      };
    });
  }
}
