import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { SYSTEM_CLI } from '../../src/audit/audit-vocabulary';
import { PiiMaintenanceService } from '../../src/verification/pii-maintenance.service';
import { VerificationSweeper } from '../../src/verification/verification-sweeper.service';
import { databaseEnv } from '../support/databases';
import { runCli } from '../support/processes';
import { startTestApp } from '../support/test-app';
import { KNOWN, startWithSandbox, VerificationHarness } from '../support/verification-app';

// This suite spawns the compiled CLI, which is slow on a loaded 2-core machine.
jest.setTimeout(180_000);

async function dumpAllTables(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const tables = await c.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`);
    const parts: string[] = [];
    for (const { tablename } of tables.rows) {
      const rows = await c.query(`SELECT row_to_json(t)::text AS j FROM "${tablename}" t`);
      parts.push(...rows.rows.map((r) => r.j as string));
    }
    return parts.join('\n');
  } finally {
    await c.end();
  }
}

describe('personal data at rest, in logs, rotation, retention', () => {
  let h: VerificationHarness;
  let client: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });
  const k1 = { id: 'k1', key: randomBytes(32) };
  const k2 = { id: 'k2', key: randomBytes(32) };
  const hmacKey = randomBytes(32);
  const people = KNOWN.slice(120, 126);

  beforeAll(async () => {
    h = await startWithSandbox({ logLevel: 'trace', pii: { keys: [k1], hmacKey } });
    client = (await h.t.keyFor('client', 'pii')).key;
    const compliance = (await h.t.keyFor('compliance')).key;
    // A full run: both modes, both channels, a local rejection, an idempotent replay, a compliance read and search.
    const [a, b, c, d, e] = people;
    const made = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set('Idempotency-Key', 'pii-1')
      .send({ name: a.name, id_card: a.id_card })
      .expect(201);
    await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set('Idempotency-Key', 'pii-1')
      .send({ name: a.name, id_card: a.id_card })
      .expect(200);
    await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .send({ name: b.name, id_card: b.id_card.slice(0, 17) + '0' })
      .expect(201);
    await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .send({ image_url: `https://img.example.com/idcard/${c.id_card}.jpg` })
      .expect(201);
    await h.t.http.post('/identity/idcard/ocr').set(as(client)).send({ name: d.name, id_card: d.id_card }).expect(200);
    await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set('X-Sandbox-Fault', 'http500')
      .send({ name: e.name, id_card: e.id_card })
      .expect(201);
    await h.t.http.get(`/v1/verifications/${made.body.id}`).set(as(compliance)).expect(200);
    await h.t.http
      .post('/v1/verifications/search')
      .set(as(compliance))
      .send({ id_card: c.id_card, name: c.name })
      .expect(200);
  });
  afterAll(() => h.close());

  const secrets = () => people.flatMap((p) => [p.name, p.id_card, p.id_card.slice(0, 17), p.address]);

  it('no table holds a test name, ID number or address in plaintext', async () => {
    const dump = await dumpAllTables(h.t.db.adminUrl);
    expect(dump.length).toBeGreaterThan(1000);
    for (const s of secrets()) expect({ leaked: s, found: dump.includes(s) }).toEqual({ leaked: s, found: false });
  });

  it('no log line holds one either, nor an API key', async () => {
    const logs = h.t.logs.join('\n');
    expect(h.t.logs.length).toBeGreaterThan(10);
    for (const s of secrets()) expect({ leaked: s, found: logs.includes(s) }).toEqual({ leaked: s, found: false });
    expect(logs).not.toContain(client);
  });

  it('rotates keys: old values stay readable, rekey moves them to the newest key', async () => {
    // A keyed submission whose stored reply is sealed with k1, to be replayed after k1 is gone.
    const replayBody = { name: people[0].name, id_card: people[0].id_card, reference: 'rekey-replay' };
    const firstReply = await h.t.http
      .post('/v1/verifications')
      .set(as(client))
      .set('Idempotency-Key', 'rekey-replay')
      .send(replayBody)
      .expect(201);
    const rotated = await startTestApp({ pii: { keys: [k1, k2], hmacKey } }, h.t.db);
    try {
      const compliance = (await rotated.keyFor('compliance')).key;
      const list = await rotated.http.get('/v1/verifications').query({ limit: 200 }).set(as(compliance)).expect(200);
      expect(list.body.items.map((v: { name: string }) => v.name)).toEqual(expect.arrayContaining([people[0].name]));

      const result = await rotated.app.get(PiiMaintenanceService).rekey(SYSTEM_CLI);
      expect(result).toEqual({ rekeyed: expect.any(Number), keyId: 'k2' });
      expect(result.rekeyed).toBeGreaterThan(0);
      const leftovers = await rotated.prisma.verification.count({
        where: {
          OR: [
            { nameEnc: { startsWith: 'v1.k1.' } },
            { idCardEnc: { startsWith: 'v1.k1.' } },
            { ocrEnc: { startsWith: 'v1.k1.' } },
          ],
        },
      });
      expect(leftovers).toBe(0);
      // Stored idempotent replies are re-sealed too.
      expect(await rotated.prisma.idempotencyRecord.count({ where: { responseEnc: { startsWith: 'v1.k1.' } } })).toBe(
        0,
      );
      expect(await rotated.prisma.auditEvent.count({ where: { action: 'pii.rekeyed' } })).toBeGreaterThan(0);
    } finally {
      await rotated.close();
    }
    // k1 can now leave the ring.
    const onlyK2 = await startTestApp({ pii: { keys: [k2], hmacKey } }, h.t.db);
    try {
      const compliance = (await onlyK2.keyFor('compliance')).key;
      const found = await onlyK2.http
        .post('/v1/verifications/search')
        .set(as(compliance))
        .send({ id_card: people[0].id_card })
        .expect(200);
      expect(found.body.items[0].name).toBe(people[0].name);
      // A retry after k1 left: the re-sealed reply, replayed (before, a 500).
      const replay = await onlyK2.http
        .post('/v1/verifications')
        .set(as(client))
        .set('Idempotency-Key', 'rekey-replay')
        .send(replayBody)
        .expect(200);
      expect(replay.body).toEqual(firstReply.body);
    } finally {
      await onlyK2.close();
    }
  });

  it('purges personal data past retention (CLI), keeping hashes, codes and charges, and audits it', async () => {
    const c = new pg.Client({ connectionString: h.t.db.adminUrl });
    await c.connect();
    await c.query(`UPDATE verifications SET created_at = now() - interval '40 days' WHERE reference IS NULL`);
    await c.end();
    const old = await h.t.prisma.verification.count({ where: { reference: null } });

    const env = {
      ...databaseEnv(h.t.db),
      PII_KEYS: `k2:${k2.key.toString('base64')}`,
      PII_HMAC_KEY: hmacKey.toString('base64'),
      AUDIT_SIGNING_KEY: randomBytes(32).toString('base64'),
    };
    const res = await runCli(['pii', 'purge', '--days', '30', '--json'], env);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout.trim().split('\n').pop()!)).toEqual({ purged: old, cutoff: expect.any(String) });

    const purged = await h.t.prisma.verification.findMany({ where: { reference: null } });
    for (const v of purged) {
      expect(v).toMatchObject({ nameEnc: null, idCardEnc: null, ocrEnc: null, piiPurgedAt: expect.any(Date) });
      expect(v.result === null || typeof v.result === 'string').toBe(true);
    }
    expect(purged.some((v) => v.idCardHmac !== null && v.chargeStatus === 'charged')).toBe(true);
    expect(await h.t.prisma.auditEvent.count({ where: { action: 'pii.purged' } })).toBeGreaterThan(0);

    const again = await runCli(['pii', 'purge', '--days', '30', '--json'], env);
    expect(JSON.parse(again.stdout.trim().split('\n').pop()!).purged).toBe(0);
    const missing = await runCli(['pii', 'purge'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/--days/);
  });

  it('the sweeper turns stale pending verifications into unknown, once, with an audit event', async () => {
    const clientRow = await h.t.prisma.client.findFirstOrThrow({ where: { name: 'pii' } });
    const key = await h.t.prisma.apiKey.findFirstOrThrow({ where: { clientId: clientRow.id } });
    const stale = await h.t.prisma.verification.create({
      data: {
        clientId: clientRow.id,
        apiKeyId: key.id,
        channel: 'api',
        mode: 'name_id_card',
        status: 'pending',
        chargeStatus: 'unknown',
        unitPrice: 50,
        currency: 'CNY',
      },
    });
    // The database stamps created_at on insert (migration *_verification_clock): age the row after.
    await h.t.prisma.verification.update({
      where: { id: stale.id },
      data: { createdAt: new Date(Date.now() - 3_600_000) },
    });
    const fresh = await h.t.prisma.verification.create({
      data: {
        clientId: clientRow.id,
        apiKeyId: key.id,
        channel: 'api',
        mode: 'name_id_card',
        status: 'pending',
        chargeStatus: 'unknown',
        unitPrice: 50,
        currency: 'CNY',
      },
    });
    const sweeper = h.t.app.get(VerificationSweeper);
    expect(await sweeper.sweep()).toBe(1);
    expect(await sweeper.sweep()).toBe(0);
    expect(await h.t.prisma.verification.findUniqueOrThrow({ where: { id: stale.id } })).toMatchObject({
      status: 'unknown',
      chargeStatus: 'unknown',
      amount: null,
      upstreamError: 'abandoned',
    });
    expect((await h.t.prisma.verification.findUniqueOrThrow({ where: { id: fresh.id } })).status).toBe('pending');
    const events = await h.t.prisma.auditEvent.findMany({ where: { targetId: stale.id } });
    expect(events.map((e) => [e.action, e.actorType, e.actorId])).toEqual([
      ['verification.unknown', 'system', 'sweeper'],
    ]);
    await h.t.prisma.verification.update({
      where: { id: fresh.id },
      data: { status: 'failed', chargeStatus: 'not_charged', amount: 0 },
    });
  });
});
