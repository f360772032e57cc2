import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import type { AuditContext } from '../audit/audit-vocabulary';
import { ProblemException } from '../common/problem';
import { PrismaService } from '../database/prisma.service';
import { Prisma } from '../generated/prisma/client';
import { ApiKeysService } from './api-keys.service';
import { approvalRefusal, ApprovalFacts, carryOutRefusal } from './approval-rules';
import type { Principal, Role } from './roles';
import type { Transaction } from '../database/transaction';

/** Actions that need a second key. */
export type ApprovalAction = 'api_key.create_full_pii';

export interface ApprovalRecord extends ApprovalFacts {
  id: string;
  action: ApprovalAction;
  payload: Record<string, unknown>;
  approvedAt: Date | null;
}

export type ApprovalStatus = 'pending' | 'approved' | 'carried_out' | 'expired';

export function approvalStatus(r: ApprovalRecord, now = new Date()): ApprovalStatus {
  if (r.consumedAt) return 'carried_out';
  if (now >= r.expiresAt) return 'expired';
  return r.approvedByKeyId ? 'approved' : 'pending';
}

type Row = Prisma.ApprovalRequestGetPayload<object>;

function toRecord(row: Row): ApprovalRecord {
  return {
    id: row.id,
    action: row.action as ApprovalAction,
    payload: row.payload as Record<string, unknown>,
    requestedByKeyId: row.requestedByKeyId,
    createdAt: row.createdAt,
    expiresAt: row.expiresAt,
    approvedByKeyId: row.approvedByKeyId,
    approvedAt: row.approvedAt,
    consumedAt: row.consumedAt,
  };
}

/**
 * Requests that take effect only with a second key's approval (issue 12 point 15), and
 * the only code that reads or writes `approval_requests`. The rules are plain functions
 * (approval-rules.ts); this service stores, checks and audits.
 */
@Injectable()
export class ApprovalsService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly apiKeys: ApiKeysService,
    private readonly audit: AuditService,
  ) {}

  async request(
    action: ApprovalAction,
    payload: Record<string, unknown>,
    requester: Principal,
    context: AuditContext,
    validForMs: number,
  ): Promise<ApprovalRecord> {
    return this.prisma.$transaction(async (tx) => {
      const row = await tx.approvalRequest.create({
        data: {
          action,
          payload: payload as Prisma.InputJsonValue,
          requestedByKeyId: requester.keyId,
          expiresAt: new Date(Date.now() + validForMs),
        },
      });
      await this.audit.record(tx, context, {
        action: 'approval.requested',
        target: { type: 'approval_request', id: row.id },
        details: { action, ...payload, expires_at: row.expiresAt.toISOString() },
      });
      return toRecord(row);
    });
  }

  async find(id: string): Promise<ApprovalRecord> {
    const row = await this.prisma.approvalRequest.findUnique({ where: { id } });
    if (!row) throw new ProblemException('not-found', 'No approval request with that id.');
    return toRecord(row);
  }

  async list(action: ApprovalAction, limit = 100): Promise<ApprovalRecord[]> {
    const rows = await this.prisma.approvalRequest.findMany({
      where: { action },
      orderBy: { id: 'desc' },
      take: limit,
    });
    return rows.map(toRecord);
  }

  /**
   * A second key approves. Refusals are audited as denied approvals (who tried, and why),
   * and answered 403 naming the rule.
   */
  async approve(
    id: string,
    approver: Principal,
    rolesThatMayApprove: readonly Role[],
    context: AuditContext,
  ): Promise<ApprovalRecord> {
    const request = await this.find(id);
    const facts = await this.apiKeys.keyFacts(approver.keyId);
    if (!facts) throw new ProblemException('unauthorized', 'Unknown API key.');
    const requester = (await this.apiKeys.keyFacts(request.requestedByKeyId)) ?? {
      keyId: request.requestedByKeyId,
      ancestors: [],
    };
    const refusal = approvalRefusal(request, facts, requester, rolesThatMayApprove, await this.databaseNow());
    if (refusal) {
      await this.audit.recordBestEffort(context, {
        action: 'approval.approved',
        outcome: 'denied',
        target: { type: 'approval_request', id },
        details: { action: request.action, reason: refusal },
      });
      throw new ProblemException('forbidden', `Approval refused: ${refusal}.`);
    }
    return this.prisma.$transaction(async (tx) => {
      // Conditional, so two approvers racing cannot both approve.
      const updated = await tx.approvalRequest.updateMany({
        where: { id, approvedByKeyId: null, consumedAt: null, expiresAt: { gt: new Date() } },
        data: { approvedByKeyId: approver.keyId, approvedAt: new Date() },
      });
      if (updated.count !== 1) throw new ProblemException('conflict', 'This request changed meanwhile; read it again.');
      await this.audit.record(tx, context, {
        action: 'approval.approved',
        target: { type: 'approval_request', id },
        details: { action: request.action, requested_by_key_id: request.requestedByKeyId },
      });
      return toRecord(await tx.approvalRequest.findUniqueOrThrow({ where: { id } }));
    });
  }

  /**
   * The requester carries out an approved request, once: `work` runs in the transaction
   * that marks the request carried out, so it happens exactly once or not at all.
   */
  async carryOut<T>(
    id: string,
    action: ApprovalAction,
    by: Principal,
    work: (tx: Transaction, request: ApprovalRecord) => Promise<T>,
  ): Promise<T> {
    const request = await this.find(id);
    if (request.action !== action) throw new ProblemException('not-found', 'No approval request with that id.');
    const refusal = carryOutRefusal(request, by.keyId, await this.databaseNow());
    if (refusal) throw new ProblemException('forbidden', `Not allowed: ${refusal}.`);
    return this.prisma.$transaction(async (tx) => {
      const consumed = await tx.approvalRequest.updateMany({
        where: { id, consumedAt: null, approvedByKeyId: { not: null }, expiresAt: { gt: new Date() } },
        data: { consumedAt: new Date() },
      });
      if (consumed.count !== 1) throw new ProblemException('conflict', 'This request was carried out meanwhile.');
      return work(tx, request);
    });
  }

  /** Key ages and request times come from the database's clock: compare them on the same clock. */
  private async databaseNow(): Promise<Date> {
    const [row] = await this.prisma.$queryRaw<Array<{ now: Date }>>`SELECT clock_timestamp() AS now`;
    return row.now;
  }
}
