import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import type { AuditContext } from '../audit/audit-vocabulary';
import type { Principal } from '../auth/roles';
import { Page } from '../common/pagination';
import { ProblemException } from '../common/problem';
import { PrismaService } from '../database/prisma.service';
import { PiiSearchBudget } from '../audit/pii-search-budget.service';
import { AuthFailures } from '../auth/auth-failures.service';
import { PiiVault } from './pii-vault.service';
import { VerificationStore } from './verification.store';
import { VerificationFilters, VerificationRecord } from './verification.types';

/** Only compliance sees personal data in full; clients and finance see it masked. */
export function seesFullPii(principal: Principal): boolean {
  return principal.role === 'compliance';
}

/**
 * A role that sees personal data masked must not be able to confirm an unmasked value either:
 * an exact-match search by ID number or name would recover a masked number in a few thousand
 * tries (the hidden digits are a birth date). Clients may search (their own verifications,
 * which they submitted); finance may not.
 */
export function maySearchByPii(principal: Principal): boolean {
  return principal.role === 'compliance' || principal.role === 'client';
}

/**
 * Reads of verifications, scoped by who asks: a client key sees its own client's
 * only (another client's is 404, not 403); staff see all. Every read of personal
 * data in full is an audit event; every search by ID number or name is one too, and
 * spends the key's hourly budget (PiiSearchBudget).
 */
@Injectable()
export class VerificationReadsService {
  constructor(
    private readonly store: VerificationStore,
    private readonly prisma: PrismaService,
    private readonly audit: AuditService,
    private readonly vault: PiiVault,
    private readonly budget: PiiSearchBudget,
    private readonly failures: AuthFailures,
  ) {}

  async getVerification(principal: Principal, id: string, context: AuditContext): Promise<VerificationRecord> {
    const found =
      principal.role === 'client'
        ? await this.store.findForClient(principal.clientId!, id)
        : await this.store.findAnyClient(id);
    if (!found) throw new ProblemException('not-found', 'No verification with that id.');
    await this.auditFullReads(principal, [found], context);
    return found;
  }

  async listVerifications(
    principal: Principal,
    filters: VerificationFilters,
    cursor: string | undefined,
    limit: number,
    context: AuditContext,
    /** What the caller will be shown: only a page shown in full is an audited read. */
    view: 'full' | 'masked',
  ): Promise<Page<VerificationRecord>> {
    const byPii = filters.idCard !== undefined || filters.name !== undefined;
    if (byPii) {
      const details = { by_id_card: filters.idCard !== undefined, by_name: filters.name !== undefined };
      // Refused before anything is hashed or looked up: the answer and its timing say nothing.
      if (!maySearchByPii(principal)) {
        // Audited and limited like any refused request (summarised after the first per minute, 429 past the limit).
        return this.failures.refuseAfterGuard(principal, context, {
          endpoint: 'POST /v1/verifications/search',
          reason: 'pii_search_not_allowed_for_role',
          detail: 'This role sees personal data masked and may not search by ID number or name.',
          details,
        });
      }
      // Recorded before the search (and counted against the budget with it), so no search goes unaudited.
      await this.budget.spend(
        context,
        {
          action: 'verification.searched',
          details,
          idCardHmac: filters.idCard !== undefined ? this.vault.idCardHmac(filters.idCard) : null,
        },
        principal.role === 'client' ? principal.clientId : null,
      );
    }
    const scope = principal.role === 'client' ? principal.clientId! : 'all_clients';
    if (principal.role === 'client' && filters.clientId !== undefined && filters.clientId !== principal.clientId) {
      // Another client's data does not exist for this key.
      return { items: [], next_cursor: null };
    }
    const page = await this.store.list(scope, filters, cursor, limit);
    // A masked page shows nothing a finance key could not see: no read of personal data to audit.
    if (view === 'full') await this.auditFullReads(principal, page.items, context);
    return page;
  }

  private async auditFullReads(
    principal: Principal,
    items: VerificationRecord[],
    context: AuditContext,
  ): Promise<void> {
    const withPii = items.filter((v) => v.pii !== null);
    if (!seesFullPii(principal) || withPii.length === 0) return;
    await this.prisma.$transaction((tx) =>
      this.audit.recordMany(
        tx,
        context,
        withPii.map((v) => ({
          action: 'verification.viewed' as const,
          target: { type: 'verification', id: v.id },
          details: { fields: ['name', 'id_card', ...(v.pii?.ocr ? ['ocr'] : [])] },
          idCardHmac: v.pii?.idCard ? this.vault.idCardHmac(v.pii.idCard) : null,
        })),
      ),
    );
  }
}
