import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { ConfigError, EnvironmentVariables, readEnvironment, upstreamModeOf } from '../src/config/environment';
import { SandboxHandle, startSandbox } from '../src/upstream/sandbox/sandbox-server';
import { createTestDatabase, databaseEnv, TestDatabase } from './support/databases';
import { ROOT, spawnNode } from './support/processes';

/*
 * Issue 14, "deployment that cannot lie". No Docker engine runs here, so docker-compose.yml,
 * the Dockerfile and the README's "## Deployment" section are checked statically, against
 * each other and against idgate's own configuration rules; the rules themselves are checked
 * on the compiled server (dist/main.js) with DATABASE_URL, as a deployment runs it.
 */

// Spawning compiled processes is slow on a loaded 2-core machine.
jest.setTimeout(180_000);

// ---------------------------------------------------------------------------------------------
// A reader for the YAML subset docker-compose.yml uses (no YAML parser is a dependency): block
// mappings and sequences by indentation, plain and quoted scalars, JSON-style flow sequences,
// comments. Anything else (anchors, multi-line scalars, flow mappings) is refused, so that a
// construct this reader does not know fails the test instead of being misread.
// ---------------------------------------------------------------------------------------------

type Yaml = string | null | Yaml[] | { [key: string]: Yaml };

interface Line {
  number: number;
  indent: number;
  text: string;
}

function readYamlSubset(source: string): Yaml {
  const lines: Line[] = [];
  source.split('\n').forEach((raw, i) => {
    const text = stripComment(raw).trimEnd();
    if (text.trim() === '') return;
    if (/\t/.test(raw.slice(0, raw.length - raw.trimStart().length))) throw new Error(`line ${i + 1}: tab indentation`);
    lines.push({ number: i + 1, indent: text.length - text.trimStart().length, text: text.trimStart() });
  });
  let at = 0;

  function block(indent: number): Yaml {
    const first = lines[at];
    if (first.text === '-' || first.text.startsWith('- ')) return sequence(indent);
    return mapping(indent);
  }

  function sequence(indent: number): Yaml[] {
    const items: Yaml[] = [];
    while (at < lines.length && lines[at].indent === indent && lines[at].text.startsWith('- ')) {
      const line = lines[at++];
      const item = line.text.slice(2).trim();
      if (/^[^'"[\s][^:]*:(\s|$)/.test(item))
        throw new Error(`line ${line.number}: mappings in sequences are not read`);
      items.push(scalar(item, line));
    }
    return items;
  }

  function mapping(indent: number): { [key: string]: Yaml } {
    const out: { [key: string]: Yaml } = {};
    while (at < lines.length && lines[at].indent === indent) {
      const line = lines[at++];
      const m = /^([A-Za-z0-9_.-]+):(?:\s+(.*))?$/.exec(line.text);
      if (!m) throw new Error(`line ${line.number}: not a "key: value" line: ${line.text}`);
      const [, key, rest] = m;
      if (key in out) throw new Error(`line ${line.number}: ${key} twice`);
      if (rest !== undefined && rest !== '') out[key] = scalar(rest, line);
      else if (at < lines.length && lines[at].indent > indent) out[key] = block(lines[at].indent);
      else if (at < lines.length && lines[at].indent === indent && lines[at].text.startsWith('- ')) {
        out[key] = sequence(indent); // a sequence may sit at its key's indentation
      } else out[key] = null;
    }
    if (at < lines.length && lines[at].indent > indent) {
      throw new Error(`line ${lines[at].number}: unexpected indentation`);
    }
    return out;
  }

  function scalar(text: string, line: Line): Yaml {
    if (/^[&*!|>{]/.test(text)) throw new Error(`line ${line.number}: unsupported YAML: ${text}`);
    if (text.startsWith('[')) {
      // Flow sequences here are JSON arrays of double-quoted strings.
      const parsed: unknown = JSON.parse(text);
      if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === 'string')) {
        throw new Error(`line ${line.number}: flow sequence of strings expected`);
      }
      return parsed as string[];
    }
    if (text.startsWith('"')) return JSON.parse(text) as string;
    if (text.startsWith("'")) {
      if (!text.endsWith("'")) throw new Error(`line ${line.number}: unterminated quote`);
      return text.slice(1, -1).replaceAll("''", "'");
    }
    if (/:\s/.test(text)) throw new Error(`line ${line.number}: ": " in a plain scalar`);
    return text;
  }

  const root = lines.length === 0 ? null : block(0);
  if (at < lines.length) throw new Error(`line ${lines[at].number}: not read`);
  return root;
}

/** Drops a `#` comment: at the start of a line or after a space, outside quotes. */
function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i);
  }
  return line;
}

