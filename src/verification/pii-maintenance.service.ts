import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import type { AuditContext } from '../audit/audit-vocabulary';
import { PrismaService } from '../database/prisma.service';
import { PiiField, PiiVault } from './pii-vault.service';

const BATCH = 500;
const DAY_MS = 86_400_000;

/**
 * Retention and key rotation for personal data at rest.
 * - purge: blanks names, ID numbers and OCR fields of verifications older than
 *   the retention period, keeping hashes, result codes and charges (PIPL art. 19).
 * - rekey: re-encrypts values sealed with an older key under the newest one.
 */
@Injectable()
export class PiiMaintenanceService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly vault: PiiVault,
    private readonly audit: AuditService,
  ) {}

  async purgeOlderThan(
    days: number,
    context: AuditContext,
    now = new Date(),
  ): Promise<{ purged: number; cutoff: Date }> {
    const cutoff = new Date(now.getTime() - days * DAY_MS);
    let purged = 0;
    for (;;) {
      const count = await this.prisma.$transaction(async (tx) => {
        const n = await tx.$executeRaw`
          UPDATE verifications SET name_enc = NULL, id_card_enc = NULL, ocr_enc = NULL, pii_purged_at = ${now}
          WHERE id IN (
            SELECT id FROM verifications
            WHERE created_at < ${cutoff} AND pii_purged_at IS NULL AND status <> 'pending'
            ORDER BY created_at LIMIT ${BATCH} FOR UPDATE SKIP LOCKED)`;
        if (n > 0) {
          await this.audit.record(tx, context, {
            action: 'pii.purged',
            target: { type: 'verifications', id: null },
            details: { count: n, older_than_days: days, cutoff: cutoff.toISOString() },
          });
        }
        return n;
      });
      purged += count;
      if (count < BATCH) break;
    }
    // Stored idempotent responses hold personal data too; they live 24 h, and none may outlive the cutoff.
    await this.prisma.idempotencyRecord.deleteMany({ where: { createdAt: { lt: cutoff } } });
    return { purged, cutoff };
  }

  async rekey(context: AuditContext): Promise<{ rekeyed: number; keyId: string }> {
    const active = `v1.${this.vault.activeKeyId}.%`;
    let rekeyed = 0;
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const rows = await this.prisma.$queryRaw<
        Array<{ id: string; name_enc: string | null; id_card_enc: string | null; ocr_enc: string | null }>
      >`
        SELECT id, name_enc, id_card_enc, ocr_enc FROM verifications
        WHERE id > ${after}::uuid AND (name_enc NOT LIKE ${active} OR id_card_enc NOT LIKE ${active} OR ocr_enc NOT LIKE ${active})
        ORDER BY id LIMIT ${BATCH}`;
      if (rows.length === 0) break;
      await this.prisma.$transaction(async (tx) => {
        for (const row of rows) {
          const reseal = (field: PiiField, value: string | null) =>
            value === null || !this.vault.needsRekey(value)
              ? value
              : this.vault.seal(field, this.vault.open(field, value));
          await tx.verification.update({
            where: { id: row.id },
            data: {
              nameEnc: reseal('name', row.name_enc),
              idCardEnc: reseal('id_card', row.id_card_enc),
              ocrEnc: reseal('ocr', row.ocr_enc),
            },
          });
        }
        await this.audit.record(tx, context, {
          action: 'pii.rekeyed',
          target: { type: 'verifications', id: null },
          details: { count: rows.length, key_id: this.vault.activeKeyId },
        });
      });
      rekeyed += rows.length;
      after = rows[rows.length - 1].id;
    }
    rekeyed += await this.rekeyStoredReplies(active);
    return { rekeyed, keyId: this.vault.activeKeyId };
  }

  /**
   * Idempotent replies hold personal data too (sealed with the key of their day): they are
   * re-sealed as well, so that dropping the old key never leaves a retry unreadable.
   */
  private async rekeyStoredReplies(active: string): Promise<number> {
    let rekeyed = 0;
    for (;;) {
      const rows = await this.prisma.idempotencyRecord.findMany({
        where: { responseEnc: { not: null }, NOT: { responseEnc: { startsWith: active.slice(0, -1) } } },
        select: { clientId: true, key: true, responseEnc: true },
        take: BATCH,
      });
      const stale = rows.filter((r) => r.responseEnc !== null && this.vault.needsRekey(r.responseEnc));
      if (stale.length === 0) return rekeyed;
      await this.prisma.$transaction(async (tx) => {
        for (const row of stale) {
          await tx.idempotencyRecord.update({
            where: { clientId_key: { clientId: row.clientId, key: row.key } },
            data: {
              responseEnc: this.vault.seal(
                'idempotent_response',
                this.vault.open('idempotent_response', row.responseEnc!),
              ),
            },
          });
        }
      });
      rekeyed += stale.length;
      if (rows.length < BATCH) return rekeyed;
    }
  }
}
