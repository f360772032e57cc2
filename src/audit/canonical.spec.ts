import { createHash } from 'node:crypto';
import { canonicalEvent, canonicalJson, ChainedEventFields, chainHash, eventHash, GENESIS_HASH } from './canonical';
import { ChainWalker } from './chain-walker';

export function sampleEvent(overrides: Partial<ChainedEventFields> = {}): ChainedEventFields {
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

describe('canonical form', () => {
  it('sorts keys at every depth, has no whitespace, keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: 'é"\n' } })).toBe(
      '{"a":{"c":"é\\"\\n","d":[3,{"y":null,"z":true}]},"b":1}',
    );
  });

  it('refuses values JSON cannot carry faithfully', () => {
    expect(() => canonicalJson(Number.NaN)).toThrow(/non-finite/);
    expect(() => canonicalJson({ a: Infinity })).toThrow(/non-finite/);
  });

  it('is the documented field list, with occurred_at as ISO 8601 UTC milliseconds', () => {
    expect(canonicalEvent(sampleEvent())).toBe(
      '{"action":"api_key.created","actor":{"id":"0190f5a2-0000-7000-8000-000000000001","role":"admin","type":"api_key"},' +
        '"details":{"key_prefix":"idg_test_AbCd1234","nested":{"a":[1,"x",null],"b":2},"role":"client"},' +
        '"id":"0190f5a2-7b1c-7d3e-8f40-123456789abc","id_card_hmac":null,"ip":"127.0.0.1",' +
        '"occurred_at":"2026-01-02T03:04:05.678Z","outcome":"success","request_id":"req-1",' +
        '"target":{"id":"0190f5a2-0000-7000-8000-000000000002","type":"api_key"}}',
    );
  });

  it('gives the same form for a Date and its ISO string (API and database readers agree)', () => {
    expect(canonicalEvent(sampleEvent({ occurredAt: '2026-01-02T03:04:05.678Z' }))).toBe(canonicalEvent(sampleEvent()));
  });

  it('hashes sha256_hex(prev_hash + "\\n" + canonical) from a genesis of 64 zeros', () => {
    const canonical = canonicalEvent(sampleEvent());
    const expected = createHash('sha256')
      .update(`${'0'.repeat(64)}\n${canonical}`)
      .digest('hex');
    expect(GENESIS_HASH).toBe('0'.repeat(64));
    expect(chainHash(GENESIS_HASH, canonical)).toBe(expected);
    expect(eventHash(GENESIS_HASH, sampleEvent())).toBe(expected);
  });

  it('changes the hash when any hashed field changes', () => {
    const base = eventHash(GENESIS_HASH, sampleEvent());
    const variants: Partial<ChainedEventFields>[] = [
      { outcome: 'failure' },
      { actorRole: 'compliance' },
      { details: { role: 'admin' } },
      { occurredAt: new Date('2026-01-02T03:04:05.679Z') },
      { idCardHmac: 'a'.repeat(64) },
      { ip: null },
    ];
    for (const v of variants) expect(eventHash(GENESIS_HASH, sampleEvent(v))).not.toBe(base);
  });
});

describe('ChainWalker', () => {
  function chain(n: number) {
    const entries = [];
    let prev = GENESIS_HASH;
    for (let seq = 1; seq <= n; seq++) {
      const event = sampleEvent({ id: `0190f5a2-7b1c-7d3e-8f40-${String(seq).padStart(12, '0')}` });
      const hash = eventHash(prev, event);
      entries.push({ seq, prevHash: prev, hash, event });
      prev = hash;
    }
    return entries;
  }

  it('accepts an intact chain', () => {
    const walker = new ChainWalker(1, null);
    for (const e of chain(5)) expect(walker.accept(e)).toBeNull();
    expect(walker.checked).toBe(5);
  });

  it('reports an altered event, a missing entry, a missing event and an inserted entry at their seq', () => {
    const altered = chain(5);
    altered[2] = { ...altered[2], event: sampleEvent({ id: altered[2].event.id, outcome: 'denied' }) };
    expect(firstFault(altered)).toEqual({ seq: 3, reason: expect.stringMatching(/hash does not match/) });

    const gap = chain(5).filter((e) => e.seq !== 3);
    expect(firstFault(gap)).toEqual({ seq: 3, reason: expect.stringMatching(/seq 3 is missing/) });

    const gone = chain(5);
    gone[3] = { ...gone[3], event: null as never };
    expect(firstFault(gone)).toEqual({ seq: 4, reason: expect.stringMatching(/missing \(deleted\)/) });

    // An entry inserted at seq 3 with its own correct hash, later entries renumbered: seq 4 no longer links.
    const original = chain(5);
    const injected = sampleEvent({ id: '0190f5a2-7b1c-7d3e-8f40-999999999999' });
    const injectedEntry = {
      seq: 3,
      prevHash: original[1].hash,
      hash: eventHash(original[1].hash, injected),
      event: injected,
    };
    const renumbered = [
      original[0],
      original[1],
      injectedEntry,
      ...original.slice(2).map((e) => ({ ...e, seq: e.seq + 1 })),
    ];
    expect(firstFault(renumbered)).toEqual({ seq: 4, reason: expect.stringMatching(/prev_hash does not match/) });
  });

  it('starts mid-chain from an anchor hash', () => {
    const entries = chain(6);
    const walker = new ChainWalker(4, entries[2].hash);
    for (const e of entries.slice(3)) expect(walker.accept(e)).toBeNull();
    const wrongAnchor = new ChainWalker(4, GENESIS_HASH);
    expect(wrongAnchor.accept(entries[3])?.seq).toBe(4);
  });

  function firstFault(entries: ReturnType<typeof chain>) {
    const walker = new ChainWalker(1, null);
    for (const e of entries) {
      const fault = walker.accept(e);
      if (fault) return fault;
    }
    return null;
  }
});
