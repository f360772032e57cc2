import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { prepareDatabase } from '../../src/database/runtime-role';
import { withDatabase } from './databases';

/*
 * One PostgreSQL for the run: DATABASE_URL's server when set, otherwise an
 * embedded one in a temp folder. The template database is prepared once, as
 * `npm start` prepares its database: migrated by the superuser (the owner), with
 * a runtime role that owns nothing and holds the app's grants. Every e2e suite
 * then gets its own copy of it (see databases.ts); CREATE DATABASE … TEMPLATE
 * copies the grants with the tables, so suites run the app as that role.
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
  // Roles belong to the whole server: one per run (its pid), so that runs sharing a server
  // never reset each other's password.
  const runtimeRole = `idgate_test_runtime_${process.pid}`;
  const runtimePassword = randomBytes(24).toString('base64url');
  const prepared = await prepareDatabase({
    ownerUrl: withDatabase(adminUrl, template),
    runtime: { role: runtimeRole, password: () => runtimePassword },
  });
  // Where the workers record the statuses they see (checked against the OpenAPI document at teardown).
  process.env.IDGATE_TEST_STATUS_DIR = mkdtempSync(path.join(os.tmpdir(), 'idgate-statuses-'));
  process.env.IDGATE_TEST_ADMIN_URL = adminUrl;
  process.env.IDGATE_TEST_TEMPLATE = template;
  process.env.IDGATE_TEST_RUNTIME_URL = prepared.runtimeUrl;
  process.env.IDGATE_TEST_RUNTIME_ROLE = runtimeRole;
}
