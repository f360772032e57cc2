import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GENESIS_PREV, signingKeyFromSeed } from '../checkpoint';
import { WitnessDir, WitnessItem } from './witness-dir';
import { signWitnessRecord, WitnessRecord, witnessRecordDigest } from './witness-record';

const key = signingKeyFromSeed(randomBytes(32));

describe('WitnessDir', () => {
  let root: string;
  let dir: WitnessDir;
  beforeEach(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'idgate-witness-dir-'));
    dir = new WitnessDir(root);
    await dir.ensure();
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** Appends a record after the folder's latest, as the writer does under the sealer's lock. */
  async function append(kind: WitnessRecord['kind'], seq: number, iso: string): Promise<WitnessRecord> {
    const latest = await dir.latest();
    const record = signWitnessRecord(key, {
      kind,
      seq,
      hash: seq.toString(16).padStart(64, '0'),
      signedAt: new Date(iso),
      prev: latest?.digest ?? GENESIS_PREV,
    });
    await dir.append(record, latest);
    return record;
  }

  const read = async () => {
    const items: WitnessItem[] = [];
    for await (const item of dir.items()) items.push(item);
    return items;
  };
  const records = async () => (await read()).flatMap((i) => ('record' in i ? [i.record] : []));

  it('reads back what it wrote, in order, across hours and days, and knows its latest record', async () => {
    const written = [
      await append('head', 3, '2026-03-04T22:59:00.000Z'),
      await append('checkpoint', 3, '2026-03-04T23:00:00.000Z'),
      await append('head', 5, '2026-03-04T23:30:00.000Z'),
      await append('head', 8, '2026-03-05T00:01:00.000Z'),
      await append('checkpoint', 8, '2026-03-05T00:02:00.000Z'),
      await append('head', 9, '2026-03-05T00:03:00.000Z'),
    ];
    expect(await records()).toEqual(written);
    expect(await dir.latest()).toMatchObject({ record: written[5], digest: witnessRecordDigest(written[5]) });
    expect(readdirSync(root).sort()).toEqual(['2026-03-04', '2026-03-05']);
    expect(readdirSync(path.join(root, '2026-03-04')).sort()).toEqual([
      expect.stringMatching(/^checkpoint-0000000000000003-20260304T230000000Z-/),
      'heads-22.jsonl',
      'heads-23.jsonl',
    ]);
    const file = path.join(
      root,
      '2026-03-05',
      readdirSync(path.join(root, '2026-03-05')).find((n) => n.startsWith('checkpoint'))!,
    );
    expect(statSync(file).mode & 0o777).toBe(0o444);
    expect(await dir.findCheckpoint(8, written[4].signed_at, key.keyId)).toEqual(written[4]);
    expect(await dir.findCheckpoint(8, written[3].signed_at, key.keyId)).toBeNull();
  });

  it('keeps the written order when a clock steps back: a record never goes into an earlier day or hour', async () => {
    const a = await append('head', 3, '2026-03-05T10:00:00.000Z');
    const b = await append('head', 4, '2026-03-05T09:59:00.000Z'); // another instance, a minute behind
    const c = await append('checkpoint', 4, '2026-03-04T23:59:00.000Z'); // a day behind
    const d = await append('head', 5, '2026-03-04T23:59:30.000Z');
    expect(readdirSync(root)).toEqual(['2026-03-05']);
    expect(readdirSync(path.join(root, '2026-03-05')).filter((n) => n.startsWith('heads'))).toEqual(['heads-10.jsonl']);
    expect(await records()).toEqual([a, b, c, d]);
    expect((await dir.latest())?.record).toEqual(d);
  });

  it('never replaces a checkpoint file, and starts a fresh line after a line cut by a crash', async () => {
    const cp = await append('checkpoint', 3, '2026-03-04T10:00:00.000Z');
    // The same record again is accepted (a retry); another record under the same name is not.
    await dir.append(cp, await dir.latest());
    await expect(dir.append({ ...cp, prev: 'f'.repeat(64) }, await dir.latest())).rejects.toThrow(/already exists/);

    const h = await append('head', 4, '2026-03-04T10:01:00.000Z');
    const journal = path.join(root, '2026-03-04', 'heads-10.jsonl');
    appendFileSync(journal, '{"version":2,"kind":"head","se'); // a crash mid-write
    expect(await records()).toEqual([cp, h]); // the cut piece has no newline: not read yet
    expect((await dir.latest())?.record).toEqual(h);
    const next = await append('head', 5, '2026-03-04T10:02:00.000Z');
    expect(readFileSync(journal, 'utf8').split('\n')).toHaveLength(4);
    expect(await read()).toEqual([
      { record: cp, where: expect.any(String) },
      { record: h, where: expect.any(String) },
      { malformed: 'not JSON', seq: null, where: '2026-03-04/heads-10.jsonl:2', fatal: false },
      { record: next, where: expect.any(String) },
    ]);
    expect(next.prev).toBe(witnessRecordDigest(h));
  });

  it('reports an unreadable checkpoint file with the seq its name gives', async () => {
    const cp = await append('checkpoint', 7, '2026-03-04T10:00:00.000Z');
    const file = path.join(root, '2026-03-04', readdirSync(path.join(root, '2026-03-04'))[0]);
    rmSync(file);
    appendFileSync(file, 'garbage\n');
    expect(await read()).toEqual([
      { malformed: 'not JSON', seq: cp.seq, where: expect.stringContaining('checkpoint-'), fatal: true },
    ]);
    expect(await dir.latest()).toBeNull();
  });
});
