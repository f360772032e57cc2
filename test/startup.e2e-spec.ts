import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import request from 'supertest';
import { hashApiKey } from '../src/auth/api-key-secret';
import { createTestDatabase, databaseEnv, TestDatabase } from './support/databases';
import { LEGACY_PASSWORD, startEmbeddedPostgres } from '../src/database/embedded-postgres';
import { ROOT, runCli, spawnCommand, spawnNode, stopClusterIn } from './support/processes';
import { startTestApp, TEST_AUDIT_MAC_KEY } from './support/test-app';

// Spawning compiled processes is slow on a loaded 2-core machine: give these suites room.
jest.setTimeout(180_000);

/** A fresh machine: no DATABASE_URL, no keys, an empty data folder. */
describe('npm start on a fresh machine (embedded PostgreSQL)', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'idgate-start-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  const env = () => ({ IDGATE_DATA_DIR: dataDir, PORT: '0', SANDBOX_PORT: '0', LOG_LEVEL: 'warn' });

  it('migrates, serves, writes the bootstrap admin key once to a 0600 file (not a terminal), and shuts the database down cleanly', async () => {
    const first = spawnNode('dist/main.js', [], env());
    const [, url] = await first.waitFor(/idgate listening on (http:\/\/\S+)/);
    const [, keyFile] = await first.waitFor(/bootstrap admin API key written to (\S+) \(mode 0600/);
    expect(keyFile).toBe(path.join(dataDir, 'bootstrap-admin-key'));
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const key = readFileSync(keyFile, 'utf8').trim();
    expect(key).toMatch(/^idg_test_\S+$/);
    // stdout is a log stream here: the key itself appears in no output.
    expect(first.stdout()).not.toContain(key);
    expect(first.stderr()).not.toContain(key);
    expect(first.stdout()).toMatch(/docs: +http:\/\/\S+\/docs/);
    // Embedded mode listens on loopback only.
    expect(first.stdout()).toMatch(/idgate listening on http:\/\/localhost:\d+ \(bound to 127\.0\.0\.1/);
    // The embedded PostgreSQL's password is generated and kept with the other local secrets.
    const secrets = JSON.parse(readFileSync(path.join(dataDir, 'secrets.json'), 'utf8')) as Record<string, string>;
    expect(secrets.EMBEDDED_PG_PASSWORD).toMatch(/^[A-Za-z0-9_-]{32}$/);

    // No token on a developer's machine: the built-in sandbox, as before issue 14, and said loudly.
    const ready = await request(url).get('/health/ready').expect(200);
    expect(ready.body.upstream).toMatchObject({ mode: 'sandbox' });
    const banner = first
      .stdout()
      .split('\n')
      .filter((l) => !l.startsWith('{'));
    expect(banner[0]).toMatch(/^\*\*\* SIMULATED UPSTREAM \(UPSTREAM_MODE=sandbox\)/);
    expect(first.stdout()).toMatch(/upstream: SANDBOX at http:\/\/127\.0\.0\.1:\d+ \(UPSTREAM_MODE=sandbox\)/);
    await request(url)
      .post('/v1/clients')
      .set('Authorization', `Bearer ${key}`)
      .send({ name: 'survives-restart' })
      .expect(201);

    first.child.kill('SIGTERM');
    expect(await first.exit).toBe(0);
    expect(existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);
    expect(existsSync(path.join(dataDir, 'secrets.json'))).toBe(true);

    const second = spawnNode('dist/main.js', [], env());
    const [, url2] = await second.waitFor(/idgate listening on (http:\/\/\S+)/);
    try {
      expect(second.stdout()).not.toMatch(/bootstrap admin API key/i);
      expect(second.stdout()).not.toContain(key);
      const clients = await request(url2).get('/v1/clients').set('Authorization', `Bearer ${key}`).expect(200);
      expect(clients.body.items.map((c: { name: string }) => c.name)).toContain('survives-restart');
    } finally {
      second.child.kill('SIGTERM');
      expect(await second.exit).toBe(0);
    }
  });

  it('moves a data folder made with the old fixed database password to a generated one', async () => {
    const legacyDir = mkdtempSync(path.join(os.tmpdir(), 'idgate-legacy-'));
    try {
      // An older idgate's folder: a cluster with password "postgres", and secrets without a database password.
      const old = await startEmbeddedPostgres({ dataDir: legacyDir, password: LEGACY_PASSWORD });
      await old.stop();
      writeFileSync(
        path.join(legacyDir, 'secrets.json'),
        JSON.stringify({
          PII_KEYS: `k1:${randomBytes(32).toString('base64')}`,
          PII_HMAC_KEY: randomBytes(32).toString('base64'),
          AUDIT_SIGNING_KEY: randomBytes(32).toString('base64'),
        }),
        { mode: 0o600 },
      );
      const started = spawnNode('dist/main.js', [], { ...env(), IDGATE_DATA_DIR: legacyDir });
      const [, url] = await started.waitFor(/idgate listening on (http:\/\/\S+)/);
      await request(url).get('/health/ready').expect(200);
      const secrets = JSON.parse(readFileSync(path.join(legacyDir, 'secrets.json'), 'utf8')) as Record<string, string>;
      expect(secrets.EMBEDDED_PG_PASSWORD).toMatch(/^[A-Za-z0-9_-]{32}$/);
      const port = Number(readFileSync(path.join(legacyDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[3]);
      const connect = async (password: string) => {
        const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'idgate' });
        try {
          await c.connect();
          await c.end();
          return 'connected';
        } catch (err) {
          return (err as { code?: string }).code;
        }
      };
      expect(await connect(LEGACY_PASSWORD)).toBe('28P01');
      expect(await connect(secrets.EMBEDDED_PG_PASSWORD)).toBe('connected');
      started.child.kill('SIGTERM');
      expect(await started.exit).toBe(0);
    } finally {
      rmSync(legacyDir, { recursive: true, force: true });
    }
  });

  it('on a terminal, shows the bootstrap key last, framed, with the next command, and writes no file', async () => {
    const ttyDir = mkdtempSync(path.join(os.tmpdir(), 'idgate-tty-'));
    try {
      if (!existsSync('/usr/bin/script')) {
        process.stderr.write('terminal test skipped: util-linux script(1) not installed\n');
        return;
      }
      const main = path.join(ROOT, 'dist', 'main.js');
      // script(1) gives the process a pseudo-terminal as stdout.
      // At the default log level, so that the start-up's JSON log lines are there to scroll it away.
      const onTty = spawnCommand('/usr/bin/script', ['-qfec', `${process.execPath} ${main}`, '/dev/null'], {
        ...env(),
        LOG_LEVEL: 'info',
        IDGATE_DATA_DIR: ttyDir,
      });
      await onTty.waitFor(/\/v1\/api-keys\. *\|\r?\n\+-+\+/);
      const out = onTty.stdout();
      const box = out.slice(out.indexOf('+--'));
      expect(box).toMatch(/\| +idg_test_\S+ +\|/);
      expect(box).toMatch(/Bootstrap admin API key \(shown once: store it now\)/);
      expect(box).toMatch(/npm run cli -- keys create --role client --name my-app --client my-app/);
      expect(out.indexOf('+--')).toBeGreaterThan(out.indexOf('idgate listening on'));
      // Every start-up log line comes before the box, and nothing after it.
      expect(out.slice(0, out.indexOf('+--'))).toMatch(/"msg":"Nest application successfully started"/);
      expect(out.slice(out.lastIndexOf('+--')).split('\n').slice(1).join('').trim()).toBe('');
      expect(existsSync(path.join(ttyDir, 'bootstrap-admin-key'))).toBe(false);
      onTty.child.kill('SIGTERM');
      await onTty.exit;
    } finally {
      await stopClusterIn(ttyDir);
      rmSync(ttyDir, { recursive: true, force: true });
    }
  });

  it('a start on unchanged sources does not rebuild (npm start and the CLI run this check first)', async () => {
    const main = path.join(ROOT, 'dist', 'main.js');
    const before = statSync(main).mtimeMs;
    // `npm test` has just built (or found dist/ fresh): nothing changed since.
    const check = spawnNode('scripts/build-if-stale.js', [], {});
    expect(await check.exit).toBe(0);
    expect(check.stderr()).toBe('');
    expect(check.stdout()).toBe('');
    expect(statSync(main).mtimeMs).toBe(before);
  });

  it('stops with one line naming a malformed setting', async () => {
    const bad = spawnNode('dist/main.js', [], { ...env(), PORT: 'eighty' });
    expect(await bad.exit).toBe(1);
    const lines = bad.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^idgate: configuration error: PORT /);
    expect(bad.stdout()).toBe('');

    const badUrl = spawnNode('dist/main.js', [], { ...env(), UPSTREAM_TIMEOUT_MS: '-3' });
    expect(await badUrl.exit).toBe(1);
    expect(badUrl.stderr().trim()).toMatch(/^idgate: configuration error: UPSTREAM_TIMEOUT_MS [^\n]+$/);
  });
});

