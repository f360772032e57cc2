import { Transform, plainToInstance } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, IsUrl, Matches, Max, Min, MinLength, validateSync } from 'class-validator';

const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;
const emptyToUndefined = ({ value }: { value: unknown }) =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** `vendor`: the paid vendor API (UPSTREAM_TOKEN). `sandbox`: the built-in sandbox, results simulated. */
export const UPSTREAM_MODES = ['vendor', 'sandbox'] as const;
export type UpstreamMode = (typeof UPSTREAM_MODES)[number];

/** The process environment idgate reads (SPEC §2), validated at start. */
export class EnvironmentVariables {
  @Transform(toInt)
  @IsInt({ message: 'must be an integer port number' })
  @Min(0, { message: 'must be between 0 and 65535' })
  @Max(65535, { message: 'must be between 0 and 65535' })
  PORT: number = 3000;

  @Transform(emptyToUndefined)
  @IsOptional()
  @Matches(/^postgres(ql)?:\/\/[^\s]+$/, { message: 'must be a postgresql:// URL' })
  DATABASE_URL?: string;

  @Transform(toInt)
  @IsInt({ message: 'must be an integer' })
  @Min(1, { message: 'must be between 1 and 200' })
  @Max(200, { message: 'must be between 1 and 200' })
  DATABASE_POOL_SIZE: number = 10;

  @IsUrl(
    { protocols: ['http', 'https'], require_tld: false, require_protocol: true },
    { message: 'must be an http(s) URL' },
  )
  UPSTREAM_BASE_URL: string = 'https://api.acedata.cloud';

  @Transform(emptyToUndefined)
  @IsOptional()
  @IsString()
  @Matches(/^\S+$/, { message: 'must not contain spaces' })
  UPSTREAM_TOKEN?: string;

  /** Which upstream answers; unset: derived (see upstreamModeOf), but never silently sandbox with DATABASE_URL. */
  @Transform(emptyToUndefined)
  @IsOptional()
  @IsIn(UPSTREAM_MODES, { message: `must be one of ${UPSTREAM_MODES.join(', ')}` })
  UPSTREAM_MODE?: UpstreamMode;

  @Transform(toInt)
  @IsInt({ message: 'must be an integer number of milliseconds' })
  @Min(100, { message: 'must be between 100 and 120000' })
  @Max(120000, { message: 'must be between 100 and 120000' })
  UPSTREAM_TIMEOUT_MS: number = 10000;

  @Transform(toInt)
  @IsInt({ message: 'must be an integer' })
  @Min(1, { message: 'must be between 1 and 10' })
  @Max(10, { message: 'must be between 1 and 10' })
  UPSTREAM_MAX_ATTEMPTS: number = 3;

  @Transform(toInt)
  @IsInt({ message: 'must be an integer number of milliseconds' })
  @Min(1, { message: 'must be between 1 and 60000' })
  @Max(60000, { message: 'must be between 1 and 60000' })
  UPSTREAM_RETRY_BASE_MS: number = 200;

  @Transform(toInt)
  @IsInt({ message: 'must be an integer number of milliseconds' })
  @Min(1, { message: 'must be between 1 and 300000' })
  @Max(300000, { message: 'must be between 1 and 300000' })
  UPSTREAM_RETRY_MAX_MS: number = 2000;

  @Transform(toInt)
  @IsInt({ message: 'must be an integer' })
  @Min(1, { message: 'must be between 1 and 1000' })
  @Max(1000, { message: 'must be between 1 and 1000' })
  UPSTREAM_BREAKER_THRESHOLD: number = 5;

  @Transform(toInt)
  @IsInt({ message: 'must be an integer number of milliseconds' })
  @Min(100, { message: 'must be between 100 and 3600000' })
  @Max(3600000, { message: 'must be between 100 and 3600000' })
  UPSTREAM_BREAKER_COOLDOWN_MS: number = 30000;

  /** Idle keep-alive sockets to the upstream are closed after this long, before the upstream would close them. */
  @Transform(toInt)
  @IsInt({ message: 'must be an integer number of milliseconds' })
  @Min(0, { message: 'must be between 0 and 600000' })
  @Max(600000, { message: 'must be between 0 and 600000' })
  UPSTREAM_KEEPALIVE_IDLE_MS: number = 3000;

