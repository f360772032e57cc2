import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LEGACY_PASSWORD } from '../database/embedded-postgres';

interface LocalSecrets {
  PII_KEYS: string;
  PII_HMAC_KEY: string;
  /** Added after the first release: older secrets files lack it and get it on the next start. */
  AUDIT_SIGNING_KEY?: string;
  /** Added with the audit MAC: older files get it on the next start. */
  AUDIT_MAC_KEY?: string;
  /** Password of the embedded PostgreSQL's `postgres` role (older files lack it: generated on the next start). */
  EMBEDDED_PG_PASSWORD?: string;
}

const NAMES = ['PII_KEYS', 'PII_HMAC_KEY', 'AUDIT_SIGNING_KEY', 'AUDIT_MAC_KEY'] as const;
/** Keys added after the first release: generated into an existing file when missing. */
const ADDED_LATER = ['AUDIT_SIGNING_KEY', 'AUDIT_MAC_KEY'] as const;

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
    const missing = ADDED_LATER.filter((name) => !secrets[name]);
    if (missing.length > 0) {
      // Never regenerate the PII keys (that would orphan encrypted data): only add what is missing.
      for (const name of missing) secrets = { ...secrets, [name]: randomBytes(32).toString('base64') };
      const temp = `${file}.${process.pid}.tmp`;
      writeFileSync(temp, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
      renameSync(temp, file);
    }
  } else {
    secrets = {
      PII_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      PII_HMAC_KEY: randomBytes(32).toString('base64'),
      AUDIT_SIGNING_KEY: randomBytes(32).toString('base64'),
      AUDIT_MAC_KEY: randomBytes(32).toString('base64'),
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
    AUDIT_MAC_KEY: env.AUDIT_MAC_KEY || secrets.AUDIT_MAC_KEY,
  };
}

/**
 * The password of the embedded PostgreSQL in this data folder, generated once into
 * secrets.json (a cluster made with the old fixed password is moved to it on start).
 * Call only while holding the data folder (see data-dir-lock.ts), or to read it.
 */
export function localDatabasePassword(dataDir: string, mode: 'create' | 'read' = 'create'): string {
  const file = path.resolve(dataDir, 'secrets.json');
  const secrets = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<LocalSecrets>) : {};
  if (secrets.EMBEDDED_PG_PASSWORD) return secrets.EMBEDDED_PG_PASSWORD;
  // A server of an older idgate still runs with the old password: use it, change nothing.
  if (mode === 'read') return LEGACY_PASSWORD;
  const password = randomBytes(24).toString('base64url');
  mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify({ ...secrets, EMBEDDED_PG_PASSWORD: password }, null, 2) + '\n', {
    mode: 0o600,
    flag: 'wx',
  });
  renameSync(temp, file);
  return password;
}
