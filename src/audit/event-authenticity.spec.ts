import { buildEventRow, wellFormed } from './audit-event-row';
import { eventCreateData } from './audit-rows';
import { canonicalEvent, ChainedEventFields } from './canonical';
import {
  AuthenticityRules,
  AuthenticityWalk,
  describeDuration,
  eventMac,
  idTimeProblem,
  MAC_REQUIRED_FROM,
  macCanonical,
  macMatches,
  macProblem,
  orderProblem,
  UuidV7Source,
  uuidV7Time,
  WalkedEvent,
} from './event-authenticity';

/** canonical.spec's sample event (copied: importing a spec file would run its tests here too). */
function sampleEvent(overrides: Partial<ChainedEventFields> = {}): ChainedEventFields {
  return {
    id: '0190f5a2-7b1c-7d3e-8f40-123456789abc',
    occurredAt: new Date('2026-01-02T03:04:05.678Z'),
    actorType: 'api_key',
    actorId: '0190f5a2-0000-7000-8000-000000000001',
    actorRole: 'admin',
    action: 'api_key.created',
    targetType: 'api_key',
    targetId: '0190f5a2-0000-7000-8000-000000000002',
    outcome: 'success',
    requestId: 'req-1',
    ip: '127.0.0.1',
    details: { role: 'client', key_prefix: 'idg_test_AbCd1234', nested: { b: 2, a: [1, 'x', null] } },
    idCardHmac: null,
    ...overrides,
  };
}

const KEY = Buffer.alloc(32, 7);
const OTHER_KEY = Buffer.alloc(32, 8);
const MINUTE = 60_000;

/** The sample event of canonical.spec as idgate would write it now: a UUIDv7 made at its time, and its MAC. */
function written(at: Date, overrides: Partial<WalkedEvent> = {}): WalkedEvent {
  const id = new UuidV7Source(() => at.getTime()).next();
  const { occurredAt: _time, ...fields } = sampleEvent({ id });
  const event = { ...fields, ...overrides, occurredAt: at };
  return { ...event, mac: overrides.mac === undefined ? eventMac(KEY, event) : overrides.mac };
}

const rules: AuthenticityRules = { macKey: KEY, toleranceMs: 5 * MINUTE, macRequiredFrom: MAC_REQUIRED_FROM };
const after = (ms: number) => new Date(MAC_REQUIRED_FROM.getTime() + ms);

describe('event MAC', () => {
  it('is over a label and the chained fields without occurred_at, in the chain canonical JSON', () => {
    const { occurredAt: _time, ...fields } = sampleEvent();
    expect(macCanonical(fields)).toBe(
      'idgate-audit-event-mac/v1\n' +
        '{"action":"api_key.created","actor":{"id":"0190f5a2-0000-7000-8000-000000000001","role":"admin","type":"api_key"},' +
        '"details":{"key_prefix":"idg_test_AbCd1234","nested":{"a":[1,"x",null],"b":2},"role":"client"},' +
        '"id":"0190f5a2-7b1c-7d3e-8f40-123456789abc","id_card_hmac":null,"ip":"127.0.0.1",' +
        '"outcome":"success","request_id":"req-1",' +
        '"target":{"id":"0190f5a2-0000-7000-8000-000000000002","type":"api_key"}}',
    );
    // The chain's canonical form is that plus occurred_at: the MAC changes nothing the chain hashes.
    expect(canonicalEvent(sampleEvent())).toBe(
      macCanonical(fields).split('\n')[1].replace('"outcome"', '"occurred_at":"2026-01-02T03:04:05.678Z","outcome"'),
    );
  });

  it('is lowercase hex HMAC-SHA256 under the key (vector computed with openssl)', () => {
    // printf '%s' "$(macCanonical)" | openssl dgst -sha256 -mac HMAC -macopt hexkey:0707…07 (32 bytes)
    const { occurredAt: _time, ...fields } = sampleEvent();
    expect(eventMac(KEY, fields)).toBe('62c2f8be8d9c5603d7e5e890e16295c3c89816634610ea9df31f385ef1c80fe5');
  });

  it('changes with every field idgate sets, and not with the time or txid the database sets', () => {
    const base = written(after(MINUTE));
    const changes: Partial<WalkedEvent>[] = [
      { id: '0190f5a2-7b1c-7d3e-8f40-123456789abd' },
      { actorType: 'system' },
      { actorId: 'other' },
      { actorRole: 'finance' },
      { action: 'verification.viewed' },
      { targetType: 'verification' },
      { targetId: 'x' },
      { outcome: 'denied' },
      { requestId: 'req-2' },
      { ip: '10.0.0.1' },
      { details: { role: 'client', key_prefix: 'idg_test_AbCd1234', nested: { b: 2, a: [1, 'x'] } } },
      { idCardHmac: 'a'.repeat(64) },
    ];
    for (const change of changes)
      expect({ change, ok: macMatches(KEY, { ...base, ...change }, base.mac) }).toEqual({ change, ok: false });
    const later: WalkedEvent = { ...base, occurredAt: after(2 * MINUTE) };
    expect(macMatches(KEY, later, base.mac)).toBe(true);
    expect(macMatches(OTHER_KEY, base, base.mac)).toBe(false);
    expect(macMatches(KEY, base, base.mac?.toUpperCase() ?? null)).toBe(false);
    expect(macMatches(KEY, base, null)).toBe(false);
  });

  it('is what eventCreateData stores, over the id it makes, and it sets no occurred_at', () => {
    const row = buildEventRow(
      { actor: { type: 'api_key', id: 'k', role: 'finance' }, requestId: 'r', ip: '::ffff:10.1.2.3' },
      { action: 'verification.viewed', target: { type: 'verification', id: 'v' }, details: { b: 1, a: 2 } },
    );
    const data = eventCreateData(row, KEY);
    expect(uuidV7Time(data.id as string)).toBeGreaterThan(Date.now() - MINUTE);
    expect(data.mac).toBe(eventMac(KEY, { ...row, id: data.id as string }));
    expect(data).not.toHaveProperty('occurredAt');
    expect(eventCreateData(row, KEY).id).not.toBe(data.id);
  });

  it('covers what the database stores: lone surrogates become U+FFFD before the MAC is computed', () => {
    expect(wellFormed('a\ud800b\udc00c\ud83d\ude00')).toBe('a\ufffdb\ufffdc\ud83d\ude00');
    const row = buildEventRow(
      { actor: { type: 'api_key', id: `${'x'.repeat(99)}\ud83d\ude00`, role: null } },
      { action: 'auth.failed', outcome: 'failure' },
    );
    // Clipped to 100 UTF-16 units, the emoji's pair was cut: stored (and MAC'd) as U+FFFD.
    expect(row.actorId).toBe(`${'x'.repeat(99)}\ufffd`);
    expect(Buffer.from(row.actorId as string, 'utf8').toString('utf8')).toBe(row.actorId);
  });
});

