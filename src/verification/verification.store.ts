import { Injectable } from '@nestjs/common';
import { decodeIdCursor, Page, toPage } from '../common/pagination';
import { UuidV7Source } from '../common/uuid-v7';
import { PrismaService } from '../database/prisma.service';
import type { Transaction } from '../database/transaction';
import { Prisma } from '../generated/prisma/client';
import type { UpstreamOcrFields } from '../upstream/upstream.types';
import { earlierClaimOf, EarlierClaim, IdempotencyScope, KeyClaim, StoredReply } from './idempotency';
import { PiiField, PiiVault } from './pii-vault.service';
import type { ChargeState, Settlement, VerificationState } from './verification-rules';
import { Channel, Mode, VerificationFilters, VerificationRecord } from './verification.types';

type Row = Prisma.VerificationGetPayload<object>;
/** Where a statement runs: a caller's transaction, or on its own (autocommit). */
type Db = Transaction | PrismaService;

export interface NewVerification {
  clientId: string;
  apiKeyId: string;
  channel: Channel;
  mode: Mode;
  reference: string | null;
  unitPrice: number;
  currency: string;
  /** Plain personal data, sealed here; null when it cannot be read (encrypted input). */
  name: string | null;
  idCard: string | null;
}

export type VerificationBase = Omit<NewVerification, 'name' | 'idCard'>;

/** The search HMACs of a verification's personal data (what exact search and the audit trail match on). */
export interface PiiHashes {
  nameHmac: string | null;
  idCardHmac: string | null;
}

/** A verification final when recorded: a local check's rejection, or a reused earlier answer. */
export interface FinalAtOnce {
  result: string | null;
  description: string | null;
  localCheck?: boolean;
  reusedFromId?: string;
}

/** A verification recorded `pending`, as the settlement needs it. */
export interface PendingVerification {
  record: VerificationRecord;
  hashes: PiiHashes;
}

/** The row a settlement starts from (read under lock when it is not the one just recorded). */
export interface SettleableVerification {
  status: VerificationState;
  mode: Mode;
  unitPrice: number;
  hashes: PiiHashes;
  record: VerificationRecord;
}

/** What a settlement writes (from settle(), the one reading of an upstream outcome). */
export interface SettlementWrite {
  settlement: Settlement;
  amount: number | null;
  /** Search HMACs learnt from the answer (an ID number read from a card, echoes of encrypted fields). */
  learntHashes: { nameHmac?: string; idCardHmac?: string };
}

/** A verification whose unknown charge the vendor's statement settled. */
export interface SettledChargeRow {
  id: string;
  chargeStatus: 'charged' | 'not_charged';
  amount: number;
  currency: string;
  idCardHmac: string | null;
  upstreamTraceId: string | null;
  learntTraceId: boolean;
}

/** The sealed personal data of one verification, for re-sealing under the active key. */
export interface SealedPii {
  id: string;
  nameEnc: string | null;
  idCardEnc: string | null;
  ocrEnc: string | null;
}

/**
 * The one reader and writer of `verifications` and `idempotency_keys` (billing reads the
 * `verification_charges` view). Personal data goes in sealed and comes out opened here,
 * nowhere else; domain types at the boundary. Client-scoped reads take the client id; the
 * unscoped ones say so in their names.
 *
 * The hot path costs one statement to record and one to settle: each is a data-modifying CTE
 * that writes the row and its audit event (a statement AuditService builds) in one round trip,
 * atomic as a statement is.
 */
@Injectable()
export class VerificationStore {
  private readonly ids = new UuidV7Source();

  constructor(
    private readonly prisma: PrismaService,
    private readonly vault: PiiVault,
  ) {}

  /** A new verification's id: made here before the insert, so its audit event can name it in the same statement. */
  newId(): string {
    return this.ids.next();
  }

  hashesOf(name: string | null, idCard: string | null): PiiHashes {
    return {
      nameHmac: name === null ? null : this.vault.nameHmac(name),
      idCardHmac: idCard === null ? null : this.vault.idCardHmac(idCard),
    };
  }

  // ---- recording ----------------------------------------------------------------------------