/**
 * Docker Compose's interpolation of one value: `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?error}`, `${VAR?error}`, `$VAR` and `$$`. Throws the error compose would print.
 */
function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (match, braced?: string, colon?: string, op?: string, arg?: string, bare?: string) => {
      if (match === '$$') return '$';
      const name = (braced ?? bare)!;
      const v = env[name];
      const missing = v === undefined || (colon === ':' && v === '');
      if (op === '-') return missing ? (arg ?? '') : v!;
      if (op === '?' && missing) throw new Error(`required variable ${name} is missing a value: ${arg}`);
      return v ?? '';
    },
  );
}

/** The variable references in a compose value, with how each is given. */
function references(value: string): Array<{ name: string; form: 'required' | 'default' | 'plain'; arg: string }> {
  return [...value.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g)].map((m) => ({
    name: m[1],
    form: m[3] === '?' ? 'required' : m[3] === '-' ? 'default' : 'plain',
    arg: m[4] ?? '',
  }));
}

// ---------------------------------------------------------------------------------------------

const compose = readYamlSubset(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as {
  services: Record<
    string,
    {
      image?: string;
      build?: string;
      environment?: Record<string, string>;
      healthcheck?: { test?: string[] | string };
      depends_on?: Record<string, { condition?: string }>;
      volumes?: string[];
    }
  >;
  volumes?: Record<string, Yaml>;
};
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** Every variable idgate reads (the fields of EnvironmentVariables). */
const IDGATE_VARIABLES = new Set(Object.keys(new EnvironmentVariables()));
/** Names that say a value is a secret: none of them may have a default someone could deploy with. */
const SECRET_NAME = /PASSWORD|TOKEN|SECRET|_KEY$|_KEYS$/;

/** The final stage's `ENV` settings (what the running container has before compose adds its own). */
function dockerfileEnv(text: string): Record<string, string> {
  const stages = text.split(/^FROM\s/m);
  const env: Record<string, string> = {};
  for (const m of stages[stages.length - 1].matchAll(/^ENV\s+(.+)$/gm)) {
    for (const pair of m[1].matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g)) {
      env[pair[1]] = pair[2].replace(/^"|"$/g, '');
    }
  }
  return env;
}

/** The README's "## Deployment" section, up to the next level-2 heading. */
function deploymentSection(text: string): string {
  const start = text.search(/^## Deployment\s*$/m);
  if (start < 0) return '';
  const rest = text.slice(start + 1);
  const end = rest.search(/^## /m);
  return end < 0 ? rest : rest.slice(0, end);
}

/** Variable-like names in a text: UPPER_SNAKE names, and single words that are idgate variables (PORT, HOST). */
function namedVariables(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g)) names.add(m[0]);
  for (const m of text.matchAll(/\b[A-Z]{3,}\b/g)) if (IDGATE_VARIABLES.has(m[0])) names.add(m[0]);
  return names;
}

