import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import request from 'supertest';
import { createApp } from '../../src/app.factory';
import { ApiKeysService } from '../../src/auth/api-keys.service';
import { prepareRuntime, Runtime } from '../../src/bootstrap';
import { ConfigError } from '../../src/config/environment';
import { PrismaService } from '../../src/database/prisma.service';
import {
  ANALYZED_BY_RUNTIME,
  APPEND_ONLY_TABLES,
  RUNTIME_PRIVILEGES,
  withCredentials,
} from '../../src/database/runtime-role';
import { createTestDatabase, databaseEnv, TestDatabase } from '../support/databases';
import { runCli, spawnNode } from '../support/processes';
import { startTestApp, TestApp } from '../support/test-app';
import { KNOWN, startWithSandbox, VerificationHarness } from '../support/verification-app';

// Embedded clusters and compiled processes are slow on a loaded 2-core machine.
jest.setTimeout(180_000);

/*
 * Issue 13 §6: idgate runs as a role that owns nothing and may only SELECT and INSERT on the
 * audit tables, whatever way it is started; the owner migrates. Each check below connects as
 * the very role the app uses, and proves the refusal is the database's permission check
 * (not only the append-only triggers, which an owner could switch off).
 */

const secrets = () => ({
  PII_KEYS: `k1:${randomBytes(32).toString('base64')}`,
  PII_HMAC_KEY: randomBytes(32).toString('base64'),
  AUDIT_SIGNING_KEY: randomBytes(32).toString('base64'),
});

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const userOf = (url: string) => decodeURIComponent(new URL(url).username);

/** Everything a runtime role must be refused on the audit trail, and what it must still be able to do. */
async function expectNoPowerOverTheAuditTrail(url: string): Promise<void> {
  await withClient(url, async (c) => {
    const refused = async (sql: string, reason: RegExp) => {
      const err = (await c.query(sql).then(
        () => null,
        (e: unknown) => e,
      )) as { code?: string; message: string } | null;
      expect({ sql, message: err?.message }).toEqual({ sql, message: expect.stringMatching(reason) });
      // insufficient_privilege, raised by the permission check: never the triggers' "append-only".
      expect(err?.code).toBe('42501');
      expect(err?.message).not.toMatch(/append-only/);
    };
    for (const table of APPEND_ONLY_TABLES) {
      const denied = new RegExp(`^permission denied for table ${table}$`);
      const notOwner = new RegExp(`^must be owner of table ${table}$`);
      await refused(`UPDATE ${table} SET ${setterOf(table)}`, denied);
      await refused(`DELETE FROM ${table}`, denied);
      await refused(`TRUNCATE ${table}`, denied);
      await refused(`ALTER TABLE ${table} DISABLE TRIGGER ALL`, notOwner);
      await refused(`ALTER TABLE ${table} DISABLE TRIGGER USER`, notOwner);
      await refused(`DROP TABLE ${table}`, notOwner);
      // Reading and appending are what it is there for.
      await c.query(`SELECT count(*) FROM ${table}`);
    }
    await refused(
      `SET session_replication_role = replica`,
      /^permission denied to set parameter "session_replication_role"$/,
    );
    await refused(`CREATE ROLE idgate_would_be_admin`, /^permission denied to create role$/);
    await refused(`CREATE DATABASE idgate_would_be_copy`, /^permission denied to create database$/);
    const { rows } = await c.query(
      `SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls,
              (SELECT count(*)::int FROM pg_class WHERE relowner = r.oid) AS owned_relations,
              (SELECT count(*)::int FROM pg_database WHERE datdba = r.oid) AS owned_databases
       FROM pg_roles r WHERE r.rolname = current_user`,
    );
    expect(rows[0]).toEqual({
      rolsuper: false,
      rolcreaterole: false,
      rolcreatedb: false,
      rolreplication: false,
      rolbypassrls: false,
      owned_relations: 0,
      owned_databases: 0,
    });
  });
}