  /**
   * Records a verification `pending` with its audit event in one statement (`hashes` from hashesOf()); with `claim`, the
   * Idempotency-Key claim (linked to it) in the same statement. Null when the key is already
   * claimed (nothing written): read it with earlierClaim().
   */
  async recordPending(
    db: Db,
    id: string,
    v: NewVerification,
    hashes: PiiHashes,
    event: Prisma.Sql,
    claim?: KeyClaim,
  ): Promise<PendingVerification | null> {
    const sealed = this.sealed(v.name, v.idCard);
    const claimCte = claim
      ? Prisma.sql`claim AS (
          INSERT INTO idempotency_keys (client_id, key, request_hash, state, expires_at, verification_id)
          VALUES (${claim.clientId}::uuid, ${claim.key}, ${claim.fingerprint}, 'in_flight', ${claim.expiresAt}, ${id}::uuid)
          ON CONFLICT (client_id, key) DO UPDATE
            SET request_hash = EXCLUDED.request_hash, state = 'in_flight', verification_id = EXCLUDED.verification_id,
                response_status = NULL, response_enc = NULL, created_at = now(), expires_at = EXCLUDED.expires_at
            WHERE idempotency_keys.expires_at < now()
               OR (idempotency_keys.verification_id IS NULL AND idempotency_keys.state = 'in_flight'
                   AND idempotency_keys.created_at < ${claim.takeOverUnlinkedBefore})
          RETURNING 1), `
      : Prisma.empty;
    const rows = await db.$queryRaw<Array<{ created_at: Date }>>`
      WITH ${claimCte} v AS (
        INSERT INTO verifications (id, client_id, api_key_id, channel, mode, reference, status, charge_status,
                                   unit_price, currency, name_enc, id_card_enc, name_hmac, id_card_hmac)
        SELECT ${id}::uuid, ${v.clientId}::uuid, ${v.apiKeyId}::uuid, ${v.channel}::text, ${v.mode}::text,
               ${v.reference}::text, 'pending'::"VerificationStatus", 'unknown'::"ChargeStatus",
               ${v.unitPrice}::int, ${v.currency}::text, ${sealed.nameEnc}::text, ${sealed.idCardEnc}::text,
               ${hashes.nameHmac}::text, ${hashes.idCardHmac}::text
        ${claim ? Prisma.sql`WHERE EXISTS (SELECT 1 FROM claim)` : Prisma.empty}
        RETURNING created_at
      ), e AS (${event})
      SELECT created_at FROM v`;
    if (rows.length === 0) return null;
    return { hashes, record: this.pendingRecord(id, v, rows[0].created_at) };
  }

  private pendingRecord(id: string, v: NewVerification, createdAt: Date): VerificationRecord {
    return {
      id,
      clientId: v.clientId,
      channel: v.channel,
      mode: v.mode,
      reference: v.reference,
      status: 'pending',
      result: null,
      description: null,
      chargeStatus: 'unknown',
      unitPrice: v.unitPrice,
      amount: null,
      currency: v.currency,
      localCheck: false,
      reusedFromId: null,
      upstreamTraceId: null,
      upstreamError: null,
      createdAt,
      completedAt: null,
      pii: v.name === null && v.idCard === null ? null : { name: v.name ?? '', idCard: v.idCard ?? '', ocr: null },
      piiPurgedAt: null,
    };
  }

  /**
   * The pending verification recordPending() wrote under `id`, if its statement committed
   * although its reply was lost (a connection dropped mid-statement: an autocommit statement
   * still commits on the server). Null when there is no such row.
   */
  async findRecordedPending(id: string, v: NewVerification, hashes: PiiHashes): Promise<PendingVerification | null> {
    const row = await this.prisma.verification.findFirst({
      where: { id, clientId: v.clientId },
      select: { status: true, createdAt: true },
    });
    if (!row || row.status !== 'pending') return null;
    return { hashes, record: this.pendingRecord(id, v, row.createdAt) };
  }