/** Secrets with a default or a literal value, and URLs carrying a literal password, in compose services. */
function secretProblems(services: Record<string, { environment?: Record<string, string> }>): string[] {
  const problems: string[] = [];
  for (const [service, s] of Object.entries(services)) {
    for (const [name, raw] of Object.entries(s.environment ?? {})) {
      const value = String(raw);
      if (SECRET_NAME.test(name)) {
        // The value is the same-named variable, required or empty when not given: nothing to deploy by accident.
        const ref = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?\?[^}]*|:?-)?\}$/.exec(value);
        if (ref?.[1] !== name) problems.push(`${service}.${name} has a default or a literal value`);
      }
      // A password inside a URL: only a required reference, never a word.
      const refs: string[] = [];
      const masked = value.replace(/\$\{[^}]*\}/g, (r) => `\uE000${refs.push(r) - 1}\uE000`);
      const password = /^[a-z][a-z0-9+.-]*:\/\/[^/@:]*:([^@/]*)@/i.exec(masked)?.[1];
      if (password !== undefined) {
        const ref = /^\uE000(\d+)\uE000$/.exec(password);
        if (!ref || !/^\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}$/.test(refs[Number(ref[1])])) {
          problems.push(`${service}.${name}: a URL whose password is not a required variable`);
        }
      }
    }
  }
  return problems;
}

interface Deployment {
  /** What compose passes to idgate (its `environment:`), uninterpolated. */
  composeEnv: Record<string, string>;
  /** What the image sets (Dockerfile ENV). */
  imageEnv: Record<string, string>;
  /** Variables compose reads from the operator's environment, anywhere in the file. */
  inputs: Set<string>;
}

function deploymentOf(): Deployment {
  const inputs = new Set<string>();
  for (const service of Object.values(compose.services)) {
    for (const value of Object.values(service.environment ?? {})) {
      for (const r of references(String(value))) inputs.add(r.name);
    }
  }
  return { composeEnv: compose.services.idgate?.environment ?? {}, imageEnv: dockerfileEnv(dockerfile), inputs };
}

/**
 * The README section and the deployment name the same variables: every idgate variable that
 * compose or the image sets is named in the section, and every variable the section names is
 * one that compose or the image sets, or one compose reads from the operator. Returns what differs.
 */
function readmeMismatches(section: string, d: Deployment): { unnamed: string[]; unset: string[] } {
  const named = namedVariables(section);
  const given = new Set(
    [...Object.keys(d.composeEnv), ...Object.keys(d.imageEnv)].filter(
      (n) => IDGATE_VARIABLES.has(n) || n in d.composeEnv,
    ),
  );
  const known = new Set([...given, ...d.inputs, ...Object.keys(d.imageEnv)]);
  return {
    unnamed: [...given].filter((n) => !named.has(n)).sort(),
    unset: [...named].filter((n) => !known.has(n)).sort(),
  };
}

