import { Injectable, Logger } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { AuditContext, SYSTEM_BOOTSTRAP } from '../audit/audit-vocabulary';
import { AppConfig } from '../config/app-config';
import { PrismaService } from '../database/prisma.service';
import { Page, decodeIdCursor, toPage } from '../common/pagination';
import { ProblemException, validationProblem } from '../common/problem';
import { Prisma } from '../generated/prisma/client';
import { generateApiKey, hashApiKey, looksLikeApiKey, KeyEnvironment } from './api-key-secret';
import { SecurityAlerts } from '../audit/security-alerts.service';
import { apiKeyMac, apiKeyMacValid } from './api-key-mac';
import { readsFullPii } from './approval-rules';
import { ClientsService } from './clients.service';
import { Principal, Role } from './roles';
import { lockForTransaction, Transaction } from '../database/transaction';

/** An API key as admins see it: never the secret. */
export interface ApiKeyInfo {
  id: string;
  prefix: string;
  role: Role;
  name: string;
  clientId: string | null;
  clientName: string | null;
  createdAt: Date;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

/** Returned once, at creation: the only time the plaintext key exists outside the caller. */
export interface IssuedApiKey extends ApiKeyInfo {
  key: string;
}

export interface NewApiKey {
  role: Role;
  name: string;
  clientId?: string;
}

/**
 * Where a new key comes from. `shell`: the CLI (or the bootstrap, tests, benches), i.e.
 * someone with shell access to the deployment. `api`: an admin key through the API.
 * `approved`: through the API, with a second key's approval (see ApprovalsService).
 */
export type KeyOrigin =
  | { kind: 'shell' }
  | { kind: 'api'; byKeyId: string }
  | { kind: 'approved'; byKeyId: string; approvedByKeyId: string; approvalId: string };

const BOOTSTRAP_FLAG = 'bootstrap_admin_key_issued';
const LAST_USED_GRANULARITY_MS = 60_000;
/**
 * How long a key lookup is reused. A revocation therefore reaches every instance within
 * this time (at once on the instance that revoked it).
 */
export const KEY_CACHE_MS = 1000;
const KEY_CACHE_ENTRIES = 10_000;

interface KeyLookup {
  principal: Principal;
  revoked: boolean;
  lastUsedAt: Date | null;
}

interface CachedLookup {
  at: number;
  lookup: Promise<KeyLookup | null>;
}

type KeyRow = Prisma.ApiKeyGetPayload<{ include: { client: true } }>;

function toInfo(row: KeyRow): ApiKeyInfo {
  return {
    id: row.id,
    prefix: row.prefix,
    role: row.role,
    name: row.name,
    clientId: row.clientId,
    clientName: row.client?.name ?? null,
    createdAt: row.createdAt,
    revokedAt: row.revokedAt,
    lastUsedAt: row.lastUsedAt,
  };
}

@Injectable()
export class ApiKeysService {
  private readonly logger = new Logger(ApiKeysService.name);
  private readonly lookups = new Map<string, CachedLookup>();
  private readonly macKey: Buffer;
  private readonly environment: KeyEnvironment;

  constructor(
    private readonly prisma: PrismaService,
    private readonly clients: ClientsService,
    private readonly audit: AuditService,
    private readonly alerts: SecurityAlerts,
    config: AppConfig,
  ) {
    this.macKey = config.audit.macKey;
    // Keys issued while idgate talks to the sandbox upstream say so in their prefix.
    this.environment = config.upstream.mode === 'vendor' ? 'live' : 'test';
  }

  /**
   * Creates a key and audits it (`api_key.created`) in one transaction. A key that reads
   * personal data in full is never made by one admin key alone: through the API it needs
   * a second key's approval (`origin.kind === 'approved'`); from the shell it is allowed.
   * Either way it raises a security alert.
   */
  async createKey(input: NewApiKey, context: AuditContext, origin: KeyOrigin): Promise<IssuedApiKey> {
    if (readsFullPii(input.role) && origin.kind === 'api') {
      await this.alerts.raise(context, 'full_pii_key_refused', { role: input.role, channel: 'api' });
      throw new ProblemException(
        'forbidden',
        `A ${input.role} key reads personal data in full: create it from the CLI (npm run cli -- keys create), ` +
          'or request it with POST /v1/api-key-requests and have a second admin key approve it.',
      );
    }
    const issued = await this.prisma.$transaction((tx) => this.createKeyIn(tx, input, context, origin));
    await this.announce(issued, context, origin);
    return issued;
  }

