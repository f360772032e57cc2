import { ChainedEventFields, eventHash, GENESIS_HASH } from './canonical';

/** One entry of the chain as read back: the link and the event it points at (null when the event is gone). */
export interface ChainEntry {
  seq: number;
  prevHash: string;
  hash: string;
  event: ChainedEventFields | null;
}

export interface ChainFault {
  seq: number;
  reason: string;
}

/**
 * Checks chain entries fed to it in seq order, in constant memory: seq
 * contiguity, prev_hash linkage and each hash recomputed from its event.
 * Used by the database integrity check and by the export verifier.
 */
export class ChainWalker {
  private expectedSeq: number;
  private expectedPrevHash: string | null;
  checked = 0;
  lastSeq: number | null = null;
  lastHash: string | null = null;

  /**
   * @param firstSeq the seq the walk starts at
   * @param anchorPrevHash the hash of `firstSeq - 1` (genesis for seq 1), or null when unknown
   */
  constructor(firstSeq: number, anchorPrevHash: string | null) {
    this.expectedSeq = firstSeq;
    this.expectedPrevHash = firstSeq === 1 ? GENESIS_HASH : anchorPrevHash;
  }

  /**
   * @param computedHash the entry's hash as the caller already computed it from the event
   *   (integrity-canonical.ts): taken when it matches; otherwise the reference eventHash decides,
   *   so a fault is only ever reported on the reference function's word.
   */
  accept(entry: ChainEntry, computedHash?: string): ChainFault | null {
    if (entry.seq !== this.expectedSeq) {
      return entry.seq > this.expectedSeq
        ? {
            seq: this.expectedSeq,
            reason: `chain entry seq ${this.expectedSeq} is missing (next entry is ${entry.seq})`,
          }
        : { seq: entry.seq, reason: `chain entry seq ${entry.seq} is out of order or duplicated` };
    }
    if (this.expectedPrevHash !== null && entry.prevHash !== this.expectedPrevHash) {
      return {
        seq: entry.seq,
        reason: `prev_hash does not match the hash of seq ${entry.seq - 1}: an entry was inserted, removed or rewritten`,
      };
    }
    if (!entry.event) return { seq: entry.seq, reason: 'the event this chain entry seals is missing (deleted)' };
    if (computedHash !== entry.hash && referenceHash(entry.prevHash, entry.event) !== entry.hash) {
      return { seq: entry.seq, reason: 'hash does not match the event: the event or its hash was altered' };
    }
    this.checked++;
    this.lastSeq = entry.seq;
    this.lastHash = entry.hash;
    this.expectedSeq = entry.seq + 1;
    this.expectedPrevHash = entry.hash;
    return null;
  }
}

/** eventHash, or null for an event whose time is not a valid one (it cannot be the hashed time). */
function referenceHash(prevHash: string, event: ChainedEventFields): string | null {
  const at = event.occurredAt;
  if (at instanceof Date && Number.isNaN(at.getTime())) return null;
  return eventHash(prevHash, event);
}