  /** Records a verification final at once (local rejection, reuse), not charged, in the caller's transaction. */
  async insertFinal(
    tx: Transaction,
    id: string,
    v: NewVerification,
    hashes: PiiHashes,
    final: FinalAtOnce,
  ): Promise<VerificationRecord> {
    const row = await tx.verification.create({
      data: {
        id,
        clientId: v.clientId,
        apiKeyId: v.apiKeyId,
        channel: v.channel,
        mode: v.mode,
        reference: v.reference,
        unitPrice: v.unitPrice,
        currency: v.currency,
        status: 'completed',
        result: final.result,
        description: final.description,
        chargeStatus: 'not_charged',
        amount: 0,
        localCheck: final.localCheck ?? false,
        reusedFromId: final.reusedFromId ?? null,
        completedAt: new Date(), // the database's clock replaces it (verifications_stamp_time)
        ...this.sealed(v.name, v.idCard),
        ...hashes,
      },
    });
    return this.toRecord(row);
  }

  // ---- settling -----------------------------------------------------------------------------

  /** The row a settlement starts from, locked until `tx` ends; null when there is no such verification. */
  async lockForSettlement(tx: Transaction, id: string): Promise<SettleableVerification | null> {
    const [found] = await tx.$queryRaw<
      Array<{ id: string }>
    >`SELECT id FROM verifications WHERE id = ${id}::uuid FOR UPDATE`;
    if (!found) return null;
    const row = await tx.verification.findUniqueOrThrow({ where: { id } });
    return {
      status: row.status,
      mode: row.mode as Mode,
      unitPrice: row.unitPrice,
      hashes: { nameHmac: row.nameHmac, idCardHmac: row.idCardHmac },
      record: this.toRecord(row),
    };
  }

  /**
   * Writes a settlement and its audit event in one statement, if the verification is still in
   * `from` (a settled row is never settled again). Returns the settled record, built from
   * `before` and what was written; null when the row was no longer in `from`.
   */
  async writeSettlement(
    db: Db,
    before: VerificationRecord,
    from: 'pending' | 'unknown',
    write: SettlementWrite,
    event: Prisma.Sql,
  ): Promise<VerificationRecord | null> {
    const s = write.settlement;
    const rows = await db.$queryRaw<Array<{ completed_at: Date }>>`
      WITH v AS (
        UPDATE verifications
        SET status = ${s.status}::"VerificationStatus", result = ${s.result}::text, description = ${s.description}::text,
            charge_status = ${s.chargeStatus}::"ChargeStatus", amount = ${write.amount}::int,
            upstream_trace_id = ${s.traceId}::text, upstream_attempts = ${s.attempts}::int,
            upstream_error = ${s.error}::text, ocr_enc = ${this.sealedOcr(s.ocr)}::text,
            name_hmac = COALESCE(${write.learntHashes.nameHmac ?? null}::text, name_hmac),
            id_card_hmac = COALESCE(${write.learntHashes.idCardHmac ?? null}::text, id_card_hmac),
            completed_at = now() -- the database's clock (verifications_stamp_time)
        WHERE id = ${before.id}::uuid AND status = ${from}::"VerificationStatus"
        RETURNING completed_at
      ), e AS (${event})
      SELECT completed_at FROM v`;
    if (rows.length === 0) return null;
    // As toRecord() would read it back: OCR fields all empty are not stored.
    const ocr = s.ocr && !Object.values(s.ocr).every((v) => v === '') ? s.ocr : null;
    return {
      ...before,
      status: s.status,
      result: s.result,
      description: s.description,
      chargeStatus: s.chargeStatus,
      amount: write.amount,
      upstreamTraceId: s.traceId,
      upstreamError: s.error,
      completedAt: rows[0].completed_at,
      pii:
        before.pii === null && ocr === null
          ? null
          : { name: before.pii?.name || (ocr?.name ?? ''), idCard: before.pii?.idCard || (ocr?.id_card ?? ''), ocr },
    };
  }

  /** Verifications `pending` past the cutoff (not `exclude`), marked `unknown` and locked until `tx` ends. */
  async markAbandoned(
    tx: Transaction,
    cutoff: Date,
    exclude: string[],
    limit: number,
  ): Promise<Array<{ id: string; idCardHmac: string | null }>> {
    const rows = await tx.$queryRaw<Array<{ id: string; id_card_hmac: string | null }>>`
      WITH stale AS (
        SELECT id FROM verifications
        WHERE status = 'pending' AND created_at < ${cutoff} AND NOT (id = ANY(${exclude}::uuid[]))
        ORDER BY created_at
        LIMIT ${limit}
        FOR UPDATE SKIP LOCKED
      )
      UPDATE verifications v
      SET status = 'unknown', charge_status = 'unknown', amount = NULL,
          upstream_error = 'abandoned', completed_at = now()
      FROM stale WHERE v.id = stale.id
      RETURNING v.id, v.id_card_hmac`;
    return rows.map((r) => ({ id: r.id, idCardHmac: r.id_card_hmac }));
  }

