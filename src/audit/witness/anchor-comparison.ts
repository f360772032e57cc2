import type { CheckpointKind } from '../checkpoint';
import type { CheckpointView } from '../export-format';
import type { WitnessFault } from './witness-record';

/*
 * Compares a chain as a source holds it (the database, or an export) with anchors
 * kept outside it (a witness's records, or checkpoints an auditor kept), merging both
 * in seq order in constant memory: the caller feeds the anchors up to a seq, then the
 * chain entry at that seq with the checkpoints the source holds there.
 */

/** A witness record or a trusted checkpoint (format 1 has no prev). */
export interface Anchor {
  kind: CheckpointKind;
  seq: number;
  hash: string;
  signed_at: string;
  key_id: string;
  signature: string;
  version: number;
  prev: string | null;
}

/** A checkpoint as the source holds it (a database row, an export's checkpoint line). */
/** A checkpoint as a source (the database, an export, a trusted list) holds it. */
export type SourceCheckpoint = CheckpointView;

export interface AnchorComparisonOptions {
  /** What the anchors are, in messages: "witness folder", "HTTP witness", "trusted checkpoints". */
  label: string;
  /** What the chain is, in messages: "database", "export". */
  source: string;
  /**
   * Whether a format-2 checkpoint of the source must be among the anchors: true for a
   * witness history up to the point it was read (every checkpoint is written there before
   * the database commits it), false for a partial list of trusted checkpoints.
   */
  expectsInAnchors(checkpoint: SourceCheckpoint): boolean;
  /** Whether an anchor above the source's last entry means entries were removed. */
  countsAbove(anchor: Anchor): boolean;
}

export class AnchorComparison {
  /** Anchors whose hash matched the chain at their seq. */
  matched = 0;
  /** Anchors at seqs the source does not hold (before its range, or filtered out). */
  skipped = 0;
  /** Anchors above the source's last entry that count (see countsAbove), and the first of them. */
  aboveCount = 0;
  firstAbove: Anchor | null = null;
  private queue: Anchor[] = [];
  private endSeq: number | null = null;

  constructor(private readonly options: AnchorComparisonOptions) {}

  /** Anchors in seq order. After `end`, every anchor is above the source's last entry. */
  push(anchor: Anchor): void {
    if (this.endSeq === null) {
      this.queue.push(anchor);
      return;
    }
    this.above(anchor);
  }

  /** The chain entry at `seq`, with every checkpoint the source holds at that seq. */
  entry(seq: number, hash: string, checkpoints: readonly SourceCheckpoint[]): WitnessFault[] {
    const { label, source } = this.options;
    const trusted = label === 'trusted checkpoints';
    const faults: WitnessFault[] = [];
    while (this.queue.length && this.queue[0].seq < seq) {
      this.queue.shift();
      this.skipped++;
    }
    const here: Anchor[] = [];
    while (this.queue.length && this.queue[0].seq === seq) here.push(this.queue.shift() as Anchor);
    let hashFault = false;
    for (const a of here) {
      if (a.hash !== hash) {
        if (!hashFault) {
          faults.push({
            seq,
            reason: `hash differs from the ${trusted ? 'trusted checkpoint' : `${label} ${a.kind} record`} at this seq: the chain was rewritten up to here`,
          });
        }
        hashFault = true;
      } else {
        this.matched++;
      }
      if (a.kind !== 'checkpoint') continue;
      const same = checkpoints.find((c) => c.key_id === a.key_id && c.signature === a.signature);
      if (!same) {
        const other = checkpoints.some((c) => c.key_id === a.key_id);
        faults.push({
          seq,
          reason: other
            ? `the checkpoint at this seq differs between the ${source} and the ${label}`
            : trusted
              ? `the ${source} lacks the trusted checkpoint at this seq: it was deleted`
              : `the ${label} holds a checkpoint at this seq that the ${source} lacks: it was deleted`,
        });
      } else if (!sameCheckpoint(same, a)) {
        faults.push({ seq, reason: `the checkpoint at this seq differs between the ${source} and the ${label}` });
      }
    }
    for (const c of checkpoints) {
      if (c.version < 2 || !this.options.expectsInAnchors(c)) continue;
      const held = here.some((a) => a.kind === 'checkpoint' && a.key_id === c.key_id && a.signature === c.signature);
      if (!held) {
        faults.push({
          seq,
          reason: `the ${source} holds a checkpoint at this seq that the ${label} lacks: it was added, or the ${label} lost it`,
        });
      }
    }
    return faults;
  }

  /** No entry after `lastSeq` (0: none at all): what is still queued, and all pushed later, lies above it. */
  end(lastSeq: number): void {
    this.endSeq = lastSeq;
    const queued = this.queue;
    this.queue = [];
    for (const a of queued) {
      if (a.seq > lastSeq) this.above(a);
      else this.skipped++;
    }
  }

  private above(anchor: Anchor): void {
    if (anchor.seq <= (this.endSeq as number)) {
      this.skipped++;
      return;
    }
    if (!this.options.countsAbove(anchor)) return;
    this.aboveCount++;
    this.firstAbove ??= anchor;
  }
}

function sameCheckpoint(c: SourceCheckpoint, a: Anchor): boolean {
  return (
    c.seq === a.seq &&
    c.hash === a.hash &&
    c.signed_at === a.signed_at &&
    c.version === a.version &&
    (c.prev ?? null) === (a.prev ?? null)
  );
}