describe('CLI against DATABASE_URL', () => {
  let db: TestDatabase;
  const piiEnv = {
    PII_KEYS: `k1:${randomBytes(32).toString('base64')}`,
    PII_HMAC_KEY: randomBytes(32).toString('base64'),
    AUDIT_SIGNING_KEY: randomBytes(32).toString('base64'),
    // The same installation as the test app below: a key the CLI makes carries a MAC the app accepts.
    AUDIT_MAC_KEY: TEST_AUDIT_MAC_KEY.toString('base64'),
  };
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());
  // Commands run as the runtime role (DATABASE_URL); `migrate` as the owner (DATABASE_OWNER_URL).
  const env = () => ({ ...databaseEnv(db), ...piiEnv });

  it('creates a client key with --json, lists it without the secret, and revokes it', async () => {
    const created = await runCli(
      ['keys', 'create', '--role', 'client', '--name', 'pos terminal', '--client', 'acme', '--json'],
      env(),
    );
    expect(created.code).toBe(0);
    const lines = created.stdout.trim().split('\n');
    const result = JSON.parse(lines[lines.length - 1]);
    expect(result).toEqual({
      id: expect.any(String),
      key: expect.stringMatching(/^idg_test_[A-Za-z0-9_-]{40}$/),
      prefix: expect.any(String),
      role: 'client',
      name: 'pos terminal',
      client: 'acme',
    });

    // Without --json, what the README's quick start shows; the client app is created on the way.
    const human = await runCli(['keys', 'create', '--role', 'client', '--name', 'my-app', '--client', 'my-app'], env());
    expect({ code: human.code, stderr: human.stderr }).toEqual({ code: 0, stderr: '' });
    expect(human.stdout).toMatch(
      /^Created client key "my-app" for client my-app \(id [0-9a-f-]{36}\)\.\nKey \(shown once, store it now\):\n {2}idg_test_[A-Za-z0-9_-]{40}\n$/,
    );

    // The key works against the app on the same database.
    const t = await startTestApp({}, db);
    try {
      await t.http.get('/v1/api-keys').set('Authorization', `Bearer ${result.key}`).expect(403);
    } finally {
      await t.close();
    }

    const listed = await runCli(['keys', 'list', '--json'], env());
    expect(listed.code).toBe(0);
    expect(listed.stdout).not.toContain(result.key);
    const items = JSON.parse(listed.stdout.trim().split('\n').pop()!).items;
    expect(items).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: result.id, prefix: result.prefix, client: 'acme' })]),
    );

    const again = await runCli(
      ['keys', 'create', '--role', 'client', '--name', 'second', '--client', 'acme', '--json'],
      env(),
    );
    expect(JSON.parse(again.stdout.trim().split('\n').pop()!).client).toBe('acme');

    const revoked = await runCli(['keys', 'revoke', result.id, '--json'], env());
    expect(revoked.code).toBe(0);
    const c = new pg.Client({ connectionString: db.adminUrl });
    await c.connect();
    try {
      const row = await c.query('SELECT revoked_at, key_hash FROM api_keys WHERE id = $1', [result.id]);
      expect(row.rows[0].revoked_at).not.toBeNull();
      expect(row.rows[0].key_hash).toBe(hashApiKey(result.key));
      const clients = await c.query(`SELECT count(*)::int AS n FROM clients WHERE name = 'acme'`);
      expect(clients.rows[0].n).toBe(1);
    } finally {
      await c.end();
    }
  });

  it('explains bad input on stderr with a non-zero exit', async () => {
    const noRole = await runCli(['keys', 'create', '--name', 'x'], env());
    expect(noRole.code).not.toBe(0);
    expect(noRole.stderr).toMatch(/--role/);
    const badRole = await runCli(['keys', 'create', '--role', 'root', '--name', 'x'], env());
    expect(badRole.code).not.toBe(0);
    expect(badRole.stderr).toMatch(/root/);
    const clientWithoutClient = await runCli(['keys', 'create', '--role', 'client', '--name', 'x'], env());
    expect(clientWithoutClient.code).toBe(1);
    // Named as the user typed it: the option, not the API field behind it.
    expect(clientWithoutClient.stderr).toMatch(/--client: a client key needs --client NAME/);
    expect(clientWithoutClient.stderr).not.toMatch(/client_id/);
    const adminWithClient = await runCli(
      ['keys', 'create', '--role', 'admin', '--name', 'x', '--client', 'acme'],
      env(),
    );
    expect(adminWithClient.code).toBe(1);
    expect(adminWithClient.stderr).toMatch(/--client: only a client key belongs to a client app/);
    const badId = await runCli(['keys', 'revoke', 'nope'], env());
    expect(badId.code).toBe(1);
    expect(badId.stderr).toMatch(/id: must be a key id/);
  });

  it('migrate reports an up-to-date database', async () => {
    const res = await runCli(['migrate', '--json'], env());
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout.trim().split('\n').pop()!)).toEqual({ applied: [] });
  });
});