  /** Settles unknown charges from a statement (the ones still unknown); the rest are left alone. */
  async settleUnknownCharges(
    tx: Transaction,
    batch: ReadonlyArray<{ verificationId: string; charged: boolean; traceId?: string | null }>,
  ): Promise<SettledChargeRow[]> {
    const rows = await tx.$queryRaw<
      Array<{
        id: string;
        charge_status: 'charged' | 'not_charged';
        amount: number;
        currency: string;
        id_card_hmac: string | null;
        upstream_trace_id: string | null;
        learnt_trace_id: boolean;
      }>
    >`
      UPDATE verifications v
      SET charge_status = (CASE WHEN s.charged THEN 'charged' ELSE 'not_charged' END)::"ChargeStatus",
          amount = CASE WHEN s.charged THEN v.unit_price ELSE 0 END,
          upstream_trace_id = COALESCE(v.upstream_trace_id, s.trace_id)
      FROM unnest(
        ${batch.map((s) => s.verificationId)}::text[],
        ${batch.map((s) => s.charged)}::boolean[],
        ${batch.map((s) => s.traceId ?? null)}::text[]
      ) AS s(id, charged, trace_id)
      WHERE v.id = s.id::uuid AND v.status = 'unknown' AND v.charge_status = 'unknown'
      RETURNING v.id::text AS id, v.charge_status::text AS charge_status, v.amount, v.currency,
                v.id_card_hmac, v.upstream_trace_id, (s.trace_id IS NOT NULL AND v.upstream_trace_id = s.trace_id) AS learnt_trace_id`;
    return rows.map((r) => ({
      id: r.id,
      chargeStatus: r.charge_status,
      amount: r.amount,
      currency: r.currency,
      idCardHmac: r.id_card_hmac,
      upstreamTraceId: r.upstream_trace_id,
      learntTraceId: r.learnt_trace_id,
    }));
  }

  // ---- quotas and reuse ---------------------------------------------------------------------

  /** Verifications this client made since `since` that count against a daily limit (calls, not local checks or reuses). */
  async countCallsSince(tx: Transaction, clientId: string, since: Date): Promise<number> {
    return tx.verification.count({
      where: { clientId, createdAt: { gte: since }, localCheck: false, reusedFromId: null },
    });
  }

  /** What this client spent since `since`; unknown calls count as charged until reconciliation says otherwise. */
  async spendSince(tx: Transaction, clientId: string, since: Date): Promise<number> {
    const [spend] = await tx.$queryRaw<Array<{ spent: bigint }>>`
      SELECT COALESCE(SUM(CASE WHEN charge_status = 'unknown' THEN unit_price ELSE amount END), 0)::bigint AS spent
      FROM verifications WHERE client_id = ${clientId}::uuid AND created_at >= ${since}`;
    return Number(spend.spent);
  }

  /** The id of this client's verification of the same identity still in flight since `since`, if any. */
  async findInFlightForClient(
    tx: Transaction,
    clientId: string,
    hashes: PiiHashes,
    since: Date,
  ): Promise<string | null> {
    const found = await tx.verification.findFirst({
      where: {
        clientId,
        idCardHmac: hashes.idCardHmac,
        nameHmac: hashes.nameHmac,
        status: 'pending',
        createdAt: { gte: since },
      },
      select: { id: true },
    });
    return found?.id ?? null;
  }

  /** This client's newest answered call of the same identity since `since` whose answer may be reused. */
  async findReusableForClient(
    tx: Transaction,
    clientId: string,
    hashes: PiiHashes,
    since: Date,
  ): Promise<{ id: string; result: string | null; description: string | null } | null> {
    return tx.verification.findFirst({
      where: {
        clientId,
        idCardHmac: hashes.idCardHmac,
        nameHmac: hashes.nameHmac,
        status: 'completed',
        result: { in: ['0', '-1'] },
        reusedFromId: null,
        createdAt: { gte: since },
      },
      orderBy: { createdAt: 'desc' },
      select: { id: true, result: true, description: true },
    });
  }