describe('docker-compose.yml, the Dockerfile and the README agree (static: no Docker engine here)', () => {
  const d = deploymentOf();
  const idgate = compose.services.idgate;
  const effective = { ...d.imageEnv, ...d.composeEnv };

  it('reads the compose file (the reader agrees with what the file says)', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['idgate', 'postgres', 'redis']);
    expect(idgate.build).toBe('.');
    // The reader refuses what it does not know rather than misreading it.
    expect(() => readYamlSubset('a:\n  - b: c\n')).toThrow(/mappings in sequences/);
    expect(() => readYamlSubset('a: &x 1\n')).toThrow(/unsupported/);
    expect(readYamlSubset('a:\n  b: "x # y" # z\n  c:\n  - d\n  - ["e", "f"]\n')).toEqual({
      a: { b: 'x # y', c: ['d', ['e', 'f']] },
    });
  });

  it('every service has a healthcheck, and idgate waits for the others to be healthy', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      const test = service.healthcheck?.test;
      expect({ name, test: Array.isArray(test) ? test.length > 1 : typeof test === 'string' }).toEqual({
        name,
        test: true,
      });
    }
    expect([compose.services.postgres.healthcheck!.test].flat().join(' ')).toMatch(/pg_isready/);
    expect(compose.services.redis.healthcheck!.test).toEqual(['CMD', 'redis-cli', 'ping']);
    // The image has no curl: Node's fetch, against readiness (the database answers).
    const probe = idgate.healthcheck!.test as string[];
    expect(probe.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
    expect(probe[3]).toMatch(/fetch\('http:\/\/127\.0\.0\.1:3000\/health\/ready'\)/);
    expect(effective.PORT).toBe('3000');
    for (const other of Object.keys(compose.services).filter((n) => n !== 'idgate')) {
      expect({ other, condition: idgate.depends_on?.[other]?.condition }).toEqual({
        other,
        condition: 'service_healthy',
      });
    }
  });

  it('no secret has a default: each is required (${VAR:?…}), or empty unless given', () => {
    const problems = secretProblems(compose.services);
    expect(problems).toEqual([]);
    // And the check sees a default password, a literal one, or one inside a URL.
    expect(
      secretProblems({
        db: { environment: { POSTGRES_PASSWORD: '${POSTGRES_PASSWORD:-postgres}', REDIS_PASSWORD: 'hunter2' } },
        app: {
          environment: { DATABASE_URL: 'postgresql://idgate:postgres@db/idgate', PII_KEYS: '${PII_KEYS:-k1:AAAA}' },
        },
      }),
    ).toEqual([
      'db.POSTGRES_PASSWORD has a default or a literal value',
      'db.REDIS_PASSWORD has a default or a literal value',
      'app.DATABASE_URL: a URL whose password is not a required variable',
      'app.PII_KEYS has a default or a literal value',
    ]);
    // Literally: the database password, the PII keys and the audit signing key are required.
    const required = (value: string | undefined) =>
      references(value ?? '').some((r) => r.form === 'required' && r.arg.trim() !== '');
    expect(required(compose.services.postgres.environment?.POSTGRES_PASSWORD)).toBe(true);
    for (const name of ['DATABASE_URL', 'PII_KEYS', 'PII_HMAC_KEY', 'AUDIT_SIGNING_KEY']) {
      expect({ name, required: required(d.composeEnv[name]) }).toEqual({ name, required: true });
    }
  });

  it('UPSTREAM_MODE is required and passed through, with UPSTREAM_TOKEN; idgate decides the rest', () => {
    expect(references(d.composeEnv.UPSTREAM_MODE ?? '')).toEqual([
      { name: 'UPSTREAM_MODE', form: 'required', arg: expect.stringMatching(/vendor.*sandbox/) },
    ]);
    expect(d.composeEnv.UPSTREAM_TOKEN).toMatch(/^\$\{UPSTREAM_TOKEN(:-)?\}$/);

    // The file as compose resolves it, then as idgate's server reads it.
    const operator = {
      POSTGRES_PASSWORD: randomBytes(24).toString('hex'),
      PII_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      PII_HMAC_KEY: randomBytes(32).toString('base64'),
      AUDIT_SIGNING_KEY: randomBytes(32).toString('base64'),
    };
    const resolved = (env: Record<string, string | undefined>) => {
      const out: Record<string, string> = { ...d.imageEnv };
      for (const [name, value] of Object.entries(d.composeEnv)) out[name] = interpolate(String(value), env);
      return out;
    };
    const serverMode = (env: Record<string, string | undefined>) => {
      try {
        return upstreamModeOf(readEnvironment(resolved(env)), { server: true });
      } catch (err) {
        return err instanceof ConfigError ? `refused: ${err.message}` : `failed: ${String(err)}`;
      }
    };
    expect(() => resolved(operator)).toThrow(/required variable UPSTREAM_MODE is missing a value/);
    expect(() => resolved({ ...operator, UPSTREAM_MODE: 'vendor', PII_KEYS: '' })).toThrow(/PII_KEYS/);
    expect(() => resolved({ ...operator, UPSTREAM_MODE: 'vendor', POSTGRES_PASSWORD: undefined })).toThrow(
      /POSTGRES_PASSWORD/,
    );
    expect(serverMode({ ...operator, UPSTREAM_MODE: 'vendor', UPSTREAM_TOKEN: 'tok' })).toBe('vendor');
    expect(serverMode({ ...operator, UPSTREAM_MODE: 'sandbox' })).toBe('sandbox');
    expect(serverMode({ ...operator, UPSTREAM_MODE: 'vendor' })).toBe(
      'refused: UPSTREAM_TOKEN is required with UPSTREAM_MODE=vendor',
    );
    expect(serverMode({ ...operator, UPSTREAM_MODE: 'sandbox', UPSTREAM_TOKEN: 'tok' })).toMatch(
      /^refused: UPSTREAM_MODE is sandbox but UPSTREAM_TOKEN is set/,
    );
    expect(serverMode({ ...operator, UPSTREAM_MODE: 'simulated' })).toMatch(/^refused: UPSTREAM_MODE must be one of/);
    // What idgate then runs with: the database service, and listening beyond the container's loopback.
    const env = readEnvironment(resolved({ ...operator, UPSTREAM_MODE: 'sandbox' }));
    expect(env.DATABASE_URL).toBe(`postgresql://idgate:${operator.POSTGRES_PASSWORD}@postgres:5432/idgate`);
    expect(env.HOST ?? '0.0.0.0').toBe('0.0.0.0');
  });

  it('passes idgate only variables it reads, and keeps its folders on volumes owned by its user', () => {
    const unknown = Object.keys(effective).filter((n) => !IDGATE_VARIABLES.has(n) && n !== 'NODE_ENV');
    expect(unknown).toEqual([]);
    const mounts = new Map(
      (idgate.volumes ?? []).map((v) => {
        const [source, target] = String(v).split(':');
        return [target, source];
      }),
    );
    for (const name of ['IDGATE_DATA_DIR', 'AUDIT_WITNESS_DIR']) {
      const dir = effective[name];
      expect({ name, dir: dir?.startsWith('/') }).toEqual({ name, dir: true });
      const volume = mounts.get(dir);
      expect({ name, volume: volume !== undefined && volume in (compose.volumes ?? {}) }).toEqual({
        name,
        volume: true,
      });
    }
    expect(effective.IDGATE_DATA_DIR).not.toBe(effective.AUDIT_WITNESS_DIR);
    // The container does not run as root, and made both folders its own before they became volumes.
    expect(dockerfile).toMatch(/^USER node$/m);
    const made = /RUN mkdir -p ([^\n\\&]+)/.exec(dockerfile)?.[1].trim().split(/\s+/) ?? [];
    expect(made).toEqual(expect.arrayContaining([effective.IDGATE_DATA_DIR, effective.AUDIT_WITNESS_DIR]));
    expect(dockerfile).toMatch(/chown -R node:node/);
    // Secrets and local state never enter the build context.
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['.env', '.data', 'node_modules']));
  });

  it('the check below catches a README that omits a variable, or names one the deployment does not set', () => {
    const fine = [...Object.keys(effective), ...d.inputs].map((n) => `\`${n}\``).join(', ');
    expect(readmeMismatches(fine, d)).toEqual({ unnamed: [], unset: [] });
    expect(readmeMismatches(fine.replaceAll('`AUDIT_SIGNING_KEY`', ''), d).unnamed).toEqual(['AUDIT_SIGNING_KEY']);
    expect(readmeMismatches(`${fine}, and set \`PII_RETENTION_DAYS\``, d).unset).toEqual(['PII_RETENTION_DAYS']);
  });

  it("the README's deployment section names exactly the variables the deployment gives idgate", () => {
    const section = deploymentSection(readme);
    expect(section).not.toBe('');
    expect(readmeMismatches(section, d)).toEqual({ unnamed: [], unset: [] });
    // The README says where the first start's bootstrap key is, and how to read it.
    expect(section).toContain(`docker compose exec idgate cat ${effective.IDGATE_DATA_DIR}/bootstrap-admin-key`);
    expect(section).toContain(effective.AUDIT_WITNESS_DIR);
  });
});