describe('UUIDv7 ids', () => {
  it('carry the time, version 7 and the RFC variant', () => {
    const at = Date.UTC(2026, 10, 30, 20, 3, 15, 123);
    const id = new UuidV7Source(() => at).next();
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(uuidV7Time(id)).toBe(at);
    expect(uuidV7Time('0f5b9a1e-3c2d-4e5f-8a7b-6c5d4e3f2a1b')).toBeNull(); // v4
  });

  it('increase within a millisecond, past the counter, and when the clock steps back', () => {
    let now = 1_000_000;
    const source = new UuidV7Source(() => now);
    const ids = Array.from({ length: 5000 }, () => source.next());
    now -= 10; // the clock steps back
    ids.push(source.next(), source.next());
    now += 1000;
    ids.push(source.next());
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    // 5,000 ids in one millisecond overflow the 12-bit counter: the time moves on by a millisecond or two.
    expect(uuidV7Time(ids[4999])).toBeGreaterThan(1_000_000);
    expect(uuidV7Time(ids[ids.length - 1])).toBe(1_000_990);
  });
});

describe('the MAC rule', () => {
  const bare = (at: Date): WalkedEvent => ({ ...written(at), mac: null });

  it('accepts a valid MAC and flags a wrong one whatever the time', () => {
    expect(macProblem(rules, written(after(MINUTE)), null)).toEqual({ valid: true, problem: null });
    const wrong = { ...written(after(-MINUTE)), mac: 'ab'.repeat(32) };
    expect(macProblem(rules, wrong, null)).toEqual({ valid: false, problem: expect.stringMatching(/does not match/) });
    const copied = { ...written(after(MINUTE), { outcome: 'denied' }), mac: written(after(MINUTE)).mac };
    expect(macProblem(rules, copied, null).problem).toMatch(/not written by idgate as it stands/);
  });

  it('requires a MAC from the cut-over on', () => {
    expect(macProblem(rules, bare(after(0)), null).problem).toMatch(
      /not written by idgate: it carries no MAC, which every event idgate writes has carried since 2026-11-30T20:03:15.000Z/,
    );
    expect(macProblem(rules, bare(after(-1)), null)).toEqual({ valid: false, problem: null });
  });

  it('does not let an event without one follow an event that has one, whatever its time', () => {
    expect(macProblem(rules, bare(after(-MINUTE)), 41).problem).toMatch(/sealed after seq 41, which does/);
  });
});