  // ---- idempotency keys ---------------------------------------------------------------------

  /**
   * Claims the key inside `tx`: true when this request owns it now (an expired or abandoned
   * record is replaced), false when a live claim holds it (read it with earlierClaim()).
   */
  async claimKey(tx: Transaction, claim: KeyClaim): Promise<boolean> {
    const claimed = await tx.$executeRaw`
      INSERT INTO idempotency_keys (client_id, key, request_hash, state, expires_at)
      VALUES (${claim.clientId}::uuid, ${claim.key}, ${claim.fingerprint}, 'in_flight', ${claim.expiresAt})
      ON CONFLICT (client_id, key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, state = 'in_flight', verification_id = NULL,
            response_status = NULL, response_enc = NULL, created_at = now(), expires_at = EXCLUDED.expires_at
        WHERE idempotency_keys.expires_at < now()
           OR (idempotency_keys.verification_id IS NULL AND idempotency_keys.state = 'in_flight'
               AND idempotency_keys.created_at < ${claim.takeOverUnlinkedBefore})`;
    return claimed === 1;
  }

  /**
   * The live claim of the key by an earlier request, or null when there is none a new claim
   * would not replace; 422 (IdempotencyKeyReused) when it was another request.
   */
  async earlierClaim(db: Db, claim: KeyClaim, now: Date): Promise<EarlierClaim | null> {
    const existing = await db.idempotencyRecord.findUnique({
      where: { clientId_key: { clientId: claim.clientId, key: claim.key } },
    });
    if (!existing) return null;
    const replaceable =
      existing.expiresAt < now ||
      (existing.verificationId === null &&
        existing.state === 'in_flight' &&
        existing.createdAt < claim.takeOverUnlinkedBefore);
    return replaceable ? null : earlierClaimOf(claim, existing, this.openReply(existing.responseEnc));
  }

  /**
   * The claim that kept this request's claim from being taken; null in the rare case it was
   * purged (24 h old) in between, when the caller should try again.
   */
  async claimThatHeld(db: Db, claim: KeyClaim): Promise<EarlierClaim | null> {
    const existing = await db.idempotencyRecord.findUnique({
      where: { clientId_key: { clientId: claim.clientId, key: claim.key } },
    });
    return existing && earlierClaimOf(claim, existing, this.openReply(existing.responseEnc));
  }

  /** Links the claim to the verification recorded in the same transaction. */
  async linkKey(tx: Transaction, claim: IdempotencyScope, verificationId: string): Promise<void> {
    await tx.idempotencyRecord.updateMany({
      where: { clientId: claim.clientId, key: claim.key },
      data: { verificationId },
    });
  }

  /** Links the claim to a verification final at once and stores its reply, in the same transaction. */
  async completeKey(tx: Transaction, claim: IdempotencyScope, verificationId: string, reply: StoredReply) {
    await tx.idempotencyRecord.updateMany({
      where: { clientId: claim.clientId, key: claim.key },
      data: {
        verificationId,
        state: 'completed',
        responseStatus: reply.status,
        responseEnc: this.vault.seal('idempotent_response', JSON.stringify(reply)),
      },
    });
  }

  /** Stores the final reply; a reply stored once is never replaced: every replay is the same. */
  async storeReply(db: Db, clientId: string, key: string, reply: StoredReply): Promise<void> {
    await db.idempotencyRecord.updateMany({
      where: { clientId, key, state: { not: 'completed' } },
      data: {
        state: 'completed',
        responseStatus: reply.status,
        responseEnc: this.vault.seal('idempotent_response', JSON.stringify(reply)),
      },
    });
  }

  /** The first request answered without a final reply (202), so a retry need not wait for it. */
  async markKeyEnded(clientId: string, key: string): Promise<void> {
    await this.prisma.idempotencyRecord.updateMany({
      where: { clientId, key, state: 'in_flight' },
      data: { state: 'ended' },
    });
  }

  /** Forgets keys past their 24 h, in every client (maintenance). */
  async purgeExpiredKeysAllClients(now: Date): Promise<number> {
    const res = await this.prisma.idempotencyRecord.deleteMany({ where: { expiresAt: { lt: now } } });
    return res.count;
  }