describe('the upstream mode: unset, a vendor token means vendor; otherwise only an embedded start may simulate', () => {
  const mode = (env: Record<string, string>, server = true) => {
    try {
      return upstreamModeOf(readEnvironment(env), { server });
    } catch (err) {
      return (err as Error).message;
    }
  };
  const db = { DATABASE_URL: 'postgresql://u:p@h/db' };

  it.each([
    ['embedded, nothing set (npm start on a fresh machine)', {}, 'sandbox'],
    ['embedded, a token', { UPSTREAM_TOKEN: 't' }, 'vendor'],
    ['embedded, an empty token (compose passes one)', { UPSTREAM_TOKEN: '' }, 'sandbox'],
    [
      'DATABASE_URL, no token, no mode',
      db,
      'UPSTREAM_TOKEN is required with DATABASE_URL unless UPSTREAM_MODE=sandbox is set (results are then simulated and nothing is charged)',
    ],
    ['DATABASE_URL, a token', { ...db, UPSTREAM_TOKEN: 't' }, 'vendor'],
    ['DATABASE_URL, sandbox asked for', { ...db, UPSTREAM_MODE: 'sandbox' }, 'sandbox'],
    ['vendor, no token', { UPSTREAM_MODE: 'vendor' }, 'UPSTREAM_TOKEN is required with UPSTREAM_MODE=vendor'],
    ['vendor, a token', { ...db, UPSTREAM_MODE: 'vendor', UPSTREAM_TOKEN: 't' }, 'vendor'],
    [
      'sandbox, a token (contradictory)',
      { UPSTREAM_MODE: 'sandbox', UPSTREAM_TOKEN: 't' },
      'UPSTREAM_MODE is sandbox but UPSTREAM_TOKEN is set: unset UPSTREAM_TOKEN for simulated results, or set UPSTREAM_MODE=vendor',
    ],
    ['an unknown mode', { UPSTREAM_MODE: 'live' }, 'UPSTREAM_MODE must be one of vendor, sandbox'],
  ])('%s', (_, env, expected) => {
    expect(mode(env)).toBe(expected);
  });

  it('the CLI (it calls no upstream) is not refused for a missing token: its keys say test', () => {
    expect(mode(db, false)).toBe('sandbox');
    expect(mode({ ...db, UPSTREAM_MODE: 'vendor' }, false)).toBe(
      'UPSTREAM_TOKEN is required with UPSTREAM_MODE=vendor',
    );
  });
});

