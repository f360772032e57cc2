import type { KeyObject } from 'node:crypto';
import {
  CheckpointKind,
  CheckpointStatement,
  GENESIS_PREV,
  recordDigest,
  signCheckpoint,
  SigningKey,
  verifyCheckpoint,
} from '../checkpoint';

/*
 * Witness records (format 2, docs/audit.md): every signed checkpoint and every
 * sealed head is also written outside the database, each naming the digest of
 * the record before it (a chain of records, as CloudTrail's digest files name
 * the previous digest). Pure rules here; file and HTTP I/O in witness-dir.ts
 * and witness-http.ts.
 */

export const WITNESS_RECORD_VERSION = 2;

export interface WitnessRecord {
  version: 2;
  kind: CheckpointKind;
  seq: number;
  hash: string;
  signed_at: string;
  key_id: string;
  /** Digest of the previous record, or "genesis". */
  prev: string;
  signature: string;
}

export interface WitnessFault {
  seq: number;
  reason: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function recordStatement(r: WitnessRecord): CheckpointStatement {
  return {
    version: 2,
    kind: r.kind,
    seq: r.seq,
    hash: r.hash,
    signedAt: r.signed_at,
    keyId: r.key_id,
    prev: r.prev,
  };
}

export function witnessRecordDigest(r: WitnessRecord): string {
  return recordDigest(recordStatement(r), r.signature);
}

export function signWitnessRecord(
  key: SigningKey,
  fields: { kind: CheckpointKind; seq: number; hash: string; signedAt: Date; prev: string },
): WitnessRecord {
  const unsigned = {
    version: 2 as const,
    kind: fields.kind,
    seq: fields.seq,
    hash: fields.hash,
    signed_at: fields.signedAt.toISOString(),
    key_id: key.keyId,
    prev: fields.prev,
  };
  const signature = signCheckpoint(key, recordStatement({ ...unsigned, signature: '' }));
  return { ...unsigned, signature };
}

export function verifyWitnessSignature(publicKey: KeyObject, r: WitnessRecord): boolean {
  return verifyCheckpoint(publicKey, recordStatement(r), r.signature);
}

/** One line of JSON, keys in a fixed order (the digest does not depend on it: it is over the signed message). */
export function serializeWitnessRecord(r: WitnessRecord): string {
  return JSON.stringify({
    version: r.version,
    kind: r.kind,
    seq: r.seq,
    hash: r.hash,
    signed_at: r.signed_at,
    key_id: r.key_id,
    prev: r.prev,
    signature: r.signature,
  });
}

/** A record read back from a witness, every field checked; a string says what is wrong. */
export function parseWitnessRecord(value: unknown): WitnessRecord | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not a JSON object';
  const r = value as Record<string, unknown>;
  if (r.version !== WITNESS_RECORD_VERSION) return `unknown version ${JSON.stringify(r.version)}`;
  if (r.kind !== 'checkpoint' && r.kind !== 'head') return 'kind is neither checkpoint nor head';
  if (typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq) || r.seq < 1) return 'seq is not a positive integer';
  if (typeof r.hash !== 'string' || !HEX64.test(r.hash)) return 'hash is not 64 lowercase hex';
  if (typeof r.signed_at !== 'string' || !isIsoMillis(r.signed_at)) return 'signed_at is not ISO 8601 UTC with ms';
  if (typeof r.key_id !== 'string' || !KEY_ID.test(r.key_id)) return 'key_id is not 16 lowercase hex';
  if (typeof r.prev !== 'string' || (r.prev !== GENESIS_PREV && !HEX64.test(r.prev))) return 'prev is not a digest';
  if (typeof r.signature !== 'string' || !BASE64.test(r.signature)) return 'signature is not base64';
  return {
    version: 2,
    kind: r.kind,
    seq: r.seq,
    hash: r.hash,
    signed_at: r.signed_at,
    key_id: r.key_id,
    prev: r.prev,
    signature: r.signature,
  };
}

function isIsoMillis(text: string): boolean {
  const t = Date.parse(text);
  return !Number.isNaN(t) && new Date(t).toISOString() === text;
}

const KIND_RANK: Record<CheckpointKind, number> = { head: 0, checkpoint: 1 };

/**
 * The order records are written in: seq never goes down (records are written under the
 * sealer's lock, of the committed head), and at one seq the head comes before the
 * checkpoint that signs it (a head is written only when the head moved). Same seq and
 * kind (a new key signing an unmoved head): by time.
 */