  /** Stored replies hold personal data too: none may outlive the retention cutoff (maintenance, every client). */
  async deleteKeysCreatedBeforeAllClients(cutoff: Date): Promise<void> {
    await this.prisma.idempotencyRecord.deleteMany({ where: { createdAt: { lt: cutoff } } });
  }

  /**
   * A stored reply, or null when there is none — or when it can no longer be opened (its
   * key was dropped from PII_KEYS before a rekey reached it): the retry is then answered
   * from the verification as it stands, never with a 500.
   */
  private openReply(sealed: string | null): StoredReply | null {
    if (!sealed) return null;
    try {
      return JSON.parse(this.vault.open('idempotent_response', sealed)) as StoredReply;
    } catch {
      return null;
    }
  }

  // ---- personal data maintenance ------------------------------------------------------------

  /** Drops the personal data of up to `limit` settled verifications created before `cutoff`, in every client. */
  async purgePiiBatchAllClients(tx: Transaction, cutoff: Date, now: Date, limit: number): Promise<number> {
    return tx.$executeRaw`
      UPDATE verifications SET name_enc = NULL, id_card_enc = NULL, ocr_enc = NULL, pii_purged_at = ${now}
      WHERE id IN (
        SELECT id FROM verifications
        WHERE created_at < ${cutoff} AND pii_purged_at IS NULL AND status <> 'pending'
        ORDER BY created_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)`;
  }

  /** The next verifications (by id, after `after`) with personal data sealed under another key than `activeKeyId`. */
  async sealedWithOtherKeysAllClients(activeKeyId: string, after: string, limit: number): Promise<SealedPii[]> {
    const active = `v1.${activeKeyId}.%`;
    const rows = await this.prisma.$queryRaw<
      Array<{ id: string; name_enc: string | null; id_card_enc: string | null; ocr_enc: string | null }>
    >`
      SELECT id, name_enc, id_card_enc, ocr_enc FROM verifications
      WHERE id > ${after}::uuid AND (name_enc NOT LIKE ${active} OR id_card_enc NOT LIKE ${active} OR ocr_enc NOT LIKE ${active})
      ORDER BY id LIMIT ${limit}`;
    return rows.map((r) => ({ id: r.id, nameEnc: r.name_enc, idCardEnc: r.id_card_enc, ocrEnc: r.ocr_enc }));
  }

  /** Re-seals each field under the active key (fields already under it are left as they are). */
  async reseal(tx: Transaction, rows: SealedPii[]): Promise<void> {
    const reseal = (field: PiiField, value: string | null) =>
      value === null || !this.vault.needsRekey(value) ? value : this.vault.seal(field, this.vault.open(field, value));
    for (const row of rows) {
      await tx.verification.update({
        where: { id: row.id },
        data: {
          nameEnc: reseal('name', row.nameEnc),
          idCardEnc: reseal('id_card', row.idCardEnc),
          ocrEnc: reseal('ocr', row.ocrEnc),
        },
      });
    }
  }

  /**
   * Re-seals up to `limit` stored replies sealed under another key; returns how many it
   * re-sealed and whether more may remain.
   */
  async resealRepliesBatch(activeKeyId: string, limit: number): Promise<{ resealed: number; more: boolean }> {
    const rows = await this.prisma.idempotencyRecord.findMany({
      where: { responseEnc: { not: null }, NOT: { responseEnc: { startsWith: `v1.${activeKeyId}.` } } },
      select: { clientId: true, key: true, responseEnc: true },
      take: limit,
    });
    const stale = rows.filter((r) => r.responseEnc !== null && this.vault.needsRekey(r.responseEnc));
    if (stale.length === 0) return { resealed: 0, more: false };
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
    return { resealed: stale.length, more: rows.length === limit };
  }

  // ---- reads --------------------------------------------------------------------------------

  /** How many verifications are pending and unknown now, in every client (a metric). */
  async backlogAllClients(): Promise<Record<'pending' | 'unknown', number>> {
    const rows = await this.prisma.verification.groupBy({
      by: ['status'],
      where: { status: { in: ['pending', 'unknown'] } },
      _count: { _all: true },
    });
    const count = (status: string) => rows.find((r) => r.status === status)?._count._all ?? 0;
    return { pending: count('pending'), unknown: count('unknown') };
  }

