import { randomBytes } from 'node:crypto';
import { GENESIS_PREV, signingKeyFromSeed } from '../checkpoint';
import { CHECKPOINT_FILE, checkpointFileName, headJournalName, HEAD_JOURNAL, placeFor } from './witness-layout';
import { signWitnessRecord } from './witness-record';

const key = signingKeyFromSeed(randomBytes(32));
const record = (iso: string, kind: 'head' | 'checkpoint' = 'head') =>
  signWitnessRecord(key, { kind, seq: 42, hash: 'a'.repeat(64), signedAt: new Date(iso), prev: GENESIS_PREV });

describe('witness folder layout', () => {
  it('names a checkpoint file by seq, time and key, and a journal by hour', () => {
    const name = checkpointFileName(record('2026-03-04T05:06:07.089Z', 'checkpoint'));
    expect(name).toBe(`checkpoint-0000000000000042-20260304T050607089Z-${key.keyId}.json`);
    expect(CHECKPOINT_FILE.test(name)).toBe(true);
    expect(HEAD_JOURNAL.test(headJournalName('05'))).toBe(true);
  });

  it('puts a record in its own day and hour, never before the latest record’s (a clock that stepped back)', () => {
    expect(placeFor(record('2026-03-04T05:06:07.089Z'), null)).toEqual({ day: '2026-03-04', hour: '05' });
    expect(placeFor(record('2026-03-04T05:06:07.089Z'), { day: '2026-03-03', hour: '23' })).toEqual({
      day: '2026-03-04',
      hour: '05',
    });
    expect(placeFor(record('2026-03-04T05:06:07.089Z'), { day: '2026-03-04', hour: '07' })).toEqual({
      day: '2026-03-04',
      hour: '07',
    });
    expect(placeFor(record('2026-03-03T23:59:59.999Z'), { day: '2026-03-04', hour: '00' })).toEqual({
      day: '2026-03-04',
      hour: '00',
    });
  });
});
