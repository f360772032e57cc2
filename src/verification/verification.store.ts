import { Injectable } from '@nestjs/common';
import { decodeIdCursor, Page, toPage } from '../common/pagination';
import { PrismaService } from '../database/prisma.service';
import { Prisma } from '../generated/prisma/client';
import type { UpstreamOcrFields } from '../upstream/upstream.types';
import { PiiVault } from './pii-vault.service';
import { Channel, Mode, VerificationFilters, VerificationRecord } from './verification.types';

type Row = Prisma.VerificationGetPayload<object>;
export type Tx = Prisma.TransactionClient;

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

/**
 * Persistence of verifications. Personal data goes in sealed and comes out opened
 * here, nowhere else. Client-scoped reads take the client id; the unscoped ones
 * say so in their names.
 */
@Injectable()
export class VerificationStore {
  constructor(
    private readonly prisma: PrismaService,
    private readonly vault: PiiVault,
  ) {}

  sealedPii(name: string | null, idCard: string | null) {
    return {
      nameEnc: name === null ? null : this.vault.seal('name', name),
      idCardEnc: idCard === null ? null : this.vault.seal('id_card', idCard),
      nameHmac: name === null ? null : this.vault.nameHmac(name),
      idCardHmac: idCard === null ? null : this.vault.idCardHmac(idCard),
    };
  }

  sealedOcr(ocr: UpstreamOcrFields | null): string | null {
    if (!ocr || Object.values(ocr).every((v) => v === '')) return null;
    return this.vault.seal('ocr', JSON.stringify(ocr));
  }

  async insert(tx: Tx, v: NewVerification, extra: Partial<Prisma.VerificationUncheckedCreateInput>): Promise<Row> {
    return tx.verification.create({
      data: {
        clientId: v.clientId,
        apiKeyId: v.apiKeyId,
        channel: v.channel,
        mode: v.mode,
        reference: v.reference,
        unitPrice: v.unitPrice,
        currency: v.currency,
        status: 'pending',
        chargeStatus: 'unknown',
        amount: null,
        ...this.sealedPii(v.name, v.idCard),
        ...extra,
      },
    });
  }

  toRecord(row: Row): VerificationRecord {
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
      chargeStatus: row.chargeStatus,
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

  async findForClient(clientId: string, id: string): Promise<VerificationRecord | null> {
    const row = await this.prisma.verification.findFirst({ where: { id, clientId } });
    return row ? this.toRecord(row) : null;
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
}
