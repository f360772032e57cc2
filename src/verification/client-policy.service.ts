import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import type { AuditContext } from '../audit/audit-vocabulary';
import { ClientsService } from '../auth/clients.service';
import { ProblemException } from '../common/problem';
import { PrismaService } from '../database/prisma.service';
import type { Transaction } from '../database/transaction';

/** A client's limits and options; null means no limit / off. */
export interface ClientPolicy {
  clientId: string;
  dailyLimit: number | null;
  monthlySpendCap: number | null;
  reuseWindowSeconds: number | null;
}

/**
 * How long a policy read is reused on the submission path: a change made on this instance
 * applies at once, one made on another instance within this time (as API key revocations do).
 */
export const POLICY_CACHE_MS = 1000;

@Injectable()
export class ClientPolicyService {
  private readonly cache = new Map<string, { at: number; policy: ClientPolicy }>();
  /** Bumped by each change made here: a read that a change overtook is not cached. */
  private readonly changes = new Map<string, number>();

  constructor(
    private readonly prisma: PrismaService,
    private readonly clients: ClientsService,
    private readonly audit: AuditService,
  ) {}

  /**
   * The policy as of at most POLICY_CACHE_MS ago, for deciding which path a submission takes;
   * a submission a limit or reuse window weighs on reads it again in its own transaction.
   */
  async recentPolicyFor(clientId: string, now = Date.now()): Promise<ClientPolicy> {
    const cached = this.cache.get(clientId);
    if (cached && now - cached.at < POLICY_CACHE_MS && now >= cached.at) return cached.policy;
    const change = this.changes.get(clientId) ?? 0;
    const policy = await this.policyFor(clientId);
    if ((this.changes.get(clientId) ?? 0) !== change) return policy; // a change landed meanwhile: do not keep this read
    if (this.cache.size > 10_000) this.cache.clear(); // bounded: one entry per active client
    this.cache.set(clientId, { at: now, policy });
    return policy;
  }

  async policyFor(clientId: string, tx: Transaction | PrismaService = this.prisma): Promise<ClientPolicy> {
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
    const updated = await this.prisma.$transaction(async (tx) => {
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
    // This instance applies it at once, also over a read that started before it committed.
    this.changes.set(clientId, (this.changes.get(clientId) ?? 0) + 1);
    this.cache.delete(clientId);
    return updated;
  }
}