  /**
   * Keys made before rows carried a MAC get one, once: the backfill is itself an audit event
   * (`api_key.macs_backfilled`), and while that event exists it never runs again, so a row
   * inserted later without a MAC stays refused. (Removing the event is caught by the audit
   * chain's integrity check.) Under an advisory lock: several instances backfill once.
   */
  async backfillMacsOnce(context: AuditContext = SYSTEM_BOOTSTRAP): Promise<number> {
    return this.prisma.$transaction(async (tx) => {
      await lockForTransaction(tx, 'idgate.api-key-mac-backfill');
      if (await this.audit.hasEvent(tx, 'api_key.macs_backfilled')) return 0;
      const rows = await tx.apiKey.findMany({ where: { mac: null } });
      for (const row of rows) {
        await tx.apiKey.update({ where: { id: row.id }, data: { mac: apiKeyMac(this.macKey, row) } });
      }
      await this.audit.record(tx, context, {
        action: 'api_key.macs_backfilled',
        target: { type: 'api_keys', id: null },
        details: { count: rows.length },
      });
      return rows.length;
    });
  }

  /** Raises the alert a new key that reads personal data in full calls for (after its transaction committed). */
  async announce(issued: IssuedApiKey, context: AuditContext, origin: KeyOrigin): Promise<void> {
    if (!readsFullPii(issued.role)) return;
    await this.alerts.raise(
      context,
      'full_pii_key_created',
      {
        role: issued.role,
        key_prefix: issued.prefix,
        channel: origin.kind === 'shell' ? 'cli' : 'api_with_approval',
        ...(origin.kind === 'approved'
          ? { approval_id: origin.approvalId, approved_by_key_id: origin.approvedByKeyId }
          : {}),
      },
      { type: 'api_key', id: issued.id },
    );
  }

  /** What an approval needs to know of a key: role, age, revocation, and the keys that made it (nearest first). */
  async keyFacts(
    keyId: string,
  ): Promise<{ keyId: string; role: Role; revoked: boolean; createdAt: Date; ancestors: string[] } | null> {
    const row = await this.prisma.apiKey.findUnique({ where: { id: keyId } });
    if (!row) return null;
    const ancestors: string[] = [];
    for (let next = row.createdByKeyId; next !== null && ancestors.length < 1000;) {
      if (ancestors.includes(next)) break;
      ancestors.push(next);
      next =
        (await this.prisma.apiKey.findUnique({ where: { id: next }, select: { createdByKeyId: true } }))
          ?.createdByKeyId ?? null;
    }
    return { keyId: row.id, role: row.role, revoked: row.revokedAt !== null, createdAt: row.createdAt, ancestors };
  }

  /** Creates a key in the caller's transaction (rules checked, audited; no alert: see announce()). */
  async createKeyIn(
    tx: Transaction,
    input: NewApiKey,
    context: AuditContext,
    origin: KeyOrigin,
  ): Promise<IssuedApiKey> {
    if (input.role === 'client' && !input.clientId) {
      throw validationProblem([{ field: 'client_id', message: 'is required for a key with role client' }]);
    }
    if (input.role !== 'client' && input.clientId) {
      throw validationProblem([{ field: 'client_id', message: 'is only allowed for a key with role client' }]);
    }
    if (input.clientId && !(await tx.client.findUnique({ where: { id: input.clientId } }))) {
      throw validationProblem([{ field: 'client_id', message: 'names no existing client' }]);
    }
    const secret = generateApiKey(this.environment);
    const row = await tx.apiKey.create({
      data: {
        prefix: secret.prefix,
        keyHash: secret.hash,
        role: input.role,
        name: input.name,
        clientId: input.clientId ?? null,
        createdByKeyId: origin.kind === 'shell' ? null : origin.byKeyId,
      },
      include: { client: true },
    });
    // The MAC covers the generated id, so it is set once the row exists (same transaction).
    await tx.apiKey.update({ where: { id: row.id }, data: { mac: apiKeyMac(this.macKey, row) } });
    await this.audit.record(tx, context, {
      action: 'api_key.created',
      target: { type: 'api_key', id: row.id },
      details: { key_prefix: row.prefix, role: row.role, label: row.name, client_id: row.clientId },
    });
    return { ...toInfo(row), key: secret.key };
  }

  async listKeys(cursor: string | undefined, limit: number): Promise<Page<ApiKeyInfo>> {
    const after = decodeIdCursor(cursor);
    const rows = await this.prisma.apiKey.findMany({
      where: after === undefined ? {} : { id: { lt: after } },
      orderBy: { id: 'desc' },
      take: limit + 1,
      include: { client: true },
    });
    return toPage(rows, limit, toInfo, (r) => [r.id]);
  }

