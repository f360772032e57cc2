import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import type { AuditContext } from '../audit/audit-vocabulary';
import { PrismaService } from '../database/prisma.service';
import { PiiVault } from './pii-vault.service';
import { VerificationStore } from './verification.store';

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
    private readonly store: VerificationStore,
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
        const n = await this.store.purgePiiBatchAllClients(tx, cutoff, now, BATCH);
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
    await this.store.deleteKeysCreatedBeforeAllClients(cutoff);
    return { purged, cutoff };
  }

  async rekey(context: AuditContext): Promise<{ rekeyed: number; keyId: string }> {
    const keyId = this.vault.activeKeyId;
    let rekeyed = 0;
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const rows = await this.store.sealedWithOtherKeysAllClients(keyId, after, BATCH);
      if (rows.length === 0) break;
      await this.prisma.$transaction(async (tx) => {
        await this.store.reseal(tx, rows);
        await this.audit.record(tx, context, {
          action: 'pii.rekeyed',
          target: { type: 'verifications', id: null },
          details: { count: rows.length, key_id: keyId },
        });
      });
      rekeyed += rows.length;
      after = rows[rows.length - 1].id;
    }
    // Idempotent replies hold personal data too (sealed with the key of their day): they are
    // re-sealed as well, so that dropping the old key never leaves a retry unreadable.
    for (;;) {
      const { resealed, more } = await this.store.resealRepliesBatch(keyId, BATCH);
      rekeyed += resealed;
      if (!more || resealed === 0) break;
    }
    return { rekeyed, keyId };
  }
}
