import { randomBytes } from 'node:crypto';
import { GENESIS_PREV, signingKeyFromSeed } from '../checkpoint';
import {
  CadenceTracker,
  cadenceToleranceMs,
  compareRecordOrder,
  parseWitnessRecord,
  serializeWitnessRecord,
  signWitnessRecord,
  WitnessHistory,
  WitnessRecord,
  witnessRecordDigest,
} from './witness-record';

const key = signingKeyFromSeed(randomBytes(32));
const other = signingKeyFromSeed(randomBytes(32));
const hash = (n: number) => n.toString(16).padStart(64, '0');
const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));

/** A history of records: [kind, seq, second] each, linked from genesis. */
function history(spec: [WitnessRecord['kind'], number, number][], signer = key): WitnessRecord[] {
  const out: WitnessRecord[] = [];
  for (const [kind, seq, s] of spec) {
    const prev = out.length ? witnessRecordDigest(out[out.length - 1]) : GENESIS_PREV;
    out.push(signWitnessRecord(signer, { kind, seq, hash: hash(seq), signedAt: at(s), prev }));
  }
  return out;
}

function check(records: WitnessRecord[]) {
  const h = new WitnessHistory({ publicKey: key.publicKey, keyId: key.keyId });
  return records.map((r) => h.accept(r)).filter(Boolean);
}

describe('witness records', () => {
  it('round-trip through their JSON line, every field checked', () => {
    const [r] = history([['checkpoint', 7, 1]]);
    const line = serializeWitnessRecord(r);
    expect(Object.keys(JSON.parse(line))).toEqual([
      'version',
      'kind',
      'seq',
      'hash',
      'signed_at',
      'key_id',
      'prev',
      'signature',
    ]);
    expect(parseWitnessRecord(JSON.parse(line))).toEqual(r);
    expect(parseWitnessRecord({ ...r, version: 1 })).toBe('unknown version 1');
    expect(parseWitnessRecord({ ...r, kind: 'tail' })).toMatch(/kind/);
    expect(parseWitnessRecord({ ...r, seq: 0 })).toMatch(/seq/);
    expect(parseWitnessRecord({ ...r, hash: 'AB'.repeat(32) })).toMatch(/hash/);
    expect(parseWitnessRecord({ ...r, signed_at: '2026-01-01T00:00:01Z' })).toMatch(/signed_at/);
    expect(parseWitnessRecord({ ...r, prev: 'x' })).toMatch(/prev/);
    expect(parseWitnessRecord({ ...r, signature: 'not base64!' })).toMatch(/signature/);
    expect(parseWitnessRecord([r])).toBe('not a JSON object');
  });

  it('order: seq, then the head before the checkpoint that signs it, then time', () => {
    const [h5, c5, h6] = history([
      ['head', 5, 1],
      ['checkpoint', 5, 2],
      ['head', 6, 3],
    ]);
    expect([h6, c5, h5].sort(compareRecordOrder)).toEqual([h5, c5, h6]);
  });
});

describe('WitnessHistory', () => {
  const records = history([
    ['head', 3, 1],
    ['head', 6, 2],
    ['checkpoint', 6, 3],
    ['head', 9, 4],
    ['head', 12, 5],
  ]);

  it('accepts a history linked from genesis, counting records, kinds and signatures', () => {
    const h = new WitnessHistory({ publicKey: key.publicKey, keyId: key.keyId });
    for (const r of records) expect(h.accept(r)).toBeNull();
    expect(h).toMatchObject({ records: 5, checkpoints: 1, heads: 4, signaturesVerified: 5, otherKeys: 0 });
    expect(h.latestDigest).toBe(witnessRecordDigest(records[4]));
  });

  it('reports a gap at the record after it', () => {
    expect(check([records[0], records[1], records[3], records[4]])).toEqual([
      { seq: 9, reason: expect.stringMatching(/head record at seq 9 does not name the record before it/) },
    ]);
  });

  it('reports a history that does not start at genesis (its start cut off)', () => {
    expect(check(records.slice(1))[0]).toEqual({ seq: 6, reason: expect.stringMatching(/does not start the history/) });
  });

  it('reports a record re-signed in place (valid signature, other digest) at the record after it', () => {
    const resigned = signWitnessRecord(key, {
      kind: 'head',
      seq: 6,
      hash: hash(6),
      signedAt: at(99),
      prev: records[1].prev,
    });
    expect(check([records[0], resigned, ...records.slice(2)])).toEqual([
      { seq: 6, reason: expect.stringMatching(/checkpoint record at seq 6 does not name the record before it/) },
    ]);
  });

  it('reports an altered record (its signature no longer holds), and a record out of order', () => {
    const altered = { ...records[3], hash: hash(999) };
    expect(check([...records.slice(0, 3), altered, records[4]])).toEqual([
      { seq: 9, reason: expect.stringMatching(/has an invalid signature/) },
      { seq: 12, reason: expect.stringMatching(/does not name the record before it/) },
    ]);
    const backwards = history([
      ['head', 6, 1],
      ['head', 3, 2],
    ]);
    expect(check(backwards)).toEqual([{ seq: 3, reason: expect.stringMatching(/out of order/) }]);
  });

  it('links records of another key (before a rotation) without checking their signatures', () => {
    const h = new WitnessHistory({ publicKey: key.publicKey, keyId: key.keyId });
    for (const r of history(
      [
        ['head', 1, 1],
        ['head', 2, 2],
      ],
      other,
    ))
      expect(h.accept(r)).toBeNull();
    expect(h).toMatchObject({ records: 2, signaturesVerified: 0, otherKeys: 2 });
  });
});

describe('CadenceTracker', () => {
  const second = 1000;
  const cadence = (records: WitnessRecord[], now: number) => {
    const c = new CadenceTracker(10 * second, 5 * second);
    for (const r of records) c.accept(r);
    c.finish(at(now));
    return c;
  };

  it('states the tolerance: half the interval, at least 5 s', () => {
    expect(cadenceToleranceMs(60_000)).toBe(30_000);
    expect(cadenceToleranceMs(1_000)).toBe(5_000);
  });

  it('expects a checkpoint within interval + tolerance of the chain growing past the last one', () => {
    // Growth at 1 s, checkpoint at 14 s (within 15 s); growth at 20 s, checkpoint at 40 s: 5 s late.
    const records = history([
      ['head', 3, 1],
      ['head', 5, 8],
      ['checkpoint', 5, 14],
      ['head', 9, 20],
      ['head', 12, 30],
      ['checkpoint', 12, 40],
    ]);
    const c = cadence(records, 41);
    expect(c.gapCount).toBe(1);
    expect(c.gaps).toEqual([
      { after_seq: 5, grew_at: at(20).toISOString(), checkpoint_at: at(40).toISOString(), late_ms: 5 * second },
    ]);
  });

  it('reports growth with no checkpoint yet once it is overdue, and none while the chain is idle', () => {
    const grown = history([
      ['head', 3, 1],
      ['checkpoint', 3, 2],
      ['head', 4, 10],
    ]);
    expect(cadence(grown, 24).gapCount).toBe(0);
    expect(cadence(grown, 27).gaps).toEqual([
      { after_seq: 3, grew_at: at(10).toISOString(), checkpoint_at: null, late_ms: 2 * second },
    ]);
    // Idle after a checkpoint: nothing expected, however long.
    expect(cadence(grown.slice(0, 2), 10_000).gapCount).toBe(0);
  });
});
