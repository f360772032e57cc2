/*
 * `npm run sandbox`: the sandbox upstream on its own, on SANDBOX_PORT (default 3100).
 * Reads SANDBOX_TOKEN, SANDBOX_FAULTS (e.g. "latency=50,http500=0.05"), SANDBOX_HOST
 * (default 127.0.0.1), SANDBOX_CHARGE_FAULTED_CALLS (default true) and
 * PRICE_PER_CHARGED_CALL (default 50). Writes to stdout: it is a terminal tool.
 */
import { ConfigError, readEnvironment } from '../../config/environment';
import { parseFaultRates } from './faults';
import { startSandbox } from './sandbox-server';

async function main(): Promise<void> {
  const env = readEnvironment(process.env);
  const chargeFaulted = process.env.SANDBOX_CHARGE_FAULTED_CALLS;
  if (chargeFaulted !== undefined && !['true', 'false'].includes(chargeFaulted)) {
    throw new ConfigError('SANDBOX_CHARGE_FAULTED_CALLS', 'must be true or false');
  }
  const rates = env.SANDBOX_FAULTS === undefined ? undefined : parseFaultRates(env.SANDBOX_FAULTS);
  if (rates && !rates.ok) throw new ConfigError('SANDBOX_FAULTS', rates.error);
  const sandbox = await startSandbox({
    port: env.SANDBOX_PORT,
    host: process.env.SANDBOX_HOST || '127.0.0.1',
    token: env.SANDBOX_TOKEN,
    faults: env.SANDBOX_FAULTS,
    price: env.PRICE_PER_CHARGED_CALL,
    chargeFaultedCalls: chargeFaulted !== 'false',
  });
  process.stdout.write(
    [
      `idgate sandbox upstream listening on ${sandbox.url} (results are simulated; nothing is charged)`,
      `  verify:    POST ${sandbox.url}/identity/idcard/ocr   (Authorization: Bearer ${env.SANDBOX_TOKEN ? '<SANDBOX_TOKEN>' : '<any token>'})`,
      `  statement: GET  ${sandbox.url}/statement?from=YYYY-MM-DD&to=YYYY-MM-DD`,
      `  stats:     GET  ${sandbox.url}/stats`,
      `  faults:    ${env.SANDBOX_FAULTS ?? 'none configured'}; per request with the X-Sandbox-Fault header`,
      '',
    ].join('\n'),
  );
  const stop = () => void sandbox.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  const prefix = err instanceof ConfigError ? 'configuration error' : 'failed to start';
  process.stderr.write(`idgate sandbox: ${prefix}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