  /** Revokes a key and audits it (`api_key.revoked`); revoking an already revoked key changes nothing and says so. */
  async revokeKey(id: string, context: AuditContext): Promise<ApiKeyInfo> {
    let keyHash: string | null = null;
    const revoked = await this.prisma.$transaction(async (tx) => {
      const existing = await tx.apiKey.findUnique({ where: { id } });
      if (!existing) throw new ProblemException('not-found', 'No API key with that id.');
      const row = await tx.apiKey.update({
        where: { id },
        data: { revokedAt: existing.revokedAt ?? new Date() },
        include: { client: true },
      });
      keyHash = row.keyHash;
      await this.audit.record(tx, context, {
        action: 'api_key.revoked',
        target: { type: 'api_key', id: row.id },
        details: { key_prefix: row.prefix, role: row.role, already_revoked: existing.revokedAt !== null },
      });
      return toInfo(row);
    });
    // This instance stops accepting it at once; the others within KEY_CACHE_MS.
    if (keyHash) this.lookups.delete(keyHash);
    return revoked;
  }

  /** The principal behind a presented key, or null when the key is unknown or revoked. */
  async authenticate(presented: string): Promise<{ principal: Principal | null; revoked: boolean }> {
    if (!looksLikeApiKey(presented)) return { principal: null, revoked: false };
    const keyHash = hashApiKey(presented);
    const now = Date.now();
    let cached = this.lookups.get(keyHash);
    if (!cached || now - cached.at >= KEY_CACHE_MS) {
      // One lookup per key and interval, shared by concurrent requests: under load (and
      // under a retry storm of refused requests) authentication costs the pool next to nothing.
      cached = { at: now, lookup: this.lookUp(keyHash) };
      this.remember(keyHash, cached);
    }
    const found = await cached.lookup.catch((err: unknown) => {
      this.lookups.delete(keyHash);
      throw err;
    });
    if (!found) return { principal: null, revoked: false };
    if (found.revoked) return { principal: null, revoked: true };
    if (!found.lastUsedAt || now - found.lastUsedAt.getTime() > LAST_USED_GRANULARITY_MS) {
      found.lastUsedAt = new Date(now);
      // Coarse and off the request path: a failed bookkeeping write must not fail the request.
      this.prisma.apiKey
        .update({ where: { id: found.principal.keyId }, data: { lastUsedAt: new Date(now) } })
        .catch(() => this.logger.warn('could not record last use of an API key'));
    }
    return { principal: found.principal, revoked: false };
  }

  private async lookUp(keyHash: string): Promise<KeyLookup | null> {
    const row = await this.prisma.apiKey.findUnique({ where: { keyHash } });
    if (!row) return null;
    if (!apiKeyMacValid(this.macKey, row, row.mac)) {
      // Inserted or changed by someone with database access, not by idgate: not a key.
      void this.alerts.raise(
        { actor: { type: 'anonymous', id: null, role: null } },
        'api_key_tampered',
        { key_prefix: row.prefix, role: row.role },
        { type: 'api_key', id: row.id },
      );
      return null;
    }
    let revoked = row.revokedAt !== null;
    // revoked_at is outside the MAC (idgate sets it without re-signing): the trail says whether a
    // key was ever revoked, so clearing the column by hand does not bring a key back.
    if (!revoked && (await this.audit.hasEventAbout('api_key.revoked', { type: 'api_key', id: row.id }))) {
      revoked = true;
      void this.alerts.raise(
        { actor: { type: 'anonymous', id: null, role: null } },
        'api_key_revocation_undone',
        { key_prefix: row.prefix, role: row.role },
        { type: 'api_key', id: row.id },
      );
    }
    return {
      principal: { keyId: row.id, keyPrefix: row.prefix, role: row.role, clientId: row.clientId },
      revoked,
      lastUsedAt: row.lastUsedAt,
    };
  }

  private remember(keyHash: string, entry: CachedLookup): void {
    this.lookups.delete(keyHash);
    this.lookups.set(keyHash, entry);
    // Bounded: the oldest entries go first (random keys sent by an attacker cannot grow it).
    for (const oldest of this.lookups.keys()) {
      if (this.lookups.size <= KEY_CACHE_ENTRIES) break;
      this.lookups.delete(oldest);
    }
  }

  /**
   * On the very first start, issues an admin key so someone can log in. Runs
   * under an advisory lock so two instances starting together issue one key.
   */
  async issueBootstrapAdminKeyOnce(context: AuditContext = SYSTEM_BOOTSTRAP): Promise<IssuedApiKey | null> {
    return this.prisma.$transaction(async (tx) => {
      await lockForTransaction(tx, 'idgate.bootstrap_admin_key');
      if (await tx.systemFlag.findUnique({ where: { name: BOOTSTRAP_FLAG } })) return null;
      await tx.systemFlag.create({ data: { name: BOOTSTRAP_FLAG } });
      return this.createKeyIn(tx, { role: 'admin', name: 'bootstrap admin' }, context, { kind: 'shell' });
    });
  }
}
