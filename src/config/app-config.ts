import { hkdfSync } from 'node:crypto';
import path from 'node:path';
import { ConfigError, EnvironmentVariables, UpstreamMode, upstreamModeOf } from './environment';

export interface PiiKey {
  id: string;
  key: Buffer;
}

/**
 * idgate's resolved configuration, injected by type. Built once at start from the
 * validated environment (and, in embedded mode, the generated local secrets).
 */
export abstract class AppConfig {
  abstract readonly port: number;
  abstract readonly databaseUrl: string;
  abstract readonly databasePoolSize: number;
  /** True when idgate runs its own embedded PostgreSQL. */
  abstract readonly embeddedDatabase: boolean;
  abstract readonly dataDir: string;
  abstract readonly upstream: {
    readonly baseUrl: string;
    /**
     * `vendor`: calls go to `baseUrl` with `token`. `sandbox`: the built-in sandbox answers
     * (`npm start` runs it in-process), results are simulated and nothing is charged.
     */
    readonly mode: UpstreamMode;
    /** The vendor's bearer token: set in `vendor` mode, never in `sandbox` mode. */
    readonly token?: string;
    readonly timeoutMs: number;
    /** Attempts per verification, first included; retries happen only where nothing can have been charged. */
    readonly maxAttempts: number;
    readonly retryBaseDelayMs: number;
    readonly retryMaxDelayMs: number;
    /** Consecutive upstream failures that open the circuit breaker. */
    readonly breakerThreshold: number;
    /** How long the open circuit refuses calls before letting a trial call through. */
    readonly breakerCooldownMs: number;
    /** Idle keep-alive sockets are retired after this long (0: no reuse). */
    readonly keepAliveIdleMs: number;
  };
  /** Admission control for the database work a submission does before the paid call. */
  abstract readonly admission: {
    readonly concurrency: number;
    readonly queue: number;
    readonly queueWaitMs: number;
  };
  /** After the upstream answered: how long the request waits for the answer to be recorded (then 202). */
  abstract readonly settleWaitMs: number;
  /** On shutdown, how long answers still being recorded may hold the pool open. */
  abstract readonly shutdownDrainMs: number;
  /**
   * Whether this process runs the periodic workers (audit sealer and signer, sweeper,
   * retention, witness delivery). The server does; a CLI command does not: it does its
   * one job and leaves, and never competes with the server it shares a database with.
   */
  abstract readonly backgroundWorkers: boolean;
  abstract readonly sandbox: {
    readonly port: number;
    readonly token?: string;
    /** Fault rates for the sandbox, e.g. "latency=50,http500=0.05" (see src/upstream/sandbox/faults.ts). */
    readonly faults?: string;
  };
  abstract readonly pii: {
    /** Oldest first; the last key encrypts new values. */
    readonly keys: readonly PiiKey[];
    readonly hmacKey: Buffer;
    /** Personal data older than this many days is purged (hashes, codes and charges stay); unset: kept. */
    readonly retentionDays?: number;
  };
  abstract readonly billing: { readonly pricePerChargedCall: number; readonly currency: string };
  abstract readonly logLevel: string;
  abstract readonly bodyLimitBytes: number;
  /** Requests per minute per API key; shared through Redis when `redisUrl` is set, else per process. */
  abstract readonly rateLimit: { readonly perMinute: number; readonly redisUrl?: string };
  /** Where and how HTTP is served. */
  abstract readonly http: {
    /** Listen address. */
    readonly host: string;
    /** Proxies whose X-Forwarded-For is believed (addresses or CIDR ranges, or 'loopback'); empty: none. */
    readonly trustProxy: readonly string[];
    /** Bearer token GET /metrics requires; unset: open. */
    readonly metricsToken?: string;
  };
  /** Abuse limits. */
  abstract readonly abuse: {
    /** Exact-match searches by ID number or name per API key and hour. */
    readonly piiSearchesPerHour: number;
    /** 401/403 answers per minute per client address and per key before 429. */
    readonly authFailuresPerMinute: number;
  };
  /** Ports an image_url may name. */
  abstract readonly imageUrlPorts: readonly number[];
  abstract readonly audit: {
    /** 32-byte Ed25519 seed of the checkpoint signing key. */
    readonly signingKeySeed: Buffer;
    /** Key of the MAC every event idgate writes carries (the database never sees it). */
    readonly macKey: Buffer;
    /** Append-only folder the witness records go to. */
    readonly witnessDir: string;
    /** Optional HTTP witness. */
    readonly witnessUrl?: string;
    /** How much earlier than the sealed tail an event may be sealed before it is reported. */
    readonly orderToleranceMs: number;
    /** Sealing held up this long is reported (alert, log, metric). */
    readonly sealStallMs: number;
    /** How often the sealer chains new events. */
    readonly sealIntervalMs: number;
    /** How often the chain head is signed when it moved. */
    readonly checkpointIntervalMs: number;
  };
}

function decodeKey(variable: string, text: string, minBytes: number, exactBytes?: number): Buffer {
  const key = Buffer.from(text.replaceAll('-', '+').replaceAll('_', '/'), 'base64');
  if (exactBytes !== undefined ? key.length !== exactBytes : key.length < minBytes) {
    throw new ConfigError(variable, `must hold base64 keys of ${exactBytes ?? `at least ${minBytes}`} bytes`);
  }
  return key;
}

export function parsePiiKeys(text: string): PiiKey[] {
  const seen = new Set<string>();
  return text.split(',').map((entry) => {
    const [id, material] = entry.split(':');
    if (seen.has(id)) throw new ConfigError('PII_KEYS', `has the key id "${id}" twice`);
    seen.add(id);
    return { id, key: decodeKey('PII_KEYS', material, 32, 32) };
  });
}