/** The start banner: stdout without the JSON log lines that may come before it. */
function bannerOf(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));
}

describe('dist/main.js with DATABASE_URL: refuses to simulate unless asked, and says which mode runs', () => {
  let db: TestDatabase;
  let dataDir: string;
  const secrets = {
    PII_KEYS: `k1:${randomBytes(32).toString('base64')}`,
    PII_HMAC_KEY: randomBytes(32).toString('base64'),
    AUDIT_SIGNING_KEY: randomBytes(32).toString('base64'),
  };
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  beforeEach(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'idgate-deploy-'));
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));
  afterAll(() => db?.drop());

  const env = (extra: Record<string, string> = {}) => ({
    ...databaseEnv(db),
    ...secrets,
    IDGATE_DATA_DIR: dataDir,
    PORT: '0',
    LOG_LEVEL: 'warn',
    ...extra,
  });

  /** Starts with `env`, expects exit 1 and one stderr line; returns it. Nothing was written to the data folder. */
  async function refusal(extra: Record<string, string>): Promise<string> {
    const p = spawnNode('dist/main.js', [], env(extra));
    expect(await p.exit).toBe(1);
    const lines = p.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(p.stdout()).toBe('');
    expect(readdirSync(dataDir)).toEqual([]);
    return lines[0];
  }

  it('no UPSTREAM_TOKEN and no UPSTREAM_MODE: exit 1, one line naming UPSTREAM_TOKEN', async () => {
    expect(await refusal({})).toBe(
      'idgate: configuration error: UPSTREAM_TOKEN is required with DATABASE_URL unless UPSTREAM_MODE=sandbox is set ' +
        '(results are then simulated and nothing is charged)',
    );
    // As compose passes an unset token: empty.
    expect(await refusal({ UPSTREAM_TOKEN: '' })).toMatch(/^idgate: configuration error: UPSTREAM_TOKEN is required/);
  });

  it('UPSTREAM_MODE=vendor without a token, sandbox with one, or an unknown mode: one line each', async () => {
    expect(await refusal({ UPSTREAM_MODE: 'vendor' })).toBe(
      'idgate: configuration error: UPSTREAM_TOKEN is required with UPSTREAM_MODE=vendor',
    );
    expect(await refusal({ UPSTREAM_MODE: 'sandbox', UPSTREAM_TOKEN: 'a-vendor-token' })).toMatch(
      /^idgate: configuration error: UPSTREAM_MODE is sandbox but UPSTREAM_TOKEN is set/,
    );
    expect(await refusal({ UPSTREAM_MODE: 'simulated' })).toBe(
      'idgate: configuration error: UPSTREAM_MODE must be one of vendor, sandbox',
    );
  });

  it('UPSTREAM_MODE=sandbox: starts, the banner says SIMULATED, /health/ready says sandbox, keys say test', async () => {
    const p = spawnNode('dist/main.js', [], env({ UPSTREAM_MODE: 'sandbox' }));
    try {
      const [, url] = await p.waitFor(/idgate listening on (http:\/\/\S+)/);
      const [, keyFile] = await p.waitFor(/bootstrap admin API key written to (\S+) \(mode 0600/);
      const out = p.stdout();
      // The banner's first line (log lines may come before it).
      expect(bannerOf(out)[0]).toMatch(/^\*\*\* SIMULATED UPSTREAM \(UPSTREAM_MODE=sandbox\)/);
      expect(out).toMatch(
        /upstream: SANDBOX at http:\/\/127\.0\.0\.1:\d+ \(UPSTREAM_MODE=sandbox\): results are SIMULATED/,
      );
      expect(out).toMatch(/bound to 0\.0\.0\.0/);
      const ready = await request(url).get('/health/ready').expect(200);
      expect(ready.body.upstream).toMatchObject({ mode: 'sandbox' });
      expect(readFileSync(keyFile, 'utf8').trim()).toMatch(/^idg_test_/);
      // The in-process sandbox answers: a register identity is verified without any vendor.
      const admin = readFileSync(keyFile, 'utf8').trim();
      const client = await request(url)
        .post('/v1/clients')
        .set('Authorization', `Bearer ${admin}`)
        .send({ name: 'trial' });
      const key = await request(url)
        .post('/v1/api-keys')
        .set('Authorization', `Bearer ${admin}`)
        .send({ role: 'client', name: 'trial', client_id: client.body.id })
        .expect(201);
      const verified = await request(url)
        .post('/v1/verifications')
        .set('Authorization', `Bearer ${key.body.key}`)
        .send({ name: '张伟', id_card: '360426199101010071' })
        .expect(201);
      expect(verified.body).toMatchObject({ status: 'completed', result: '0' });
    } finally {
      p.child.kill('SIGTERM');
      expect(await p.exit).toBe(0);
    }
  });

  it('a vendor token: vendor mode, no SIMULATED anywhere, /health/ready says vendor, keys say live', async () => {
    const vendorDb = await createTestDatabase();
    // A stand-in vendor on loopback: nothing here may call the real one.
    const vendor: SandboxHandle = await startSandbox({ port: 0, token: 'the-vendor-token' });
    const p = spawnNode('dist/main.js', [], {
      ...env({ UPSTREAM_MODE: 'vendor', UPSTREAM_TOKEN: 'the-vendor-token', UPSTREAM_BASE_URL: vendor.url }),
      ...databaseEnv(vendorDb),
    });
    try {
      const [, url] = await p.waitFor(/idgate listening on (http:\/\/\S+)/);
      const [, keyFile] = await p.waitFor(/bootstrap admin API key written to (\S+) \(mode 0600/);
      expect(p.stdout()).toContain(`upstream: vendor API at ${vendor.url.replace(/\/+$/, '')} (UPSTREAM_MODE=vendor)`);
      expect(p.stdout()).not.toMatch(/SIMULATED|SANDBOX/);
      const ready = await request(url).get('/health/ready').expect(200);
      expect(ready.body.upstream).toMatchObject({ mode: 'vendor' });
      expect(readFileSync(keyFile, 'utf8').trim()).toMatch(/^idg_live_/);
    } finally {
      p.child.kill('SIGTERM');
      await p.exit;
      await vendor.close();
      await vendorDb.drop();
    }
  });
});
