import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { undocumentedStatuses } from './documented-statuses';

export default async function globalTeardown(): Promise<void> {
  try {
    await releaseDatabases();
  } finally {
    checkDocumentedStatuses();
  }
}

/** Fails the run when an operation answered a status its OpenAPI entry does not document. */
function checkDocumentedStatuses(): void {
  const dir = process.env.IDGATE_TEST_STATUS_DIR;
  if (!dir) return;
  try {
    const files = readdirSync(dir);
    if (!files.includes('openapi.json')) return;
    const document = JSON.parse(readFileSync(path.join(dir, 'openapi.json'), 'utf8'));
    const lines = files
      .filter((f) => f.startsWith('statuses-'))
      .flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n'));
    const undocumented = undocumentedStatuses(document, lines);
    if (undocumented.length > 0) {
      throw new Error(
        `operations answered statuses their OpenAPI entry does not document:\n` +
          undocumented.map((u) => `  ${u.operation}: ${u.status} (e.g. ${u.example})`).join('\n'),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function releaseDatabases(): Promise<void> {
  const adminUrl = process.env.IDGATE_TEST_ADMIN_URL;
  const template = process.env.IDGATE_TEST_TEMPLATE;
  if (adminUrl && template) {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`).catch(() => undefined);
    // The run's runtime role (cluster-wide): on a shared server, leave nothing behind.
    const runtimeRole = process.env.IDGATE_TEST_RUNTIME_ROLE;
    if (runtimeRole) await admin.query(`DROP ROLE IF EXISTS "${runtimeRole}"`).catch(() => undefined);
    await admin.end();
  }
  const embedded = (globalThis as { __idgateEmbedded?: { stop(): Promise<void> } }).__idgateEmbedded;
  await embedded?.stop();
}
