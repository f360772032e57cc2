import { Anchor, AnchorComparison, SourceCheckpoint } from './anchor-comparison';

const hash = (n: number, variant = 0) => (n * 1000 + variant).toString(16).padStart(64, '0');
const anchor = (kind: Anchor['kind'], seq: number, extra: Partial<Anchor> = {}): Anchor => ({
  kind,
  seq,
  hash: hash(seq),
  signed_at: `2026-01-01T00:00:${String(seq).padStart(2, '0')}.000Z`,
  key_id: 'k'.repeat(16),
  signature: `sig-${kind}-${seq}`,
  version: 2,
  prev: 'genesis',
  ...extra,
});
const asCheckpoint = (a: Anchor): SourceCheckpoint => ({
  seq: a.seq,
  hash: a.hash,
  signed_at: a.signed_at,
  key_id: a.key_id,
  signature: a.signature,
  version: a.version,
  prev: a.prev,
});

function comparison(options: Partial<ConstructorParameters<typeof AnchorComparison>[0]> = {}) {
  return new AnchorComparison({
    label: 'witness folder',
    source: 'database',
    expectsInAnchors: () => true,
    countsAbove: () => true,
    ...options,
  });
}

describe('AnchorComparison', () => {
  const h3 = anchor('head', 3);
  const h6 = anchor('head', 6);
  const c6 = anchor('checkpoint', 6);
  const h9 = anchor('head', 9);

  /** Feeds seqs 1..last, anchors first (as the integrity walk does per batch). */
  function walk(
    c: AnchorComparison,
    anchors: Anchor[],
    last: number,
    hashAt = hash,
    checkpointsAt = (_s: number) => [] as SourceCheckpoint[],
  ) {
    for (const a of anchors) c.push(a);
    const faults = [];
    for (let seq = 1; seq <= last; seq++) faults.push(...c.entry(seq, hashAt(seq), checkpointsAt(seq)));
    c.end(last);
    return faults;
  }

  it('matches every anchor at its seq', () => {
    const c = comparison();
    expect(walk(c, [h3, h6, c6, h9], 10, hash, (s) => (s === 6 ? [asCheckpoint(c6)] : []))).toEqual([]);
    expect(c).toMatchObject({ matched: 4, skipped: 0, aboveCount: 0 });
  });

  it('reports a chain changed from some seq on at the first anchor at or after it, once per seq', () => {
    const rewritten = (s: number) => (s >= 5 ? hash(s, 1) : hash(s));
    const faults = walk(comparison(), [h3, h6, c6, h9], 10, rewritten, (s) => (s === 6 ? [asCheckpoint(c6)] : []));
    expect(faults[0]).toEqual({
      seq: 6,
      reason: 'hash differs from the witness folder head record at this seq: the chain was rewritten up to here',
    });
    expect(faults.map((f) => f.seq)).toEqual([6, 9]);
  });

  it('reports a checkpoint deleted from, added to, or different in the source', () => {
    expect(walk(comparison(), [h3, h6, c6], 7)).toEqual([
      { seq: 6, reason: 'the witness folder holds a checkpoint at this seq that the database lacks: it was deleted' },
    ]);
    const added = asCheckpoint(anchor('checkpoint', 4));
    expect(walk(comparison(), [h3, h6], 7, hash, (s) => (s === 4 ? [added] : []))).toEqual([
      {
        seq: 4,
        reason:
          'the database holds a checkpoint at this seq that the witness folder lacks: it was added, or the witness folder lost it',
      },
    ]);
    // Not expected (a witness read before it was signed, or a list of trusted checkpoints): no fault.
    expect(walk(comparison({ expectsInAnchors: () => false }), [h3], 7, hash, (s) => (s === 4 ? [added] : []))).toEqual(
      [],
    );
    // Format 1 (before the witness) is never expected in it.
    expect(walk(comparison(), [h3], 7, hash, (s) => (s === 4 ? [{ ...added, version: 1, prev: null }] : []))).toEqual(
      [],
    );
    const resigned = { ...asCheckpoint(c6), signature: 'another' };
    expect(walk(comparison(), [h6, c6], 7, hash, (s) => (s === 6 ? [resigned] : []))).toEqual([
      { seq: 6, reason: 'the checkpoint at this seq differs between the database and the witness folder' },
      {
        seq: 6,
        reason:
          'the database holds a checkpoint at this seq that the witness folder lacks: it was added, or the witness folder lost it',
      },
    ]);
    const changed = { ...asCheckpoint(c6), prev: 'f'.repeat(64) };
    expect(walk(comparison(), [h6, c6], 7, hash, (s) => (s === 6 ? [changed] : []))).toEqual([
      { seq: 6, reason: 'the checkpoint at this seq differs between the database and the witness folder' },
    ]);
  });

  it('counts anchors above the last entry (entries removed), and skips those the source does not hold', () => {
    const c = comparison();
    expect(walk(c, [h3, h6, c6, h9], 5)).toEqual([]);
    expect(c).toMatchObject({ matched: 1, aboveCount: 3, firstAbove: h6 });
    c.push(anchor('head', 12));
    expect(c.aboveCount).toBe(4);
    const filtered = comparison({ countsAbove: (a) => a.seq < 9 });
    for (const a of [h3, h6, h9]) filtered.push(a);
    expect(filtered.entry(6, hash(6), [])).toEqual([]); // seq 3 is not in the (filtered) source
    filtered.end(6);
    expect(filtered).toMatchObject({ matched: 1, skipped: 1, aboveCount: 0 });
  });
});
