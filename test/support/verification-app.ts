import identities from '../../src/upstream/sandbox/fixtures/identities.json';
import { SandboxHandle, startSandbox, StartSandboxOptions } from '../../src/upstream/sandbox/sandbox-server';
import { AppConfig } from '../../src/config/app-config';
import { startTestApp, TestApp } from './test-app';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export interface VerificationHarness {
  t: TestApp;
  sandbox: SandboxHandle;
  close(): Promise<void>;
}

/** The real app wired to a real sandbox upstream on loopback. */
export async function startWithSandbox(
  overrides: DeepPartial<AppConfig> = {},
  sandboxOptions: StartSandboxOptions = {},
): Promise<VerificationHarness> {
  const sandbox = await startSandbox({ port: 0, dailyLimits: false, ...sandboxOptions });
  const t = await startTestApp({
    ...overrides,
    upstream: { timeoutMs: 1500, ...overrides.upstream, baseUrl: sandbox.url },
  });
  return {
    t,
    sandbox,
    async close() {
      await t.close();
      await sandbox.close();
    },
  };
}

/** Identities the sandbox's register knows (name, ID number and card fields). */
export const KNOWN = identities as Array<{
  id_card: string;
  name: string;
  sex: string;
  nation: string;
  birth: string;
  address: string;
}>;

/** A valid ID number (correct check character) that is not in the register: the sandbox answers -5. */
export const UNKNOWN_VALID_ID = '11010519491231002X';
