import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

interface LocalSecrets {
  PII_KEYS: string;
  PII_HMAC_KEY: string;
  /** Added after the first release: older secrets files lack it and get it on the next start. */
  AUDIT_SIGNING_KEY?: string;
}

const NAMES = ['PII_KEYS', 'PII_HMAC_KEY', 'AUDIT_SIGNING_KEY'] as const;

/**
 * Embedded mode only: keys missing from the environment are generated once and
 * kept in <dataDir>/secrets.json (mode 0600), so a restart can read its own data.
 * Returns the environment with those keys filled in.
 */
export function withLocalSecrets(env: NodeJS.ProcessEnv, dataDir: string): NodeJS.ProcessEnv {
  if (NAMES.every((name) => env[name])) return env;
  const file = path.resolve(dataDir, 'secrets.json');
  let secrets: LocalSecrets;
  if (existsSync(file)) {
    secrets = JSON.parse(readFileSync(file, 'utf8')) as LocalSecrets;
    if (!secrets.AUDIT_SIGNING_KEY) {
      // Never regenerate the PII keys (that would orphan encrypted data): only add what is missing.
      secrets = { ...secrets, AUDIT_SIGNING_KEY: randomBytes(32).toString('base64') };
      const temp = `${file}.${process.pid}.tmp`;
      writeFileSync(temp, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
      renameSync(temp, file);
    }
  } else {
    secrets = {
      PII_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      PII_HMAC_KEY: randomBytes(32).toString('base64'),
      AUDIT_SIGNING_KEY: randomBytes(32).toString('base64'),
    };
    // The folder stays traversable: as root, the embedded PostgreSQL runs as user postgres inside it.
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  }
  return {
    ...env,
    PII_KEYS: env.PII_KEYS || secrets.PII_KEYS,
    PII_HMAC_KEY: env.PII_HMAC_KEY || secrets.PII_HMAC_KEY,
    AUDIT_SIGNING_KEY: env.AUDIT_SIGNING_KEY || secrets.AUDIT_SIGNING_KEY,
  };
}
