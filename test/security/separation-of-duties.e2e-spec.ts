import { randomBytes } from 'node:crypto';
import { databaseEnv } from '../support/databases';
import { runCli } from '../support/processes';
import { startTestApp, TestApp } from '../support/test-app';

jest.setTimeout(120_000);

/**
 * Separation of duties (issue 12 point 15): a key that reads personal data in full
 * (compliance) is never made by one admin key alone. From the CLI (shell access) it is
 * allowed; through the API it needs a second admin key's approval — a key older than the
 * request, not descended from the asking key — and only the asking key receives it,
 * once. Every such key, and every refused attempt, raises a security alert.
 */
describe('keys that read personal data in full', () => {
  let t: TestApp;
  let alice: { key: string; id: string };
  let bob: { key: string; id: string };
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });

  beforeAll(async () => {
    t = await startTestApp();
    alice = await t.keyFor('admin');
    bob = await t.keyFor('admin');
  });
  afterAll(() => t.close());

  const alerts = async (reason: string) =>
    (await t.prisma.auditEvent.findMany({ where: { action: 'security.alert' }, orderBy: { id: 'asc' } })).filter(
      (e) => (e.details as { reason?: string }).reason === reason,
    );
  const metric = async (reason: string) => {
    const text = (await t.http.get('/metrics')).text;
    const m = new RegExp(`idgate_security_alerts_total\\{reason="${reason}"\\} (\\d+)`).exec(text);
    return Number(m?.[1] ?? NaN);
  };

  it('one admin key cannot mint one through POST /v1/api-keys: 403, no key, an alert', async () => {
    const before = await metric('full_pii_key_refused');
    const res = await t.http
      .post('/v1/api-keys')
      .set(as(alice.key))
      .send({ role: 'compliance', name: 'sneaky' })
      .expect(403);
    expect(res.body.detail).toMatch(/CLI|api-key-requests/);
    expect(await t.prisma.apiKey.count({ where: { role: 'compliance', name: 'sneaky' } })).toBe(0);
    expect(await metric('full_pii_key_refused')).toBe(before + 1);
    const [alert] = (await alerts('full_pii_key_refused')).slice(-1);
    expect(alert).toMatchObject({ actorId: alice.id, outcome: 'denied' });
    // Other roles are still made by one admin key.
    await t.http.post('/v1/api-keys').set(as(alice.key)).send({ role: 'finance', name: 'fine' }).expect(201);
  });

  it('the CLI (shell access) makes one, and says so with an alert', async () => {
    const env = {
      ...databaseEnv(t.db),
      PII_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      PII_HMAC_KEY: randomBytes(32).toString('base64'),
      AUDIT_SIGNING_KEY: randomBytes(32).toString('base64'),
    };
    const out = await runCli(['keys', 'create', '--role', 'compliance', '--name', 'officer', '--json'], env);
    expect(out.code).toBe(0);
    const issued = JSON.parse(out.stdout.trim().split('\n').pop()!) as { id: string; role: string };
    expect(issued.role).toBe('compliance');
    const created = (await alerts('full_pii_key_created')).filter((a) => a.targetId === issued.id);
    expect(created).toHaveLength(1);
    expect(created[0].details).toMatchObject({ channel: 'cli', role: 'compliance' });
  });

  it('through the API: ask, a second older unrelated admin key approves, the asking key receives it once', async () => {
    // Keys alice made (directly, or through a key she made), before her request.
    const carol = (
      await t.http.post('/v1/api-keys').set(as(alice.key)).send({ role: 'admin', name: 'carol' }).expect(201)
    ).body as { key: string; id: string };
    const dave = (
      await t.http.post('/v1/api-keys').set(as(carol.key)).send({ role: 'admin', name: 'dave' }).expect(201)
    ).body as { key: string; id: string };
    const finance = (
      await t.http.post('/v1/api-keys').set(as(bob.key)).send({ role: 'finance', name: 'fin' }).expect(201)
    ).body as { key: string };

    const asked = await t.http
      .post('/v1/api-key-requests')
      .set(as(alice.key))
      .send({ role: 'compliance', name: 'new officer' })
      .expect(201);
    expect(asked.body).toMatchObject({ status: 'pending', role: 'compliance', requested_by_key_id: alice.id });
    const id = asked.body.id as string;
    // A key made after the request cannot approve it either, even by an unrelated admin.
    const erin = (await t.http.post('/v1/api-keys').set(as(bob.key)).send({ role: 'admin', name: 'erin' }).expect(201))
      .body as { key: string };

    const refusals: Array<[string, string, RegExp]> = [
      ['the asking key', alice.key, /key that made it/],
      ['a key the asking key made', carol.key, /created by the requesting key/],
      ['a key made by a key the asking key made', dave.key, /created by the requesting key/],
      ['a key younger than the request', erin.key, /older than the request/],
    ];
    for (const [who, key, reason] of refusals) {
      const res = await t.http.post(`/v1/api-key-requests/${id}/approve`).set(as(key));
      expect({ who, status: res.status, detail: res.body.detail }).toMatchObject({
        who,
        status: 403,
        detail: expect.stringMatching(reason),
      });
    }
    await t.http.post(`/v1/api-key-requests/${id}/approve`).set(as(finance.key)).expect(403);
    // Not approved yet: nothing to receive.
    await t.http.post(`/v1/api-key-requests/${id}/issue`).set(as(alice.key)).expect(403);

    const approved = await t.http.post(`/v1/api-key-requests/${id}/approve`).set(as(bob.key)).expect(200);
    expect(approved.body).toMatchObject({ status: 'approved', approved_by_key_id: bob.id });
    await t.http.post(`/v1/api-key-requests/${id}/approve`).set(as(bob.key)).expect(403); // once

    // Only the asking key receives it.
    await t.http.post(`/v1/api-key-requests/${id}/issue`).set(as(bob.key)).expect(403);
    const issued = await t.http.post(`/v1/api-key-requests/${id}/issue`).set(as(alice.key)).expect(201);
    expect(issued.body).toMatchObject({ role: 'compliance', name: 'new officer' });
    const me = await t.http.get('/v1/me').set(as(issued.body.key)).expect(200);
    expect(me.body.role).toBe('compliance');
    await t.http.post(`/v1/api-key-requests/${id}/issue`).set(as(alice.key)).expect(403); // once

    const created = (await alerts('full_pii_key_created')).filter((a) => a.targetId === issued.body.id);
    expect(created).toHaveLength(1);
    expect(created[0].details).toMatchObject({
      channel: 'api_with_approval',
      approval_id: id,
      approved_by_key_id: bob.id,
    });
    const trail = await t.prisma.auditEvent.findMany({
      where: { targetType: 'approval_request', targetId: id },
      orderBy: { id: 'asc' },
    });
    expect(trail.map((e) => `${e.action}:${e.outcome}`)).toEqual([
      'approval.requested:success',
      ...refusals.map(() => 'approval.approved:denied'),
      'approval.approved:success',
      'approval.approved:denied',
    ]);
    const listed = await t.http.get('/v1/api-key-requests').set(as(bob.key)).expect(200);
    expect(listed.body.items.find((r: { id: string }) => r.id === id)).toMatchObject({ status: 'carried_out' });
  });

  it('one admin key cannot approve through keys it made: not for its child, not between two of its children', async () => {
    const make = async (by: string, name: string) =>
      (await t.http.post('/v1/api-keys').set(as(by)).send({ role: 'admin', name }).expect(201)).body as {
        key: string;
        id: string;
      };
    const ask = async (by: string) =>
      (
        await t.http
          .post('/v1/api-key-requests')
          .set(as(by))
          .send({ role: 'compliance', name: 'via a child' })
          .expect(201)
      ).body.id as string;
    // Parent: alice makes a2; a2 asks; alice approves her own child's request.
    const a2 = await make(alice.key, 'a2');
    const fromChild = await ask(a2.key);
    const parent = await t.http.post(`/v1/api-key-requests/${fromChild}/approve`).set(as(alice.key)).expect(403);
    expect(parent.body.detail).toMatch(/created the requesting key/);
    // Siblings: alice makes s1 and s2; s1 asks, s2 approves.
    const s1 = await make(alice.key, 's1');
    const s2 = await make(alice.key, 's2');
    const fromSibling = await ask(s1.key);
    const sibling = await t.http.post(`/v1/api-key-requests/${fromSibling}/approve`).set(as(s2.key)).expect(403);
    expect(sibling.body.detail).toMatch(/same key/);
    // Cousins: a2 makes c1, s1 makes c2 (both from alice).
    const c1 = await make(a2.key, 'c1');
    const c2 = await make(s1.key, 'c2');
    const fromCousin = await ask(c1.key);
    await t.http.post(`/v1/api-key-requests/${fromCousin}/approve`).set(as(c2.key)).expect(403);
    // An admin key of another origin (bob, made from the shell) may approve any of them.
    await t.http.post(`/v1/api-key-requests/${fromSibling}/approve`).set(as(bob.key)).expect(200);
    await t.http.post(`/v1/api-key-requests/${fromSibling}/issue`).set(as(s1.key)).expect(201);
  });
});