function setterOf(table: string): string {
  if (table === 'audit_events') return `outcome = 'failure'`;
  if (table === 'audit_chain') return 'hash = prev_hash';
  return `signature = 'x'`;
}

/** Drops databases and roles a test made, whatever happened. */
class Leftovers {
  private readonly work: Array<() => Promise<unknown>> = [];
  add(fn: () => Promise<unknown>): void {
    this.work.unshift(fn);
  }
  role(name: string): void {
    this.add(() =>
      withClient(process.env.IDGATE_TEST_ADMIN_URL!, (c) => c.query(`DROP ROLE IF EXISTS ${c.escapeIdentifier(name)}`)),
    );
  }
  async run(): Promise<void> {
    for (const fn of this.work.splice(0)) await fn().catch(() => undefined);
  }
}

describe('least privilege in the database', () => {
  describe('the harness runs every suite as a runtime role, as npm start does', () => {
    let h: VerificationHarness;
    beforeAll(async () => {
      h = await startWithSandbox();
    });
    afterAll(() => h.close());

    it("the app's own connection is the runtime role, and it cannot touch the audit trail", async () => {
      const [{ user }] = await h.t.prisma.$queryRaw<Array<{ user: string }>>`SELECT current_user AS "user"`;
      expect(user).toBe(process.env.IDGATE_TEST_RUNTIME_ROLE);
      expect(userOf(h.t.db.url)).toBe(user);
      await expectNoPowerOverTheAuditTrail(h.t.db.url);
    });

    it('holds exactly the privileges of RUNTIME_PRIVILEGES: no TRUNCATE anywhere, nothing on the migration log', async () => {
      await withClient(h.t.db.url, async (c) => {
        const version = Number((await c.query(`SHOW server_version_num`)).rows[0].server_version_num);
        const kinds = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'];
        if (version >= 170000) kinds.push('MAINTAIN');
        const held = async (relation: string) =>
          (
            await c.query(`SELECT k FROM unnest($2::text[]) k WHERE has_table_privilege($1::regclass, k) ORDER BY k`, [
              relation,
              kinds,
            ])
          ).rows.map((r: { k: string }) => r.k);
        for (const [relation, privileges] of Object.entries(RUNTIME_PRIVILEGES)) {
          const maintain = version >= 170000 && ANALYZED_BY_RUNTIME.includes(relation) ? ['MAINTAIN'] : [];
          expect({ relation, held: await held(relation) }).toEqual({
            relation,
            held: [...privileges, ...maintain].sort(),
          });
        }
        expect(await held('_prisma_migrations')).toEqual([]);
        // PostgreSQL >= 17: the reconciliation's ANALYZE of its work tables is not skipped for this role.
        const notices: string[] = [];
        c.on('notice', (n) => notices.push(n.message ?? ''));
        for (const table of ANALYZED_BY_RUNTIME) await c.query(`ANALYZE ${table}`);
        expect(notices).toEqual(version >= 170000 ? [] : expect.arrayContaining([expect.stringMatching(/skipping/)]));
      });
    });

    it('while the app works through it: a verification, a reconciliation, a key revoked, a purge by the CLI', async () => {
      const client = await h.t.keyFor('client', 'acme');
      const finance = (await h.t.keyFor('finance')).key;
      const admin = (await h.t.keyFor('admin')).key;
      const as = (key: string) => ({ Authorization: `Bearer ${key}` });

      const verified = await h.t.http
        .post('/v1/verifications')
        .set(as(client.key))
        .send({ name: KNOWN[0].name, id_card: KNOWN[0].id_card })
        .expect(201);

      const reconciled = await h.t.http
        .post('/v1/billing/reconciliations')
        .set(as(finance))
        .attach('file', Buffer.from(h.sandbox.statementCsv()), 'statement.csv')
        .expect(201);
      expect(reconciled.body.counts).toMatchObject({ matched: 1 });

      const doomed = await h.t.keyFor('client', 'acme');
      await h.t.http.delete(`/v1/api-keys/${doomed.id}`).set(as(admin)).expect(200);
      await h.t.http.get('/v1/verifications').set(as(doomed.key)).expect(401);

      // Age the verification past retention (test setup, as the owner), then purge it with the CLI.
      await withClient(h.t.db.adminUrl, (c) =>
        c.query(`UPDATE verifications SET created_at = now() - interval '40 days' WHERE id = $1`, [verified.body.id]),
      );
      // The CLI as another instance of the same installation: the app's keys and witness folder.
      const { pii, audit } = h.t.config;
      const purge = await runCli(['pii', 'purge', '--days', '30', '--json'], {
        ...databaseEnv(h.t.db),
        PII_KEYS: pii.keys.map((k) => `${k.id}:${k.key.toString('base64')}`).join(','),
        PII_HMAC_KEY: pii.hmacKey.toString('base64'),
        AUDIT_SIGNING_KEY: audit.signingKeySeed.toString('base64'),
        AUDIT_MAC_KEY: audit.macKey.toString('base64'),
        AUDIT_WITNESS_DIR: audit.witnessDir,
        LOG_LEVEL: 'warn',
      });
      expect({ code: purge.code, stderr: purge.stderr }).toEqual({ code: 0, stderr: '' });
      expect(JSON.parse(purge.stdout.trim().split('\n').pop()!)).toMatchObject({ purged: 1 });
      const row = await h.t.prisma.verification.findUniqueOrThrow({ where: { id: verified.body.id } });
      expect(row).toMatchObject({ nameEnc: null, idCardEnc: null, piiPurgedAt: expect.any(Date) });
      expect(await h.t.prisma.auditEvent.count({ where: { action: 'pii.purged' } })).toBe(1);
    });
  });

  describe('embedded mode: prepareRuntime on a cluster of its own', () => {
    let dataDir: string;
    let runtime: Runtime;
    beforeAll(async () => {
      dataDir = mkdtempSync(path.join(os.tmpdir(), 'idgate-least-privilege-'));
      runtime = await prepareRuntime({ IDGATE_DATA_DIR: dataDir }, { adoptOrphanDatabase: true });
    });
    afterAll(async () => {
      await runtime?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('serves as idgate_runtime, the cluster superuser being the owner only', async () => {
      expect(userOf(runtime.config.databaseUrl)).toBe('idgate_runtime');
      expect(userOf(runtime.ownerUrl)).toBe('postgres');
      await expectNoPowerOverTheAuditTrail(runtime.config.databaseUrl);

      const app = await createApp(runtime.config, { logStream: { write: () => undefined } });
      try {
        await app.init();
        const [{ user }] = await app.get(PrismaService).$queryRaw<
          Array<{ user: string }>
        >`SELECT current_user AS "user"`;
        expect(user).toBe('idgate_runtime');
        const admin = await app.get(ApiKeysService).issueBootstrapAdminKeyOnce();
        const auth = { Authorization: `Bearer ${admin!.key}` };
        await request(app.getHttpServer()).post('/v1/clients').set(auth).send({ name: 'embedded' }).expect(201);
        const key = await request(app.getHttpServer())
          .post('/v1/api-keys')
          .set(auth)
          .send({ role: 'finance', name: 'books' })
          .expect(201);
        await request(app.getHttpServer()).delete(`/v1/api-keys/${key.body.id}`).set(auth).expect(200);
      } finally {
        await app.close();
      }
    });
  });

  describe('DATABASE_URL with DATABASE_OWNER_URL', () => {
    let db: TestDatabase;
    const leftovers = new Leftovers();
    beforeAll(async () => {
      db = await createTestDatabase();
      leftovers.add(() => db.drop());
    });
    afterAll(() => leftovers.run());

    const start = (env: Record<string, string>) => prepareRuntime({ ...env, ...secrets() });
    const refusal = (env: Record<string, string>) =>
      start(env).then(
        () => {
          throw new Error('started');
        },
        (err: unknown) => err as Error,
      );

    /** A login role made for one test, with a password, its URL on `db`. */
    async function loginRole(attributes = ''): Promise<{ name: string; url: string }> {
      const name = `idgate_lp_${randomBytes(4).toString('hex')}`;
      const password = randomBytes(18).toString('base64url');
      await withClient(db.adminUrl, (c) =>
        c.query(`CREATE ROLE ${name} LOGIN NOINHERIT ${attributes} PASSWORD ${c.escapeLiteral(password)}`),
      );
      leftovers.role(name);
      leftovers.add(() => withClient(db.adminUrl, (c) => c.query(`DROP OWNED BY ${name}`)));
      return { name, url: withCredentials(db.adminUrl, name, password) };
    }

    it('runs the app as DATABASE_URL and migrates as DATABASE_OWNER_URL', async () => {
      const runtime = await start(databaseEnv(db));
      expect(runtime.config.databaseUrl).toBe(db.url);
      expect(runtime.ownerUrl).toBe(db.adminUrl);
    });

    it('refuses, naming DATABASE_URL, the owner itself, a superuser, or a role that owns a table', async () => {
      const same = await refusal({ DATABASE_URL: db.adminUrl, DATABASE_OWNER_URL: db.adminUrl });
      expect(same).toBeInstanceOf(ConfigError);
      expect(same.message).toMatch(/^DATABASE_URL names role "[^"]+": it is also DATABASE_OWNER_URL's role/);

      const superuser = await loginRole('SUPERUSER');
      const asSuperuser = await refusal({ DATABASE_URL: superuser.url, DATABASE_OWNER_URL: db.adminUrl });
      expect(asSuperuser.message).toBe(
        `DATABASE_URL names role "${superuser.name}": it is a superuser, which the runtime role must not be; ` +
          'give idgate a login role of its own that owns nothing (README, Configuration)',
      );

      const owner = await loginRole();
      await withClient(db.adminUrl, (c) => c.query(`ALTER TABLE api_keys OWNER TO ${owner.name}`));
      const asOwner = await refusal({ DATABASE_URL: owner.url, DATABASE_OWNER_URL: db.adminUrl });
      expect(asOwner.message).toMatch(
        new RegExp(
          `^DATABASE_URL names role "${owner.name}": it owns \\(or is a member of the owner of\\) table api_keys;`,
        ),
      );
      await withClient(db.adminUrl, (c) => c.query(`ALTER TABLE api_keys OWNER TO CURRENT_USER`));

      const creator = await loginRole('CREATEROLE');
      const asCreator = await refusal({ DATABASE_URL: creator.url, DATABASE_OWNER_URL: db.adminUrl });
      expect(asCreator.message).toMatch(/^DATABASE_URL names role "[^"]+": it has CREATEROLE, which/);
    });

    it('takes back, on the next start, a privilege granted by hand; refuses one it cannot take back', async () => {
      const rt = await loginRole();
      const env = { DATABASE_URL: rt.url, DATABASE_OWNER_URL: db.adminUrl };
      await start(env);
      await withClient(db.adminUrl, (c) => c.query(`GRANT UPDATE, DELETE, TRUNCATE ON audit_events TO ${rt.name}`));
      await start(env);
      await expectNoPowerOverTheAuditTrail(rt.url);

      // pg_write_all_data would give UPDATE and DELETE everywhere, past every grant.
      await withClient(db.adminUrl, (c) => c.query(`GRANT pg_write_all_data TO ${rt.name}`));
      const member = await refusal(env);
      expect(member.message).toMatch(/^DATABASE_URL names role "[^"]+": it is a member of "pg_write_all_data"/);
      await withClient(db.adminUrl, (c) => c.query(`REVOKE pg_write_all_data FROM ${rt.name}`));
    });

    it('refuses DATABASE_OWNER_URL without DATABASE_URL, before touching any data folder', async () => {
      const dataDir = path.join(os.tmpdir(), `idgate-never-made-${randomBytes(4).toString('hex')}`);
      const err = await refusal({ DATABASE_OWNER_URL: db.adminUrl, IDGATE_DATA_DIR: dataDir });
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toBe(
        'DATABASE_OWNER_URL is set without DATABASE_URL (the runtime role): set both or neither',
      );
      expect(existsSync(dataDir)).toBe(false);
    });

    it('stops `npm start` with one line naming DATABASE_URL', async () => {
      const started = spawnNode('dist/main.js', [], {
        UPSTREAM_MODE: 'sandbox',
        DATABASE_URL: db.adminUrl,
        DATABASE_OWNER_URL: db.adminUrl,
        PORT: '0',
        LOG_LEVEL: 'warn',
        ...secrets(),
      });
      expect(await started.exit).toBe(1);
      const lines = started.stderr().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^idgate: configuration error: DATABASE_URL names role "[^"]+": it is also/);
      expect(started.stdout()).toBe('');
    });
  });

  describe('DATABASE_URL alone: the owner, from which idgate makes the runtime role', () => {
    const leftovers = new Leftovers();
    afterAll(() => leftovers.run());

    async function ownerOnlyDatabase(): Promise<TestDatabase> {
      const db = await createTestDatabase();
      leftovers.role(`${db.name}_runtime`);
      leftovers.add(() => db.drop());
      return db;
    }

    it('creates <database>_runtime on the first start and reuses it on the next, with the same password', async () => {
      const db = await ownerOnlyDatabase();
      const env = { DATABASE_URL: db.adminUrl, ...secrets() };
      const first = await prepareRuntime(env);
      expect(userOf(first.config.databaseUrl)).toBe(`${db.name}_runtime`);
      expect(first.ownerUrl).toBe(db.adminUrl);
      const roleOid = () =>
        withClient(db.adminUrl, async (c) => {
          const { rows } = await c.query(`SELECT oid::int AS oid FROM pg_roles WHERE rolname = $1`, [
            `${db.name}_runtime`,
          ]);
          return rows[0]?.oid as number | undefined;
        });
      const oid = await roleOid();
      expect(oid).toEqual(expect.any(Number));
      await expectNoPowerOverTheAuditTrail(first.config.databaseUrl);

      const second = await prepareRuntime(env);
      expect(await roleOid()).toBe(oid);
      expect(second.config.databaseUrl).toBe(first.config.databaseUrl);
      // The first instance's URL still opens connections after the second start set the password again.
      await withClient(first.config.databaseUrl, (c) => c.query('SELECT 1'));
    });

    it('two instances started at once from one owner URL both work (the same derived password)', async () => {
      const db = await ownerOnlyDatabase();
      const env = { DATABASE_URL: db.adminUrl, ...secrets() };
      const [a, b] = await Promise.all([prepareRuntime(env), prepareRuntime(env)]);
      expect(a.config.databaseUrl).toBe(b.config.databaseUrl);
      const runtimeDb: TestDatabase = { ...db, url: a.config.databaseUrl, drop: async () => undefined };
      const apps: TestApp[] = [];
      try {
        apps.push(
          await startTestApp({}, runtimeDb),
          await startTestApp({}, { ...runtimeDb, url: b.config.databaseUrl }),
        );
        for (const t of apps) {
          const admin = (await t.keyFor('admin')).key;
          await t.http
            .post('/v1/clients')
            .set('Authorization', `Bearer ${admin}`)
            .send({ name: `c-${apps.indexOf(t)}` })
            .expect(201);
          const [{ user }] = await t.prisma.$queryRaw<Array<{ user: string }>>`SELECT current_user AS "user"`;
          expect(user).toBe(`${db.name}_runtime`);
        }
      } finally {
        for (const t of apps) await t.close();
      }
    });

    it('refuses a DATABASE_URL that is a runtime role idgate made, naming DATABASE_URL', async () => {
      const db = await ownerOnlyDatabase();
      const made = await prepareRuntime({ DATABASE_URL: db.adminUrl, ...secrets() });
      const err = await prepareRuntime({ DATABASE_URL: made.config.databaseUrl, ...secrets() }).then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect(err?.message).toMatch(
        /^DATABASE_URL names idgate's runtime role "[^"]+", which can neither migrate nor grant/,
      );
    });
  });
});