  /** Submissions doing their pre-call database work at once (default: DATABASE_POOL_SIZE). */
  @Transform(emptyToUndefined)
  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'must be an integer' })
  @Min(1, { message: 'must be between 1 and 1000' })
  @Max(1000, { message: 'must be between 1 and 1000' })
  ADMISSION_CONCURRENCY?: number;

  /** Submissions that may wait for admission beyond ADMISSION_CONCURRENCY (default: derived, see README). */
  @Transform(emptyToUndefined)
  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'must be an integer' })
  @Min(0, { message: 'must be between 0 and 100000' })
  @Max(100000, { message: 'must be between 0 and 100000' })
  ADMISSION_QUEUE?: number;

  @Transform(toInt)
  @IsInt({ message: 'must be an integer number of milliseconds' })
  @Min(0, { message: 'must be between 0 and 60000' })
  @Max(60000, { message: 'must be between 0 and 60000' })
  ADMISSION_QUEUE_WAIT_MS: number = 2000;

  /** How long a request waits for its verification to be recorded after the upstream answered (then 202). */
  @Transform(toInt)
  @IsInt({ message: 'must be an integer number of milliseconds' })
  @Min(0, { message: 'must be between 0 and 60000' })
  @Max(60000, { message: 'must be between 0 and 60000' })
  SETTLE_WAIT_MS: number = 5000;

  /** On SIGTERM, how long idgate keeps trying to record answers already received before the pool closes. */
  @Transform(toInt)
  @IsInt({ message: 'must be an integer number of milliseconds' })
  @Min(0, { message: 'must be between 0 and 600000' })
  @Max(600000, { message: 'must be between 0 and 600000' })
  SHUTDOWN_DRAIN_MS: number = 25000;

  @Transform(emptyToUndefined)
  @IsOptional()
  @Matches(/^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/=_-]+(,[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/=_-]+)*$/, {
    message: 'must be a comma-separated list of keyId:base64key entries',
  })
  PII_KEYS?: string;

  @Transform(emptyToUndefined)
  @IsOptional()
  @MinLength(40, { message: 'must be a base64 key of at least 32 bytes' })
  PII_HMAC_KEY?: string;

  @Transform(emptyToUndefined)
  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'must be a whole number of days' })
  @Min(1, { message: 'must be at least 1' })
  @Max(36500, { message: 'must be at most 36500' })
  PII_RETENTION_DAYS?: number;

  @Transform(toInt)
  @IsInt({ message: 'must be a whole number of minor currency units' })
  @Min(0, { message: 'must not be negative' })
  @Max(1_000_000_00, { message: 'is implausibly large' })
  PRICE_PER_CHARGED_CALL: number = 50;

  @Matches(/^[A-Z]{3}$/, { message: 'must be an ISO 4217 code such as CNY' })
  CURRENCY: string = 'CNY';

  @IsIn(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(', ')}` })
  LOG_LEVEL: (typeof LOG_LEVELS)[number] = 'info';

  @Transform(toInt)
  @IsInt({ message: 'must be an integer port number' })
  @Min(0, { message: 'must be between 0 and 65535' })
  @Max(65535, { message: 'must be between 0 and 65535' })
  SANDBOX_PORT: number = 3100;

  @Transform(emptyToUndefined)
  @IsOptional()
  @IsString()
  SANDBOX_TOKEN?: string;

  @Transform(emptyToUndefined)
  @IsOptional()
  @Matches(/^\s*[a-z_0-9]+(=[0-9.]+)?\s*(,\s*[a-z_0-9]+(=[0-9.]+)?\s*)*$/, {
    message: 'must be a comma-separated list such as "latency=50,http500=0.05"',
  })
  SANDBOX_FAULTS?: string;

  @IsString()
  @MinLength(1)
  IDGATE_DATA_DIR: string = '.data';

  @Transform(emptyToUndefined)
  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'must be an integer port number' })
  @Min(1, { message: 'must be between 1 and 65535' })
  @Max(65535, { message: 'must be between 1 and 65535' })
  EMBEDDED_PG_PORT?: number;

  @Transform(toInt)
  @IsInt({ message: 'must be a whole number of requests' })
  @Min(1, { message: 'must be between 1 and 1000000' })
  @Max(1_000_000, { message: 'must be between 1 and 1000000' })
  RATE_LIMIT_PER_MINUTE: number = 6000;

  @Transform(emptyToUndefined)
  @IsOptional()
  @Matches(/^rediss?:\/\/\S+$/, { message: 'must be a redis:// or rediss:// URL' })
  REDIS_URL?: string;

  @Transform(toInt)
  @IsInt({ message: 'must be an integer number of bytes' })
  @Min(1024, { message: 'must be between 1024 and 16777216' })
  @Max(16 * 1024 * 1024, { message: 'must be between 1024 and 16777216' })
  BODY_LIMIT_BYTES: number = 5 * 1024 * 1024;

  /** Address to listen on. Default: 127.0.0.1 in embedded mode (a developer machine), 0.0.0.0 with DATABASE_URL. */
  @Transform(emptyToUndefined)
  @IsOptional()
  @Matches(/^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+|localhost)$/, { message: 'must be an IP address or localhost' })
  HOST?: string;

  /** Exact-match searches by ID number or name one API key may make per hour (then 429 and a security alert). */
  @Transform(toInt)
  @IsInt({ message: 'must be a whole number of searches' })
  @Min(1, { message: 'must be between 1 and 1000000' })
  @Max(1_000_000, { message: 'must be between 1 and 1000000' })
  PII_SEARCH_PER_HOUR: number = 100;

  /** Failed (401) or refused (403) requests allowed per minute from one client address, and per key. */
  @Transform(toInt)
  @IsInt({ message: 'must be a whole number of requests' })
  @Min(1, { message: 'must be between 1 and 1000000' })
  @Max(1_000_000, { message: 'must be between 1 and 1000000' })
  AUTH_FAILURES_PER_MINUTE: number = 30;

  /**
   * Proxies whose X-Forwarded-For is believed: unset (default) trusts none; a comma-separated
   * list of addresses or CIDR ranges (e.g. "10.0.0.0/8,127.0.0.1"), or "loopback".
   */
  @Transform(emptyToUndefined)
  @IsOptional()
  @Matches(/^(loopback|[0-9a-fA-F.:/]+(,\s*[0-9a-fA-F.:/]+)*)$/, {
    message: 'must be "loopback" or a comma-separated list of addresses or CIDR ranges',
  })
  TRUST_PROXY?: string;

  /** When set, GET /metrics requires "Authorization: Bearer <METRICS_TOKEN>". */
  @Transform(emptyToUndefined)
  @IsOptional()
  @MinLength(16, { message: 'must be at least 16 characters' })
  @Matches(/^\S+$/, { message: 'must not contain spaces' })
  METRICS_TOKEN?: string;

  /** Ports image_url may name (default 443 only), comma-separated. */
  @Matches(/^\d{1,5}(,\d{1,5})*$/, { message: 'must be a comma-separated list of port numbers' })
  IMAGE_URL_PORTS: string = '443';

  /** Ed25519 private key that signs audit checkpoints: base64 of the 32-byte seed. Generated in embedded mode. */
  @Transform(emptyToUndefined)
  @IsOptional()
  @Matches(/^[A-Za-z0-9+/_-]{43}=?$/, { message: 'must be the base64 of a 32-byte Ed25519 seed' })
  AUDIT_SIGNING_KEY?: string;

  /**
   * The role that owns the database objects and runs migrations. When set, DATABASE_URL is the
   * runtime role (it must own nothing); when unset, DATABASE_URL is the owner and idgate creates
   * the runtime role it then uses.
   */
  @Transform(emptyToUndefined)
  @IsOptional()
  @Matches(/^postgres(ql)?:\/\/[^\s]+$/, { message: 'must be a postgresql:// URL' })
  DATABASE_OWNER_URL?: string;

  /** Folder the audit checkpoints and sealed heads are also written to (append-only). Default: <IDGATE_DATA_DIR>/witness. */
  @Transform(emptyToUndefined)
  @IsOptional()
  @IsString()
  AUDIT_WITNESS_DIR?: string;

  /** An HTTP witness that receives every checkpoint and sealed head (POST), and lists them (GET). */
  @Transform(emptyToUndefined)
  @IsOptional()
  @IsUrl(
    { protocols: ['http', 'https'], require_tld: false, require_protocol: true },
    { message: 'must be an http(s) URL' },
  )
  AUDIT_WITNESS_URL?: string;

  /** Base64 key (≥ 32 bytes) of the MAC on every audit event idgate writes. Default: derived from AUDIT_SIGNING_KEY. */
  @Transform(emptyToUndefined)
  @IsOptional()
  @MinLength(40, { message: 'must be a base64 key of at least 32 bytes' })
  AUDIT_MAC_KEY?: string;

  /** An event sealed this much earlier than the chain's tail is reported (long transactions must end within it). */
  @Transform(toInt)
  @IsInt({ message: 'must be an integer number of milliseconds' })
  @Min(1000, { message: 'must be between 1000 and 86400000' })
  @Max(86_400_000, { message: 'must be between 1000 and 86400000' })
  AUDIT_ORDER_TOLERANCE_MS: number = 300_000;

  /** Sealing held up this long (its lock held, or an open transaction under unsealed events) raises audit_sealing_stalled. */
  @Transform(toInt)
  @IsInt({ message: 'must be an integer number of milliseconds' })
  @Min(1000, { message: 'must be between 1000 and 3600000' })
  @Max(3_600_000, { message: 'must be between 1000 and 3600000' })
  AUDIT_SEAL_STALL_MS: number = 60_000;

  @Transform(toInt)
  @IsInt({ message: 'must be an integer number of milliseconds' })
  @Min(10, { message: 'must be between 10 and 60000' })
  @Max(60000, { message: 'must be between 10 and 60000' })
  AUDIT_SEAL_INTERVAL_MS: number = 200;

  @Transform(toInt)
  @IsInt({ message: 'must be an integer number of milliseconds' })
  @Min(1000, { message: 'must be between 1000 and 86400000' })
  @Max(86_400_000, { message: 'must be between 1000 and 86400000' })
  AUDIT_CHECKPOINT_INTERVAL_MS: number = 60000;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    super(`${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

/** Parses and validates the environment; throws ConfigError naming the first bad variable. Never echoes values. */
export function readEnvironment(env: NodeJS.ProcessEnv): EnvironmentVariables {
  // Class fields are defined even when optional (useDefineForClassFields), so this lists every name.
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(new EnvironmentVariables())) if (env[key] !== undefined) raw[key] = env[key];
  const parsed = plainToInstance(EnvironmentVariables, raw);
  const errors = validateSync(parsed, { forbidUnknownValues: false });
  if (errors.length > 0) {
    const first = errors[0];
    const message = Object.values(first.constraints ?? { invalid: 'is invalid' })[0];
    throw new ConfigError(first.property, message);
  }
  return parsed;
}