export function compareRecordOrder(a: WitnessRecord, b: WitnessRecord): number {
  return a.seq - b.seq || KIND_RANK[a.kind] - KIND_RANK[b.kind] || a.signed_at.localeCompare(b.signed_at);
}

/**
 * Checks a witness's own history, fed in order, in constant memory: every record names
 * the digest of the one before (the first names "genesis"), seqs never go down, and
 * records signed by the given key carry a valid signature. Records of another key (an
 * older key, after a rotation) are linked but their signatures cannot be checked here.
 */
export class WitnessHistory {
  records = 0;
  signaturesVerified = 0;
  otherKeys = 0;
  latest: WitnessRecord | null = null;
  latestDigest: string | null = null;
  checkpoints = 0;
  heads = 0;

  constructor(
    private readonly key: { publicKey: KeyObject; keyId: string },
    private readonly label = 'witness',
  ) {}

  accept(r: WitnessRecord): WitnessFault | null {
    this.records++;
    if (r.kind === 'checkpoint') this.checkpoints++;
    else this.heads++;
    const expectedPrev = this.latestDigest ?? GENESIS_PREV;
    const previous = this.latest;
    this.latest = r;
    this.latestDigest = witnessRecordDigest(r);
    const what = `the ${this.label} ${r.kind} record at seq ${r.seq}`;
    if (r.key_id === this.key.keyId) {
      if (!verifyWitnessSignature(this.key.publicKey, r))
        return { seq: r.seq, reason: `${what} has an invalid signature` };
      this.signaturesVerified++;
    } else {
      this.otherKeys++;
    }
    if (r.prev !== expectedPrev) {
      return {
        seq: r.seq,
        reason:
          expectedPrev === GENESIS_PREV
            ? `${what} is the first one read but does not start the history ("genesis"): earlier records are missing`
            : `${what} does not name the record before it: the ${this.label} history has a gap or was rewritten`,
      };
    }
    if (previous && compareRecordOrder(previous, r) > 0) {
      return { seq: r.seq, reason: `${what} comes after a record at seq ${previous.seq}: out of order` };
    }
    return null;
  }
}

/** A stretch of chain growth with no checkpoint in time. */
export interface CadenceGap {
  /** The last checkpoint before the gap (0: none yet). */
  after_seq: number;
  /** When the chain grew past it (the first witness record above it). */
  grew_at: string;
  /** The checkpoint that came late, or null when none has come yet. */
  checkpoint_at: string | null;
  /** How much later than interval + tolerance it came (or is, now). */
  late_ms: number;
}

/** The stated tolerance: half the interval, at least 5 s (timer drift, lock waits, a busy event loop). */
export function cadenceToleranceMs(intervalMs: number): number {
  return Math.max(5_000, Math.floor(intervalMs / 2));
}

/**
 * Expected cadence: after the chain grows (a witness record above the last checkpoint's
 * seq), a checkpoint is expected within interval + tolerance. Fed the witness records in
 * order; `finish(now)` adds the gap still open.
 */
export class CadenceTracker {
  readonly gaps: CadenceGap[] = [];
  gapCount = 0;
  private lastCheckpointSeq = 0;
  private grewAt: string | null = null;

  constructor(
    readonly intervalMs: number,
    readonly toleranceMs: number,
    private readonly keep = 20,
  ) {}

  accept(r: WitnessRecord): void {
    if (r.kind === 'checkpoint') {
      if (this.grewAt !== null) this.close(Date.parse(r.signed_at), r.signed_at);
      this.lastCheckpointSeq = Math.max(this.lastCheckpointSeq, r.seq);
      this.grewAt = null;
    } else if (this.grewAt === null && r.seq > this.lastCheckpointSeq) {
      this.grewAt = r.signed_at;
    }
  }

  finish(now: Date): void {
    if (this.grewAt !== null) this.close(now.getTime(), null);
    this.grewAt = null;
  }

  private close(at: number, checkpointAt: string | null): void {
    const late = at - Date.parse(this.grewAt as string) - this.intervalMs - this.toleranceMs;
    if (late <= 0) return;
    this.gapCount++;
    if (this.gaps.length < this.keep) {
      this.gaps.push({
        after_seq: this.lastCheckpointSeq,
        grew_at: this.grewAt as string,
        checkpoint_at: checkpointAt,
        late_ms: late,
      });
    }
  }
}
