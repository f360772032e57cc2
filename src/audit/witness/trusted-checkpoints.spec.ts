import { randomBytes } from 'node:crypto';
import { GENESIS_PREV, signCheckpoint, signingKeyFromSeed } from '../checkpoint';
import { parseTrustedCheckpoints } from './trusted-checkpoints';
import { serializeWitnessRecord, signWitnessRecord } from './witness-record';

const key = signingKeyFromSeed(randomBytes(32));
const v2 = signWitnessRecord(key, {
  kind: 'checkpoint',
  seq: 9,
  hash: 'a'.repeat(64),
  signedAt: new Date(),
  prev: GENESIS_PREV,
});
const v1 = {
  seq: 4,
  hash: 'b'.repeat(64),
  signed_at: '2026-01-01T00:00:00.000Z',
  key_id: key.keyId,
  signature: signCheckpoint(key, {
    seq: 4,
    hash: 'b'.repeat(64),
    signedAt: '2026-01-01T00:00:00.000Z',
    keyId: key.keyId,
  }),
};

describe('parseTrustedCheckpoints', () => {
  it('reads what GET /v1/audit/checkpoints returned, format 1 and 2', () => {
    const api = {
      items: [
        { ...v1, version: 1, prev: null },
        { ...v2, kind: undefined },
      ],
      next_cursor: null,
    };
    expect(parseTrustedCheckpoints(JSON.stringify(api))).toEqual([
      { kind: 'checkpoint', ...v1, version: 1, prev: null },
      v2,
    ]);
  });

  it('reads a JSON array, or NDJSON (journal lines, or an export keeping only its checkpoint lines)', () => {
    expect(parseTrustedCheckpoints(JSON.stringify([v1]))).toHaveLength(1);
    const ndjson = [
      JSON.stringify({ type: 'header' }),
      JSON.stringify({ type: 'event', seq: 1 }),
      JSON.stringify({ type: 'checkpoint', ...v1 }),
      serializeWitnessRecord(v2),
    ].join('\n');
    expect(parseTrustedCheckpoints(ndjson).map((a) => [a.seq, a.version])).toEqual([
      [4, 1],
      [9, 2],
    ]);
  });

  it('names the entry that is not a checkpoint', () => {
    expect(() => parseTrustedCheckpoints(JSON.stringify([{ ...v1, hash: 'x' }]))).toThrow(/item 1: hash/);
    expect(() => parseTrustedCheckpoints(JSON.stringify({ ...v2, prev: 'nope' }))).toThrow(/line 1: prev/);
    expect(() => parseTrustedCheckpoints(JSON.stringify([{ ...v1, version: 3 }]))).toThrow(/unknown version 3/);
  });
});
