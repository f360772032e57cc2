import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export interface TestDatabase {
  name: string;
  /** The runtime role's connection, as the app has it: no ownership, the app's grants only. */
  url: string;
  /** Superuser connection to this database (the owner), for tests that inspect or tamper with tables. */
  adminUrl: string;
  /** The audit witness folder of this database's installation: every app and CLI run on it shares it. */
  witnessDir?: string;
  drop(): Promise<void>;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through jest (globalSetup)`);
  return value;
}

/** A fresh database for one suite, copied from the migrated template (grants to the runtime role included). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = required('IDGATE_TEST_ADMIN_URL');
  const template = required('IDGATE_TEST_TEMPLATE');
  const runtimeUrl = required('IDGATE_TEST_RUNTIME_URL');
  const name = `idgate_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    // Two suites copying the template at the same moment can collide briefly: retry.
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
        break;
      } catch (err) {
        if (attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
      }
    }
  } finally {
    await admin.end();
  }
  // One witness folder per database, as one installation has one (mode 0700: no other OS user writes it).
  const witnessDir = mkdtempSync(path.join(os.tmpdir(), 'idgate-witness-'));
  return {
    name,
    url: withDatabase(runtimeUrl, name),
    adminUrl: withDatabase(adminUrl, name),
    witnessDir,
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
      await c.end();
      rmSync(witnessDir, { recursive: true, force: true });
    },
  };
}

/**
 * The environment a spawned idgate (server or CLI) needs to run on `db` as the app does:
 * the runtime role as DATABASE_URL, the owner (for migrations and grants) as DATABASE_OWNER_URL.
 */
export function databaseEnv(db: TestDatabase): Record<string, string> {
  return {
    DATABASE_URL: db.url,
    DATABASE_OWNER_URL: db.adminUrl,
    ...(db.witnessDir ? { AUDIT_WITNESS_DIR: db.witnessDir } : {}),
  };
}
