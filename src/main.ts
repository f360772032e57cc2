import { createApp } from './app.factory';
import { ApiKeysService } from './auth/api-keys.service';
import { prepareRuntime } from './bootstrap';
import { ConfigError } from './config/environment';
import { startInProcessSandbox } from './upstream/sandbox/in-process';

/*
 * `npm start`: validate config, start or find the database, migrate, serve.
 * Shutdown is ordered by hand: stop accepting, let in-flight requests finish,
 * close the pool, and only then stop the embedded PostgreSQL.
 */
async function main(): Promise<void> {
  const runtime = await prepareRuntime(process.env, { adoptOrphanDatabase: true });
  // No UPSTREAM_TOKEN: the built-in sandbox answers, on a loopback port.
  const { config, sandbox } = await startInProcessSandbox(runtime.config).catch(async (err: unknown) => {
    await runtime.stop();
    throw err;
  });
  const app = await createApp(config);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`idgate: ${signal} received, shutting down\n`);
    try {
      await app.close();
      await sandbox?.close();
    } finally {
      await runtime.stop();
      process.exit(0);
    }
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void shutdown(signal));

  const bootstrapKey = await app.get(ApiKeysService).issueBootstrapAdminKeyOnce();
  await app.listen(config.port, '0.0.0.0');
  const url = (await app.getUrl()).replace('[::1]', 'localhost').replace('0.0.0.0', 'localhost');

  const lines = [
    `idgate listening on ${url}`,
    `  database: ${config.embeddedDatabase ? `embedded PostgreSQL (data in ${config.dataDir}/)` : 'DATABASE_URL'}`,
    `  docs:     ${url}/docs (OpenAPI JSON at ${url}/docs-json)`,
    `  console:  ${url}/console (staff console: sign in with an API key)`,
    sandbox
      ? `  upstream: SANDBOX at ${sandbox.url} (no UPSTREAM_TOKEN): results are SIMULATED, nothing is charged`
      : `  upstream: ${config.upstream.baseUrl}`,
  ];
  if (runtime.appliedMigrations.length) lines.push(`  migrations applied: ${runtime.appliedMigrations.join(', ')}`);
  if (bootstrapKey) {
    lines.push(
      '',
      '  Bootstrap admin API key (shown once, store it now):',
      `    ${bootstrapKey.key}`,
      '  Use it as "Authorization: Bearer <key>" to create clients and keys, or run: npm run cli -- keys create --help',
      '',
    );
  }
  // Printed on stdout, not through the logger: it is for the operator at the terminal.
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`idgate: configuration error: ${err.message}\n`);
  } else {
    process.stderr.write(`idgate: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  process.exit(1);
});