/**
 * Which upstream answers, from UPSTREAM_MODE and UPSTREAM_TOKEN. Simulated results must
 * never pass for real ones, so nothing contradictory is guessed at:
 * - `vendor` needs a token; `sandbox` refuses one (the operator meant one of the two, and
 *   either guess is wrong: a deployment silently simulated, or real charges when a trial
 *   was asked for);
 * - unset, a token means `vendor`; no token means `sandbox` on a developer's machine
 *   (embedded PostgreSQL: `npm start` on a fresh checkout), but with DATABASE_URL (what a
 *   deployment looks like) the server refuses to start: sandbox must be asked for there.
 * `server: false` (the CLI, which calls no upstream) is told the mode without that refusal:
 * it only decides the visible prefix of the keys it makes.
 */
export function upstreamModeOf(env: EnvironmentVariables, { server }: { server: boolean }): UpstreamMode {
  const hasToken = env.UPSTREAM_TOKEN !== undefined;
  if (env.UPSTREAM_MODE === 'vendor') {
    if (!hasToken) throw new ConfigError('UPSTREAM_TOKEN', 'is required with UPSTREAM_MODE=vendor');
    return 'vendor';
  }
  if (env.UPSTREAM_MODE === 'sandbox') {
    if (hasToken) {
      throw new ConfigError(
        'UPSTREAM_MODE',
        'is sandbox but UPSTREAM_TOKEN is set: unset UPSTREAM_TOKEN for simulated results, or set UPSTREAM_MODE=vendor',
      );
    }
    return 'sandbox';
  }
  if (hasToken) return 'vendor';
  if (server && env.DATABASE_URL !== undefined) {
    throw new ConfigError(
      'UPSTREAM_TOKEN',
      'is required with DATABASE_URL unless UPSTREAM_MODE=sandbox is set (results are then simulated and nothing is charged)',
    );
  }
  return 'sandbox';
}
