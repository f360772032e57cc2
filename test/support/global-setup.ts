import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { applyMigrations } from '../../src/database/migrations';
import { withDatabase } from './databases';

/*
 * One PostgreSQL for the run: DATABASE_URL's server when set, otherwise an
 * embedded one in a temp folder. Migrations are applied once to a template
 * database; every e2e suite then gets its own copy of it (see databases.ts).
 */
export default async function globalSetup(): Promise<void> {
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'idgate-test-'));
    const db = await startEmbeddedPostgres({ dataDir, database: 'postgres', ephemeral: true });
    (globalThis as { __idgateEmbedded?: typeof db }).__idgateEmbedded = db;
    adminUrl = db.adminUrl;
  }
  // Name the user explicitly (libpq would default to the OS user; pg needs $USER, which may be empty).
  const parsed = new URL(adminUrl);
  if (!parsed.username) parsed.username = process.env.PGUSER || os.userInfo().username;
  adminUrl = parsed.toString();
  const template = `idgate_test_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${template}"`);
  } finally {
    await admin.end();
  }
  await applyMigrations(withDatabase(adminUrl, template));
  process.env.IDGATE_TEST_ADMIN_URL = adminUrl;
  process.env.IDGATE_TEST_TEMPLATE = template;
}
