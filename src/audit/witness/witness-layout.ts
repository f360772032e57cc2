import type { WitnessRecord } from './witness-record';

/*
 * Where records live in a witness folder (docs/audit.md):
 *
 *   <AUDIT_WITNESS_DIR>/<YYYY-MM-DD>/checkpoint-<seq, 16 digits>-<YYYYMMDDTHHMMSSmmmZ>-<key id>.json
 *   <AUDIT_WITNESS_DIR>/<YYYY-MM-DD>/heads-<HH>.jsonl
 *
 * One file per signed checkpoint (never rewritten); sealed heads, one per sealing pass,
 * appended to an hourly journal so the folder does not grow by a file per pass. Days and
 * hours are UTC. A record never goes into an earlier file than the latest record's (a
 * clock that stepped back, another instance's clock): reading day by day, hour by hour,
 * and merging checkpoints with heads by seq gives the order they were written in.
 */

export const DAY_DIR = /^\d{4}-\d{2}-\d{2}$/;
export const HEAD_JOURNAL = /^heads-(\d{2})\.jsonl$/;
export const CHECKPOINT_FILE = /^checkpoint-(\d{16})-(\d{8}T\d{9}Z)-([0-9a-f]{16})\.json$/;

export interface RecordPlace {
  /** UTC day folder, YYYY-MM-DD. */
  day: string;
  /** UTC hour of the journal (heads only), HH. */
  hour: string;
}

export function naturalPlace(signedAt: string): RecordPlace {
  return { day: signedAt.slice(0, 10), hour: signedAt.slice(11, 13) };
}

/** Where a new record goes: its own day and hour, but never before the latest record's place. */
export function placeFor(record: WitnessRecord, latest: RecordPlace | null): RecordPlace {
  const own = naturalPlace(record.signed_at);
  if (!latest) return own;
  if (own.day > latest.day) return own;
  if (own.day < latest.day) return { day: latest.day, hour: latest.hour };
  return { day: own.day, hour: own.hour > latest.hour ? own.hour : latest.hour };
}

export function checkpointFileName(record: WitnessRecord): string {
  const compact = record.signed_at.replace(/[-:.]/g, '');
  return `checkpoint-${String(record.seq).padStart(16, '0')}-${compact}-${record.key_id}.json`;
}

export function headJournalName(hour: string): string {
  return `heads-${hour}.jsonl`;
}
