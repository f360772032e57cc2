import net from 'node:net';
import { startSandbox, SandboxHandle } from '../../src/upstream/sandbox/sandbox-server';
import { createTestDatabase, TestDatabase } from '../support/databases';
import { startTestApp, TestApp } from '../support/test-app';
import { KNOWN } from '../support/verification-app';

/**
 * A TCP relay between the app and PostgreSQL that can cut a connection at the moment the
 * server's reply to one statement comes back: the statement has run and committed (an
 * autocommit statement commits before its reply is sent), and the app never hears of it.
 */
async function startRelay(databaseUrl: string) {
  const target = new URL(databaseUrl);
  let cutOn: Buffer | null = null;
  let cuts = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const db = net.connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(db);
    const end = () => {
      client.destroy();
      db.destroy();
    };
    client.on('error', end).on('close', end);
    db.on('error', end).on('close', end);
    client.pipe(db);
    db.on('data', (chunk: Buffer) => {
      if (cutOn && chunk.includes(cutOn)) {
        cutOn = null;
        cuts++;
        end(); // the reply is lost; what the statement did stays done
        return;
      }
      client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    /** Cuts the connection that next receives a reply holding these bytes. */
    cutReplyHolding(bytes: Buffer) {
      cutOn = bytes;
    },
    get cuts() {
      return cuts;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The record statement's reply describes one column, created_at (RowDescription: count 1, then the name). */
const RECORD_REPLY = Buffer.concat([Buffer.from([0, 1]), Buffer.from('created_at\0')]);

describe('a reply lost after the record statement committed', () => {
  let db: TestDatabase;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  let sandbox: SandboxHandle;
  let t: TestApp;
  let key: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    relay = await startRelay(db.url);
    sandbox = await startSandbox({ port: 0, dailyLimits: false });
    t = await startTestApp({ upstream: { timeoutMs: 1500, baseUrl: sandbox.url } }, { ...db, url: relay.url });
    key = (await t.keyFor('client', 'lost-reply')).key;
  });
  afterAll(async () => {
    await t?.close();
    await sandbox?.close();
    await relay?.close();
    await db?.drop();
  });

  it.each([
    ['without an Idempotency-Key', undefined],
    ['with an Idempotency-Key', 'lost-reply-key-1'],
  ])('%s: the verification goes on to its call and is answered once; nothing is charged twice', async (_, idem) => {
    const person = idem ? KNOWN[81] : KNOWN[80];
    const reference = `lost-reply-${idem ?? 'none'}`;
    const callsBefore = sandbox.stats().calls;
    relay.cutReplyHolding(RECORD_REPLY);
    const cutsBefore = relay.cuts;
    const send = () => {
      const req = t.http
        .post('/v1/verifications')
        .set('Authorization', `Bearer ${key}`)
        .send({ name: person.name, id_card: person.id_card, reference });
      return idem ? req.set('Idempotency-Key', idem) : req;
    };
    const first = await send();
    expect(relay.cuts).toBe(cutsBefore + 1); // the reply really was lost
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ status: 'completed', result: '0', charged: true, reference });
    expect(sandbox.stats().calls).toBe(callsBefore + 1);

    const rows = await t.prisma.verification.findMany({ where: { reference } });
    expect(rows.map((r) => [r.id, r.status, r.chargeStatus])).toEqual([[first.body.id, 'completed', 'charged']]);
    const events = await t.prisma.auditEvent.findMany({ where: { targetId: first.body.id }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.action)).toEqual(['verification.created', 'verification.completed']);

    if (idem) {
      const again = await send().expect(200);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.body.id).toBe(first.body.id);
      expect(sandbox.stats().calls).toBe(callsBefore + 1);
    }
  });
});
