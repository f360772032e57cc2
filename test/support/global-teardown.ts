import pg from 'pg';

export default async function globalTeardown(): Promise<void> {
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
