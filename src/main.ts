import './compile-cache';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createApp } from './app.factory';
import { AuditWitness, witnessBannerLines } from './audit/witness/audit-witness.service';
import { Draining } from './common/draining';
import { ApiKeysService } from './auth/api-keys.service';
import { prepareRuntime } from './bootstrap';
import { ConfigError, readEnvironment, upstreamModeOf } from './config/environment';
import { startInProcessSandbox } from './upstream/sandbox/in-process';

/*
 * `npm start`: validate config, start or find the database, migrate, serve.
 * Shutdown is ordered by hand: stop accepting, let in-flight requests finish,
 * close the pool, and only then stop the embedded PostgreSQL.
 */
async function main(): Promise<void> {
  // Before the database is touched: a deployment without a vendor token stops here, unless
  // simulated results were asked for (UPSTREAM_MODE=sandbox), rather than quietly simulate.
  upstreamModeOf(readEnvironment(process.env), { server: true });
  const runtime = await prepareRuntime(process.env, { adoptOrphanDatabase: true });
  // Sandbox mode: the built-in sandbox answers, on a loopback port.
  const { config, sandbox } = await startInProcessSandbox(runtime.config).catch(async (err: unknown) => {
    await runtime.stop();
    throw err;
  });
  const draining = new Draining();
  const app = await createApp(config, { draining });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`idgate: ${signal} received, shutting down\n`);
    // From now on every response closes its connection and new requests are refused at once.
    draining.begin();
    try {
      await app.close();
      await sandbox?.close();
    } finally {
      await runtime.stop();
      process.exit(0);
    }
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void shutdown(signal));

  await app.listen(config.port, config.http.host);
  // Keys from before rows carried a MAC get one, once (see ApiKeysService.backfillMacsOnce).
  await app.get(ApiKeysService).backfillMacsOnce();
  // Only once listening: a start that cannot listen (port taken) must not use up the one-time key.
  const bootstrapKey = await app.get(ApiKeysService).issueBootstrapAdminKeyOnce();
  const url = (await app.getUrl())
    .replace('[::1]', 'localhost')
    .replace('0.0.0.0', 'localhost')
    .replace('127.0.0.1', 'localhost');

  const lines = [
    `idgate listening on ${url} (bound to ${config.http.host}${config.http.host === '127.0.0.1' ? ': this machine only; set HOST to serve others' : ''})`,
    `  database: ${config.embeddedDatabase ? `embedded PostgreSQL (data in ${config.dataDir}/)` : 'DATABASE_URL'}`,
    `  docs:     ${url}/docs (OpenAPI JSON at ${url}/docs-json)`,
    `  console:  ${url}/console (staff console: sign in with an API key)`,
    sandbox
      ? `  upstream: SANDBOX at ${sandbox.url} (UPSTREAM_MODE=sandbox): results are SIMULATED, nothing is charged`
      : `  upstream: vendor API at ${config.upstream.baseUrl} (UPSTREAM_MODE=vendor)`,
  ];
  // Loud and first, so that nobody takes a simulated instance for a deployment that verifies people.
  if (sandbox) lines.unshift(SIMULATED_WARNING);
  if (runtime.appliedMigrations.length) lines.push(`  migrations applied: ${runtime.appliedMigrations.join(', ')}`);
  // Where the audit witness is, and a warning when the database's OS user could rewrite it.
  lines.push(...witnessBannerLines(config, app.get(AuditWitness).warning));
  // One write, so whoever reads the banner reads the key's whereabouts with it.
  process.stdout.write(
    lines.join('\n') + '\n' + (bootstrapKey ? showBootstrapKey(bootstrapKey.key, config.dataDir) : ''),
  );
}

const SIMULATED_WARNING =
  '*** SIMULATED UPSTREAM (UPSTREAM_MODE=sandbox): every verification result is made up by the ' +
  'built-in sandbox and nothing is charged. Not for verifying real people. ***';

/**
 * The first start's admin key must reach the operator and nothing else: on a terminal it
 * is shown (last, framed); otherwise stdout is a log stream (docker, journald, a CI log)
 * that others read and keep, so it goes to a file only the operator can read, and only
 * the file's path is printed.
 */
function showBootstrapKey(key: string, dataDir: string): string {
  if (process.stdout.isTTY) {
    const body = [
      'Bootstrap admin API key (shown once: store it now)',
      '',
      `  ${key}`,
      '',
      'Next: create a client app and its key:',
      '  npm run cli -- keys create --role client --name my-app --client my-app',
      'or use it as "Authorization: Bearer <key>" on /v1/clients and /v1/api-keys.',
    ];
    const width = Math.max(...body.map((l) => l.length));
    const frame = '+' + '-'.repeat(width + 2) + '+';
    const boxed = [frame, ...body.map((l) => `| ${l.padEnd(width)} |`), frame];
    return '\n' + boxed.join('\n') + '\n';
  }
  const file = path.resolve(dataDir, 'bootstrap-admin-key');
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    // A fresh file, so that its mode is ours whatever was there before.
    rmSync(file, { force: true });
    writeFileSync(file, key + '\n', { mode: 0o600, flag: 'wx' });
    return `  bootstrap admin API key written to ${file} (mode 0600, shown nowhere else): read it, store it, delete the file\n`;
  } catch {
    return `  the bootstrap admin API key could not be written to ${file}; create an admin key with: npm run cli -- keys create --role admin --name admin\n`;
  }
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`idgate: configuration error: ${err.message}\n`);
  } else {
    process.stderr.write(`idgate: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  process.exit(1);
});
