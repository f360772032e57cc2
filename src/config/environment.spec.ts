import { randomBytes } from 'node:crypto';
import { admissionDefaults, buildAppConfig, parsePiiKeys } from './app-config';
import { ConfigError, readEnvironment } from './environment';

const key = () => randomBytes(32).toString('base64');

function errorFor(env: Record<string, string>): ConfigError {
  try {
    readEnvironment(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a configuration error');
}

describe('environment', () => {
  it('applies the documented defaults', () => {
    const env = readEnvironment({});
    expect(env).toMatchObject({
      PORT: 3000,
      UPSTREAM_BASE_URL: 'https://api.acedata.cloud',
      UPSTREAM_TIMEOUT_MS: 10000,
      CURRENCY: 'CNY',
      LOG_LEVEL: 'info',
      SANDBOX_PORT: 3100,
    });
    expect(env.DATABASE_URL).toBeUndefined();
    expect(env.UPSTREAM_TOKEN).toBeUndefined();
  });

  it('derives admission from the pool: one submission per connection, 64 waiting per connection, 2 s', () => {
    expect(admissionDefaults(readEnvironment({}))).toEqual({ concurrency: 10, queue: 640, queueWaitMs: 2000 });
    expect(admissionDefaults(readEnvironment({ DATABASE_POOL_SIZE: '3' }))).toEqual({
      concurrency: 3,
      queue: 192,
      queueWaitMs: 2000,
    });
    // Each setting overrides only itself; the queue follows a changed concurrency.
    expect(admissionDefaults(readEnvironment({ DATABASE_POOL_SIZE: '3', ADMISSION_CONCURRENCY: '5' }))).toEqual({
      concurrency: 5,
      queue: 320,
      queueWaitMs: 2000,
    });
    expect(admissionDefaults(readEnvironment({ ADMISSION_QUEUE: '7', ADMISSION_QUEUE_WAIT_MS: '500' }))).toMatchObject({
      concurrency: 10,
      queue: 7,
      queueWaitMs: 500,
    });
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['DATABASE_URL', 'mysql://localhost/x'],
    ['UPSTREAM_BASE_URL', 'not a url'],
    ['UPSTREAM_TIMEOUT_MS', '5'],
    ['UPSTREAM_TIMEOUT_MS', '1.5'],
    ['PII_KEYS', 'no-colon'],
    ['PII_HMAC_KEY', 'short'],
    ['PRICE_PER_CHARGED_CALL', '-1'],
    ['PRICE_PER_CHARGED_CALL', '0.5'],
    ['CURRENCY', 'yuan'],
    ['LOG_LEVEL', 'loud'],
    ['DATABASE_POOL_SIZE', '0'],
  ])('names %s when it is %j', (name, value) => {
    const err = errorFor({ [name]: value });
    expect(err.variable).toBe(name);
    expect(err.message.startsWith(`${name} `)).toBe(true);
    expect(err.message).not.toContain('\n');
  });

  it('never echoes a secret value in the error', () => {
    const err = errorFor({ PII_HMAC_KEY: 'secret-ish' });
    expect(err.message).not.toContain('secret-ish');
  });

  it('requires PII keys of the right size when building the config', () => {
    const env = readEnvironment({ DATABASE_URL: 'postgresql://h/db' });
    expect(() => buildAppConfig(env, 'postgresql://h/db', false)).toThrow(/PII_KEYS is required/);
    const short = readEnvironment({ PII_KEYS: `k1:${randomBytes(16).toString('base64')}`, PII_HMAC_KEY: key() });
    expect(() => buildAppConfig(short, 'postgresql://h/db', false)).toThrow(
      /PII_KEYS must hold base64 keys of 32 bytes/,
    );
    const noAuditKey = readEnvironment({ PII_KEYS: `k1:${key()}`, PII_HMAC_KEY: key() });
    expect(() => buildAppConfig(noAuditKey, 'postgresql://h/db', false)).toThrow(/AUDIT_SIGNING_KEY is required/);
    const good = readEnvironment({
      PII_KEYS: `old:${key()},new:${key()}`,
      PII_HMAC_KEY: key(),
      AUDIT_SIGNING_KEY: key(),
    });
    const config = buildAppConfig(good, 'postgresql://h/db', false);
    expect(config.pii.keys.map((k) => k.id)).toEqual(['old', 'new']);
    expect(config.pii.hmacKey.length).toBe(32);
    expect(config.audit.signingKeySeed.length).toBe(32);
  });

  it('refuses a key ring that repeats a key id', () => {
    expect(() => parsePiiKeys(`a:${key()},a:${key()}`)).toThrow(/twice/);
  });
});
