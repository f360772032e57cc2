import { AppConfig } from '../../config/app-config';
import { ConfigError } from '../../config/environment';
import { parseFaultRates } from './faults';
import { SandboxHandle, startSandbox } from './sandbox-server';

/**
 * In sandbox mode (UPSTREAM_MODE=sandbox, or embedded with no UPSTREAM_TOKEN) idgate answers
 * from the built-in sandbox: started here on a free loopback port, and the upstream base URL
 * pointed at it. Results are simulated. The mode decides, not the token: a missing token in a
 * deployment is refused before this runs (upstreamModeOf), never quietly simulated.
 */
export async function startInProcessSandbox(
  config: AppConfig,
): Promise<{ config: AppConfig; sandbox?: SandboxHandle }> {
  if (config.upstream.mode === 'vendor') return { config };
  if (config.sandbox.faults !== undefined) {
    const rates = parseFaultRates(config.sandbox.faults);
    if (!rates.ok) throw new ConfigError('SANDBOX_FAULTS', rates.error);
  }
  const sandbox = await startSandbox({
    host: '127.0.0.1',
    port: 0,
    token: config.sandbox.token,
    faults: config.sandbox.faults,
    price: config.billing.pricePerChargedCall,
  });
  return { config: { ...config, upstream: { ...config.upstream, baseUrl: sandbox.url } }, sandbox };
}
