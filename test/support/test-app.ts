import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import TestAgent from 'supertest/lib/agent';
import { createApp } from '../../src/app.factory';
import { ApiKeysService } from '../../src/auth/api-keys.service';
import { ClientsService } from '../../src/auth/clients.service';
import { Role } from '../../src/auth/roles';
import { systemContext } from '../../src/audit/audit-vocabulary';
import { AppConfig } from '../../src/config/app-config';
import { PrismaService } from '../../src/database/prisma.service';
import { createTestDatabase, TestDatabase } from './databases';
import { flushStatuses, recordStatuses } from './status-recorder';

/** The audit MAC key of every app this process starts (several instances share a database). */
export const TEST_AUDIT_MAC_KEY = randomBytes(32);

/** Keys and clients the harness makes are audited as made by the system actor `test`. */
const TEST_ACTOR = systemContext('test');

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export function testConfig(databaseUrl: string, overrides: DeepPartial<AppConfig> = {}): AppConfig {
  const base: AppConfig = {
    port: 0,
    databaseUrl,
    databasePoolSize: 5,
    embeddedDatabase: false,
    dataDir: '.data',
    upstream: {
      baseUrl: 'http://127.0.0.1:1',
      timeoutMs: 2000,
      maxAttempts: 3,
      retryBaseDelayMs: 10,
      retryMaxDelayMs: 50,
      breakerThreshold: 5,
      breakerCooldownMs: 30000,
      keepAliveIdleMs: 3000,
      mode: 'sandbox',
    },
    admission: { concurrency: 5, queue: 200, queueWaitMs: 5000 },
    settleWaitMs: 5000,
    shutdownDrainMs: 10000,
    backgroundWorkers: true,
    http: { host: '127.0.0.1', trustProxy: [] },
    abuse: { piiSearchesPerHour: 1000, authFailuresPerMinute: 1000 },
    imageUrlPorts: [443],
    sandbox: { port: 0 },
    pii: { keys: [{ id: 'k1', key: randomBytes(32) }], hmacKey: randomBytes(32) },
    billing: { pricePerChargedCall: 50, currency: 'CNY' },
    logLevel: 'info',
    bodyLimitBytes: 64 * 1024,
    rateLimit: { perMinute: 1_000_000 },
    audit: {
      signingKeySeed: randomBytes(32),
      // One per test process, as one installation has one: instances on one database read each other's events.
      macKey: TEST_AUDIT_MAC_KEY,
      // Each app its own witness folder (a temp dir), unless a test shares one on purpose.
      witnessDir: mkdtempSync(path.join(os.tmpdir(), 'idgate-witness-')),
      orderToleranceMs: 300_000,
      sealStallMs: 60_000,
      sealIntervalMs: 200,
      checkpointIntervalMs: 60_000,
    },
  };
  return {
    ...base,
    ...overrides,
    // As buildAppConfig decides it: a vendor token (and no mode said) means vendor; otherwise the sandbox.
    upstream: {
      ...base.upstream,
      ...overrides.upstream,
      mode: overrides.upstream?.mode ?? (overrides.upstream?.token ? 'vendor' : 'sandbox'),
    },
    sandbox: { ...base.sandbox, ...overrides.sandbox },
    pii: { ...base.pii, ...(overrides.pii as AppConfig['pii']) },
    billing: { ...base.billing, ...overrides.billing },
    rateLimit: { ...base.rateLimit, ...overrides.rateLimit },
    audit: { ...base.audit, ...(overrides.audit as AppConfig['audit']) },
    admission: { ...base.admission, ...overrides.admission },
    http: { ...base.http, ...(overrides.http as AppConfig['http']) },
    abuse: { ...base.abuse, ...overrides.abuse },
  } as AppConfig;
}

export interface TestApp {
  app: INestApplication;
  http: TestAgent;
  db: TestDatabase;
  config: AppConfig;
  prisma: PrismaService;
  /** Every JSON log line the app wrote. */
  logs: string[];
  /** A real key made through the real service; `client` keys get a client of their own unless one is named. */
  keyFor(role: Role, clientName?: string): Promise<{ key: string; id: string; clientId: string | null }>;
  close(): Promise<void>;
}

/**
 * Boots the real app (same factory as `npm start`) on a fresh database of its own,
 * or on `database` when given (it is then not dropped on close).
 */
export async function startTestApp(overrides: DeepPartial<AppConfig> = {}, database?: TestDatabase): Promise<TestApp> {
  const db = database ?? (await createTestDatabase());
  // Apps (and CLI runs) on one database share its witness folder, as one installation's instances do.
  const config = testConfig(
    db.url,
    db.witnessDir && overrides.audit?.witnessDir === undefined
      ? { ...overrides, audit: { ...overrides.audit, witnessDir: db.witnessDir } }
      : overrides,
  );
  const logs: string[] = [];
  const app = await createApp(config, { logStream: { write: (line: string) => void logs.push(line) } });
  await app.init();
  recordStatuses(app);
  const http = request(app.getHttpServer());
  const prisma = app.get(PrismaService);
  return {
    app,
    http,
    db,
    config,
    prisma,
    logs,
    async keyFor(role, clientName) {
      let clientId: string | undefined;
      if (role === 'client') {
        const name = clientName ?? `client-${randomBytes(4).toString('hex')}`;
        clientId = (await app.get(ClientsService).findOrCreateClient(name, TEST_ACTOR)).id;
      }
      const issued = await app
        .get(ApiKeysService)
        .createKey({ role, name: `${role} test key`, clientId }, TEST_ACTOR, { kind: 'shell' });
      return { key: issued.key, id: issued.id, clientId: issued.clientId };
    },
    async close() {
      await app.close();
      flushStatuses();
      if (!database) await db.drop();
    },
  };
}
