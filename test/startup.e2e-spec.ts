import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import request from 'supertest';
import { hashApiKey } from '../src/auth/api-key-secret';
import { createTestDatabase, TestDatabase } from './support/databases';
import { runCli, spawnNode } from './support/processes';
import { startTestApp } from './support/test-app';

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

  it('migrates, serves, prints the bootstrap admin key once, and shuts the database down cleanly', async () => {
    const first = spawnNode('dist/main.js', [], env());
    const [, url] = await first.waitFor(/idgate listening on (http:\/\/\S+)/);
    await first.waitFor(/Bootstrap admin API key[^\n]*\n\s+(idg_test_\S+)/);
    const key = first.stdout().match(/Bootstrap admin API key[^\n]*\n\s+(idg_test_\S+)/)![1];
    expect(first.stdout()).toMatch(/docs: +http:\/\/\S+\/docs/);

    await request(url).get('/health/ready').expect(200);
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
      expect(second.stdout()).not.toMatch(/Bootstrap admin API key/);
      expect(second.stdout()).not.toContain(key);
      const clients = await request(url2).get('/v1/clients').set('Authorization', `Bearer ${key}`).expect(200);
      expect(clients.body.items.map((c: { name: string }) => c.name)).toContain('survives-restart');
    } finally {
      second.child.kill('SIGTERM');
      expect(await second.exit).toBe(0);
    }
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
  };
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());
  const env = () => ({ DATABASE_URL: db.url, ...piiEnv });

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
    expect(clientWithoutClient.stderr).toMatch(/client_id/);
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