describe('the time rules', () => {
  it('flags an event earlier than the sealed tail by more than the tolerance, and names the tail', () => {
    const tail = { seq: 9, at: new Date('2026-12-01T10:00:00.000Z') };
    expect(orderProblem(null, new Date(0), 1000)).toBeNull();
    expect(orderProblem(tail, new Date('2026-12-01T09:55:00.000Z'), 5 * MINUTE)).toBeNull(); // exactly the tolerance
    expect(orderProblem(tail, new Date('2026-12-01T10:30:00.000Z'), 5 * MINUTE)).toBeNull(); // later is fine
    expect(orderProblem(tail, new Date('2026-12-01T09:48:00.000Z'), 5 * MINUTE)).toBe(
      'occurred at 2026-12-01T09:48:00.000Z, 12 min before seq 9 (2026-12-01T10:00:00.000Z) which was sealed ahead of it: ' +
        'more than the 5 min tolerance, so it was back-dated, or a transaction sealed ahead of it ran longer than the tolerance',
    );
  });

  it("binds a MAC'd event's time to its id's time", () => {
    const event = written(after(MINUTE));
    expect(idTimeProblem(event, 5 * MINUTE)).toBeNull();
    expect(idTimeProblem({ ...event, occurredAt: after(MINUTE - 5 * MINUTE) }, 5 * MINUTE)).toBeNull();
    expect(idTimeProblem({ ...event, occurredAt: after(MINUTE - 12 * MINUTE) }, 5 * MINUTE)).toMatch(
      /12 min away from when idgate made its id .*: its time was altered/,
    );
    expect(idTimeProblem({ ...event, id: '0f5b9a1e-3c2d-4e5f-8a7b-6c5d4e3f2a1b' }, 5 * MINUTE)).toBeNull();
  });

  it('describes durations for people', () => {
    expect([1500, 300_000, 723_400, 719_998].map(describeDuration)).toEqual(['1.5 s', '5 min', '12 min 3 s', '12 min']);
  });
});

describe('a walk', () => {
  it('passes what idgate writes, in order or within the tolerance, and legacy events before the first MAC', () => {
    const walk = new AuthenticityWalk(rules);
    const legacy = { ...written(after(-10 * MINUTE)), mac: null };
    expect(walk.check(1, legacy)).toBeNull();
    expect(walk.check(2, written(after(MINUTE)))).toBeNull();
    expect(walk.check(3, written(after(3 * MINUTE)))).toBeNull();
    // Sealed after seq 3 but written 2 minutes before it (a transaction open that long): within 5 minutes.
    expect(walk.check(4, written(after(MINUTE)))).toBeNull();
  });

  it('reports every problem of the first bad event in one reason, at its seq', () => {
    const walk = new AuthenticityWalk(rules);
    walk.check(1, written(after(20 * MINUTE)));
    // Fabricated with the trigger off: no MAC, and 12 minutes before the tail.
    const forged = { ...written(after(8 * MINUTE)), mac: null };
    expect(walk.check(2, forged)).toEqual({
      seq: 2,
      reason: expect.stringMatching(
        new RegExp(
          `^event ${forged.id} was not written by idgate: it carries no MAC.*; and it occurred at .*, 12 min before seq 1 `,
        ),
      ),
    });
  });

  it('keeps the latest time as the tail, so a slow drift back is still caught', () => {
    const walk = new AuthenticityWalk(rules);
    expect(walk.check(1, written(after(10 * MINUTE)))).toBeNull();
    expect(walk.check(2, written(after(6 * MINUTE)))).toBeNull();
    expect(walk.check(3, written(after(4 * MINUTE)))?.reason).toMatch(/6 min before seq 1 /);
  });

  it('starting mid-chain, takes the time and the MAC of the event before its start from `after`', () => {
    const backDated = { ...written(after(-MINUTE)), mac: null };
    // Knowing nothing before seq 8, a pre-cut-over row without a MAC looks like one written before MACs existed.
    expect(new AuthenticityWalk(rules).check(8, backDated)).toBeNull();
    const fromAfter = new AuthenticityWalk(rules).after(7, written(after(10 * MINUTE))).check(8, backDated);
    expect(fromAfter?.reason).toMatch(/sealed after seq 7, which does.*; and it occurred at .*, 11 min before seq 7 /);
    // A legacy event before the start keeps legacy rows after it legacy.
    const legacy = { ...written(after(-3 * MINUTE)), mac: null };
    expect(new AuthenticityWalk(rules).after(7, legacy).check(8, backDated)).toBeNull();
  });

  it('flags a legacy-looking event once a MAC was seen, and a genuine event whose time was moved', () => {
    const walk = new AuthenticityWalk(rules);
    expect(walk.check(1, written(after(MINUTE)))).toBeNull();
    expect(walk.check(2, { ...written(after(-MINUTE)), mac: null })?.reason).toMatch(/sealed after seq 1, which does/);
    const moved = { ...written(after(2 * MINUTE)), occurredAt: after(20 * MINUTE) };
    expect(new AuthenticityWalk(rules).check(7, moved)).toEqual({
      seq: 7,
      reason: expect.stringMatching(/^event \S+ has a time .* 18 min away from when idgate made its id/),
    });
  });
});