  async findForClient(clientId: string, id: string): Promise<VerificationRecord | null> {
    const row = await this.prisma.verification.findFirst({ where: { id, clientId } });
    return row ? this.toRecord(row) : null;
  }

  /** The state of this client's verification, without opening its personal data (polling). */
  async statusForClient(clientId: string, id: string): Promise<VerificationState | null> {
    const row = await this.prisma.verification.findFirst({ where: { id, clientId }, select: { status: true } });
    return row?.status ?? null;
  }

  async findAnyClient(id: string): Promise<VerificationRecord | null> {
    const row = await this.prisma.verification.findUnique({ where: { id } });
    return row ? this.toRecord(row) : null;
  }

  /** `scope` is a client id, or `all_clients` for staff who may see every client. */
  async list(
    scope: string | 'all_clients',
    filters: VerificationFilters,
    cursor: string | undefined,
    limit: number,
  ): Promise<Page<VerificationRecord>> {
    const after = decodeIdCursor(cursor);
    const where: Prisma.VerificationWhereInput = {};
    if (scope !== 'all_clients') where.clientId = scope;
    else if (filters.clientId !== undefined) where.clientId = filters.clientId;
    if (filters.from !== undefined || filters.to !== undefined) {
      where.createdAt = {
        ...(filters.from !== undefined ? { gte: filters.from } : {}),
        ...(filters.to !== undefined ? { lt: filters.to } : {}),
      };
    }
    if (filters.result !== undefined) where.result = filters.result;
    if (filters.status !== undefined) where.status = filters.status as Row['status'];
    if (filters.reference !== undefined) where.reference = filters.reference;
    if (filters.charged !== undefined) {
      where.chargeStatus =
        filters.charged === 'true' ? 'charged' : filters.charged === 'false' ? 'not_charged' : 'unknown';
    }
    if (filters.idCard !== undefined) where.idCardHmac = this.vault.idCardHmac(filters.idCard);
    if (filters.name !== undefined) where.nameHmac = this.vault.nameHmac(filters.name);
    if (after !== undefined) where.id = { lt: after };
    const rows = await this.prisma.verification.findMany({ where, orderBy: { id: 'desc' }, take: limit + 1 });
    return toPage(
      rows,
      limit,
      (r) => this.toRecord(r),
      (r) => [r.id],
    );
  }

  // ---- mapping ------------------------------------------------------------------------------

  private sealed(name: string | null, idCard: string | null) {
    return {
      nameEnc: name === null ? null : this.vault.seal('name', name),
      idCardEnc: idCard === null ? null : this.vault.seal('id_card', idCard),
    };
  }

  private sealedOcr(ocr: UpstreamOcrFields | null): string | null {
    if (!ocr || Object.values(ocr).every((v) => v === '')) return null;
    return this.vault.seal('ocr', JSON.stringify(ocr));
  }

  private toRecord(row: Row): VerificationRecord {
    let pii: VerificationRecord['pii'] = null;
    if (row.nameEnc !== null || row.idCardEnc !== null || row.ocrEnc !== null) {
      const ocr = row.ocrEnc ? (JSON.parse(this.vault.open('ocr', row.ocrEnc)) as UpstreamOcrFields) : null;
      pii = {
        name: row.nameEnc ? this.vault.open('name', row.nameEnc) : (ocr?.name ?? ''),
        idCard: row.idCardEnc ? this.vault.open('id_card', row.idCardEnc) : (ocr?.id_card ?? ''),
        ocr,
      };
    }
    return {
      id: row.id,
      clientId: row.clientId,
      channel: row.channel as Channel,
      mode: row.mode as Mode,
      reference: row.reference,
      status: row.status,
      result: row.result,
      description: row.description,
      chargeStatus: row.chargeStatus as ChargeState,
      unitPrice: row.unitPrice,
      amount: row.amount,
      currency: row.currency,
      localCheck: row.localCheck,
      reusedFromId: row.reusedFromId,
      upstreamTraceId: row.upstreamTraceId,
      upstreamError: row.upstreamError,
      createdAt: row.createdAt,
      completedAt: row.completedAt,
      pii,
      piiPurgedAt: row.piiPurgedAt,
    };
  }
}
