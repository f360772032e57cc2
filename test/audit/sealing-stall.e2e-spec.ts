import pg from 'pg';
import { SEALER_LOCK } from '../../src/audit/audit-locks';
import { startTestApp, TestApp } from '../support/test-app';

/*
 * Events are protected by the chain once sealed. A database superuser who stops sealing (holds
 * the sealing lock, or keeps a transaction open under new events) could delete events nobody has
 * chained yet; that cannot be prevented from inside the database, so it must be loud outside it:
 * an error log line and the security-alert metric, while it lasts, and quiet again after.
 * Budgets are generous (a busy machine); nothing here races a wall clock.
 */
describe('audit sealing held up by someone with database access', () => {
  let t: TestApp;
  let superuser: pg.Client;
  let adminKey: string;
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });

  beforeAll(async () => {
    t = await startTestApp({ audit: { sealStallMs: 1500 } });
    superuser = new pg.Client({ connectionString: t.db.adminUrl });
    await superuser.connect();
    adminKey = (await t.keyFor('admin')).key;
  });
  afterAll(async () => {
    await superuser?.query('ROLLBACK').catch(() => undefined);
    await superuser?.end();
    await t?.close();
  });

  const stalledAlerts = async (): Promise<number> => {
    const text = (await t.http.get('/metrics').expect(200)).text;
    const line = text
      .split('\n')
      .find((l) => l.startsWith('idgate_security_alerts_total{reason="audit_sealing_stalled"}'));
    return Number(line?.split(' ').pop() ?? 0);
  };
  const stallLogs = (cause: string) =>
    t.logs.filter((l) => l.includes('audit sealing stalled') && l.includes(`"cause":"${cause}"`)).length;
  const resumedLogs = () => t.logs.filter((l) => l.includes('audit sealing resumed')).length;
  async function until(what: () => boolean | Promise<boolean>, budgetMs = 60_000): Promise<void> {
    const giveUpAt = Date.now() + budgetMs;
    while (!(await what())) {
      if (Date.now() > giveUpAt) throw new Error('condition not reached within the budget');
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  /** An event that stays unsealed while sealing is held up: an admin key made through the API. */
  const writeEvent = (name: string) =>
    t.http.post('/v1/api-keys').set(as(adminKey)).send({ role: 'finance', name }).expect(201);

  it('the sealing lock held: reported in the log and the metric, then resumed when released', async () => {
    const before = await stalledAlerts();
    await superuser.query('BEGIN');
    await superuser.query('SELECT pg_advisory_xact_lock($1::bigint)', [SEALER_LOCK]);
    await writeEvent('made while sealing is held');
    await until(() => stallLogs('lock_held') > 0);
    expect(await stalledAlerts()).toBeGreaterThan(before);
    // The log line names the cause and the time, nothing else of the events.
    const line = t.logs.find((l) => l.includes('audit sealing stalled'))!;
    expect(JSON.parse(line)).toMatchObject({ level: 50, cause: 'lock_held', since: expect.any(String) });

    await superuser.query('COMMIT');
    const resumed = resumedLogs();
    await until(() => resumedLogs() > resumed);
    // The alert itself is on the trail, sealed once sealing runs again.
    await until(async () => {
      const events = await t.prisma.auditEvent.findMany({
        where: { action: 'security.alert' },
        include: { link: true },
      });
      return events.some(
        (e) => (e.details as { reason?: string }).reason === 'audit_sealing_stalled' && e.link !== null,
      );
    });
  });

  it('an open transaction under new events: reported as such, and resumed when it ends', async () => {
    const before = stallLogs('open_transaction');
    await superuser.query('BEGIN');
    // An id of its own: every transaction that starts after it waits below the sealer's watermark.
    await superuser.query('SELECT txid_current()');
    await writeEvent('made under an open transaction');
    await until(() => stallLogs('open_transaction') > before);

    await superuser.query('COMMIT');
    const resumed = resumedLogs();
    await until(() => resumedLogs() > resumed);
  });
});