function parsePorts(text: string): number[] {
  const ports = text.split(',').map(Number);
  if (ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    throw new ConfigError('IMAGE_URL_PORTS', 'must hold port numbers between 1 and 65535');
  }
  return ports;
}

/**
 * AUDIT_MAC_KEY, or a key derived from AUDIT_SIGNING_KEY (HKDF, its own label) so that
 * existing deployments need no new secret; the database sees neither.
 */
function auditMacKey(env: EnvironmentVariables): Buffer {
  if (env.AUDIT_MAC_KEY) return decodeKey('AUDIT_MAC_KEY', env.AUDIT_MAC_KEY, 32);
  if (!env.AUDIT_SIGNING_KEY) return missing('AUDIT_SIGNING_KEY');
  const seed = decodeKey('AUDIT_SIGNING_KEY', env.AUDIT_SIGNING_KEY, 32, 32);
  return Buffer.from(hkdfSync('sha256', seed, Buffer.alloc(0), 'idgate audit event mac v1', 32));
}

function missing(variable: string): never {
  throw new ConfigError(variable, 'is required when DATABASE_URL is set');
}

/**
 * Admission defaults: as many submissions doing pre-call database work as the pool has
 * connections, and a queue of ADMISSION_QUEUE_PER_CONNECTION per connection (see README).
 */
export const ADMISSION_QUEUE_PER_CONNECTION = 64;

export function admissionDefaults(env: EnvironmentVariables): AppConfig['admission'] {
  const concurrency = env.ADMISSION_CONCURRENCY ?? env.DATABASE_POOL_SIZE;
  return {
    concurrency,
    queue: env.ADMISSION_QUEUE ?? concurrency * ADMISSION_QUEUE_PER_CONNECTION,
    queueWaitMs: env.ADMISSION_QUEUE_WAIT_MS,
  };
}

/** Combines the validated environment with the resolved database URL into AppConfig. */
export function buildAppConfig(env: EnvironmentVariables, databaseUrl: string, embedded: boolean): AppConfig {
  if (!env.PII_KEYS) throw new ConfigError('PII_KEYS', 'is required when DATABASE_URL is set');
  if (!env.PII_HMAC_KEY) throw new ConfigError('PII_HMAC_KEY', 'is required when DATABASE_URL is set');
  return {
    port: env.PORT,
    databaseUrl,
    databasePoolSize: env.DATABASE_POOL_SIZE,
    embeddedDatabase: embedded,
    dataDir: env.IDGATE_DATA_DIR,
    upstream: {
      baseUrl: env.UPSTREAM_BASE_URL.replace(/\/+$/, ''),
      // Not the server's refusal (main.ts applies it before anything starts): the CLI builds this too.
      mode: upstreamModeOf(env, { server: false }),
      token: env.UPSTREAM_TOKEN,
      timeoutMs: env.UPSTREAM_TIMEOUT_MS,
      maxAttempts: env.UPSTREAM_MAX_ATTEMPTS,
      retryBaseDelayMs: env.UPSTREAM_RETRY_BASE_MS,
      retryMaxDelayMs: env.UPSTREAM_RETRY_MAX_MS,
      breakerThreshold: env.UPSTREAM_BREAKER_THRESHOLD,
      breakerCooldownMs: env.UPSTREAM_BREAKER_COOLDOWN_MS,
      keepAliveIdleMs: env.UPSTREAM_KEEPALIVE_IDLE_MS,
    },
    admission: admissionDefaults(env),
    settleWaitMs: env.SETTLE_WAIT_MS,
    shutdownDrainMs: env.SHUTDOWN_DRAIN_MS,
    backgroundWorkers: true,
    sandbox: { port: env.SANDBOX_PORT, token: env.SANDBOX_TOKEN, faults: env.SANDBOX_FAULTS },
    pii: {
      keys: parsePiiKeys(env.PII_KEYS),
      hmacKey: decodeKey('PII_HMAC_KEY', env.PII_HMAC_KEY, 32),
      retentionDays: env.PII_RETENTION_DAYS,
    },
    billing: { pricePerChargedCall: env.PRICE_PER_CHARGED_CALL, currency: env.CURRENCY },
    logLevel: env.LOG_LEVEL,
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    rateLimit: { perMinute: env.RATE_LIMIT_PER_MINUTE, redisUrl: env.REDIS_URL },
    http: {
      host: env.HOST ?? (embedded ? '127.0.0.1' : '0.0.0.0'),
      trustProxy: env.TRUST_PROXY ? env.TRUST_PROXY.split(',').map((p) => p.trim()) : [],
      metricsToken: env.METRICS_TOKEN,
    },
    abuse: { piiSearchesPerHour: env.PII_SEARCH_PER_HOUR, authFailuresPerMinute: env.AUTH_FAILURES_PER_MINUTE },
    imageUrlPorts: parsePorts(env.IMAGE_URL_PORTS),
    audit: {
      signingKeySeed: env.AUDIT_SIGNING_KEY
        ? decodeKey('AUDIT_SIGNING_KEY', env.AUDIT_SIGNING_KEY, 32, 32)
        : missing('AUDIT_SIGNING_KEY'),
      sealIntervalMs: env.AUDIT_SEAL_INTERVAL_MS,
      checkpointIntervalMs: env.AUDIT_CHECKPOINT_INTERVAL_MS,
      macKey: auditMacKey(env),
      witnessDir: path.resolve(env.AUDIT_WITNESS_DIR ?? path.join(env.IDGATE_DATA_DIR, 'witness')),
      witnessUrl: env.AUDIT_WITNESS_URL,
      orderToleranceMs: env.AUDIT_ORDER_TOLERANCE_MS,
      sealStallMs: env.AUDIT_SEAL_STALL_MS,
    },
  };
}
