import type { KeyObject } from 'node:crypto';
import { csvRows } from '../common/csv-safety';
import { ChainedEventFields, eventHash, GENESIS_HASH, JsonValue } from './canonical';
import { GENESIS_PREV, publicKeyFromPem, publicKeyId, verifyCheckpoint } from './checkpoint';
import { Anchor, AnchorComparison, SourceCheckpoint } from './witness/anchor-comparison';
import { verifyWitnessSignature, WitnessHistory, WitnessRecord } from './witness/witness-record';

/*
 * The NDJSON export (docs/audit.md). One JSON object per line:
 *   {"type":"header", format, version, exported_at, filters, complete, public_key:{key_id, algorithm, pem}}
 *      complete = true when no content filter was applied: every seq in the range is present, gaps are faults
 *   {"type":"event", id, seq, occurred_at, actor, action, target, outcome, request_id, ip,
 *                    details, id_card_hmac, prev_hash, hash}          in chain order (seq), unsealed last
 *   {"type":"checkpoint", seq, hash, signed_at, key_id, signature, version, prev}   right after the event at its seq
 *   {"type":"end", events, checkpoints}                                 absent = truncated export
 * Checkpoints sit next to their event so both the exporter and a verifier run in constant memory.
 * Version 2 added format-2 checkpoints (version, prev); version 1 exports still verify.
 */

export const EXPORT_FORMAT = 'idgate.audit-export';
export const EXPORT_VERSION = 2;
const READABLE_VERSIONS = [1, 2];

/** An event as the API and the export show it. */
export interface AuditEventView {
  id: string;
  seq: number | null;
  occurred_at: string;
  actor: { type: string; id: string | null; role: string | null };
  action: string;
  target: { type: string | null; id: string | null };
  outcome: string;
  request_id: string | null;
  ip: string | null;
  details: JsonValue;
  id_card_hmac: string | null;
  prev_hash: string | null;
  hash: string | null;
}

export interface CheckpointView {
  seq: number;
  hash: string;
  signed_at: string;
  key_id: string;
  signature: string;
  /** 1 (before the witness) or 2 (a witness record: prev names the record before it). */
  version: number;
  /** Format 2: digest of the previous witness record, or "genesis"; null for format 1. */
  prev: string | null;
}

/** A checkpoint line or row as the statement its signature covers. */
export function checkpointStatementOf(
  c: Pick<CheckpointView, 'seq' | 'hash' | 'signed_at' | 'key_id'> & {
    version?: number;
    prev?: string | null;
  },
) {
  return (c.version ?? 1) >= 2
    ? {
        version: 2 as const,
        kind: 'checkpoint' as const,
        seq: c.seq,
        hash: c.hash,
        signedAt: c.signed_at,
        keyId: c.key_id,
        prev: c.prev ?? GENESIS_PREV,
      }
    : { seq: c.seq, hash: c.hash, signedAt: c.signed_at, keyId: c.key_id };
}

/*
 * The CSV export: one row per event, for spreadsheets; it carries the same
 * fields but is not verifiable (use NDJSON for that). Cells are made safe
 * against formula injection (common/csv-safety.ts); the events, their hashes
 * and the NDJSON are untouched.
 */
export const AUDIT_CSV_COLUMNS = [
  'seq',
  'id',
  'occurred_at',
  'actor_type',
  'actor_id',
  'actor_role',
  'action',
  'target_type',
  'target_id',
  'outcome',
  'request_id',
  'ip',
  'details',
  'id_card_hmac',
  'prev_hash',
  'hash',
] as const;

/** One event as a CSV row (before the safety pass), in AUDIT_CSV_COLUMNS order. */
export function auditCsvRecord(v: AuditEventView): (string | number | null)[] {
  return [
    v.seq,
    v.id,
    v.occurred_at,
    v.actor.type,
    v.actor.id,
    v.actor.role,
    v.action,
    v.target.type,
    v.target.id,
    v.outcome,
    v.request_id,
    v.ip,
    JSON.stringify(v.details),
    v.id_card_hmac,
    v.prev_hash,
    v.hash,
  ];
}

/** The CSV export's header line. */
export function auditCsvHeader(): string {
  return csvRows([AUDIT_CSV_COLUMNS]);
}

/** CSV lines for a batch of events, every cell safe to open in a spreadsheet. */
export function auditCsvLines(events: readonly AuditEventView[]): string {
  return csvRows(events.map(auditCsvRecord));
}

export function fieldsFromView(e: AuditEventView): ChainedEventFields {
  return {
    id: e.id,
    occurredAt: e.occurred_at,
    actorType: e.actor?.type,
    actorId: e.actor?.id ?? null,
    actorRole: e.actor?.role ?? null,
    action: e.action,
    targetType: e.target?.type ?? null,
    targetId: e.target?.id ?? null,
    outcome: e.outcome,
    requestId: e.request_id ?? null,
    ip: e.ip ?? null,
    details: e.details ?? null,
    idCardHmac: e.id_card_hmac ?? null,
  };
}

export interface ExportAnchorReport {
  kind: 'folder' | 'checkpoints';
  location: string;
  /** Records or checkpoints read. */
  records: number;
  /** Those whose hash matched the export's chain at their seq. */
  matched: number;
  /** Those at seqs the export does not hold. */
  skipped: number;
  latest_seq: number | null;
}

export interface ExportVerification {
  ok: boolean;
  /** Event lines read. */
  events: number;
  /** Sealed events whose hash (and, where consecutive, linkage) was checked. */
  checked: number;
  /** Events exported before they were sealed (seq null): not verifiable yet. */
  unsealed: number;
  checkpoints_verified: number;
  /** The highest seq a verified checkpoint signature covers; null when none. */
  anchored_through_seq: number | null;
  /** Sealed events after the last verified checkpoint: hash-linked but not yet signed. */
  unanchored_events: number;
  /** False when seqs skip (a filtered export): linkage is checked only between consecutive seqs. */
  contiguous: boolean;
  key_id: string | null;
  /** False when the signatures were checked against the key inside the file rather than one given by the auditor. */
  key_pinned: boolean;
  /** What the export was compared with (--witness, --checkpoints). */
  anchors?: ExportAnchorReport[];
  first_bad_seq?: number;
  line?: number;
  reason?: string;
}

/** Where trusted anchors come from: a witness folder (its own history is checked too) or a list of checkpoints. */
export interface ExportAnchorSpec {
  kind: 'folder' | 'checkpoints';
  location: string;
  /** A witness folder's latest record: its checkpoints up to there must all be in a complete export. */
  latest?: WitnessRecord | null;
}

interface AnchorState {
  spec: ExportAnchorSpec;
  history: WitnessHistory | null;
  comparison: AnchorComparison;
  report: ExportAnchorReport;
}

type ExportRecord = Record<string, unknown>;

/**
 * Verifies an export line by line, in constant memory. With anchors (a witness folder,
 * checkpoints the auditor kept), the caller feeds them in seq order: every anchor at or
 * below an event's seq before that event's line (see `parse` and `pushAnchor`), the rest
 * after `endEntries`.
 */
export class ExportVerifier {
  private lineNo = 0;
  private publicKey: KeyObject | null;
  private keyId: string | null = null;
  private readonly pinned: boolean;
  private headerSeen = false;
  private complete = false;
  private exportedAt: string | null = null;
  private rangeEnds = false;
  private ended = false;
  private entriesEnded = false;
  private lastSeq: number | null = null;
  private lastHash: string | null = null;
  /** The last sealed event, waiting for its checkpoint lines before the anchors see it. */
  private pending: { seq: number; hash: string; checkpoints: SourceCheckpoint[] } | null = null;
  private checkpoints = 0;
  private readonly anchors: AnchorState[] = [];
  private failure: { seq?: number; line: number; reason: string } | null = null;
  private readonly result: Omit<ExportVerification, 'ok' | 'key_id' | 'key_pinned'> = {
    events: 0,
    checked: 0,
    unsealed: 0,
    checkpoints_verified: 0,
    anchored_through_seq: null,
    unanchored_events: 0,
    contiguous: true,
  };

  /** @param pinnedKey the auditor's copy of idgate's public key, with its id; without it the file's own key is used. */
  constructor(pinnedKey?: { publicKey: KeyObject; keyId: string }, anchors: ExportAnchorSpec[] = []) {
    this.publicKey = pinnedKey?.publicKey ?? null;
    this.keyId = pinnedKey?.keyId ?? null;
    this.pinned = Boolean(pinnedKey);
    for (const spec of anchors) {
      const label = spec.kind === 'folder' ? 'witness folder' : 'trusted checkpoints';
      const latest = spec.latest ?? null;
      this.anchors.push({
        spec,
        history: null,
        report: { kind: spec.kind, location: spec.location, records: 0, matched: 0, skipped: 0, latest_seq: null },
        comparison: new AnchorComparison({
          label,
          source: 'export',
          expectsInAnchors: (c) =>
            spec.kind === 'folder' &&
            latest !== null &&
            (c.seq < latest.seq ||
              (c.seq === latest.seq && latest.kind === 'checkpoint' && c.signed_at <= latest.signed_at)),
          // Above the export's last seq, an anchor signed before the export was made means entries were removed.
          countsAbove: (a) =>
            this.complete && !this.rangeEnds && this.exportedAt !== null && a.signed_at < this.exportedAt,
        }),
      });
    }
  }

  get failed(): boolean {
    return this.failure !== null;
  }

  private fail(reason: string, seq?: number): void {
    this.failure ??= { reason, line: this.lineNo, ...(seq !== undefined ? { seq } : {}) };
  }

  acceptLine(text: string): void {
    const record = this.parse(text);
    if (record) this.acceptParsed(record);
  }

  /** Reads one line (counting it); null when blank or after a failure. A failure to parse is recorded. */
  parse(text: string): ExportRecord | null {
    this.lineNo++;
    if (this.failure || text.trim() === '') return null;
    let record: ExportRecord;
    try {
      record = JSON.parse(text) as ExportRecord;
    } catch {
      this.fail('line is not JSON');
      return null;
    }
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      this.fail('line is not a JSON object');
      return null;
    }
    return record;
  }

  /** A line `parse` returned. */
  acceptParsed(record: ExportRecord): void {
    if (this.failure) return;
    if (this.ended) return this.fail('content after the end line');
    if (!this.headerSeen) {
      if (
        record.type !== 'header' ||
        record.format !== EXPORT_FORMAT ||
        !READABLE_VERSIONS.includes(record.version as number)
      ) {
        return this.fail(`first line is not an ${EXPORT_FORMAT} v${READABLE_VERSIONS.join('/v')} header`);
      }
      this.headerSeen = true;
      this.complete = record.complete === true;
      this.exportedAt = typeof record.exported_at === 'string' ? record.exported_at : null;
      const filters = record.filters as Record<string, unknown> | undefined;
      this.rangeEnds = filters?.to_seq !== undefined && filters?.to_seq !== null;
      if (!this.publicKey) {
        const key = record.public_key as { pem?: unknown; key_id?: unknown } | undefined;
        try {
          this.publicKey = publicKeyFromPem(String(key?.pem));
        } catch {
          return this.fail('header carries no usable public key; pass one');
        }
        // The id is derived from the key itself, so pinning an id pins the key.
        this.keyId = publicKeyId(this.publicKey);
        if (key?.key_id !== this.keyId) return this.fail('header key_id is not the id of the key it carries');
      }
      return;
    }
    switch (record.type) {
      case 'event':
        return this.acceptEvent(record as unknown as AuditEventView);
      case 'checkpoint':
        return this.acceptCheckpoint(record as unknown as CheckpointView);
      case 'end': {
        this.ended = true;
        if (record.events !== this.result.events || record.checkpoints !== this.checkpoints) {
          return this.fail('end line counts do not match the lines read: lines were added or removed');
        }
        return;
      }
      default:
        return this.fail(`unknown line type ${JSON.stringify(record.type)}`);
    }
  }

  /** An anchor of source `index` (the order given to the constructor), in seq order. */
  pushAnchor(index: number, anchor: Anchor): void {
    const state = this.anchors[index];
    state.report.records++;
    state.report.latest_seq = anchor.seq;
    if (this.failure || !this.publicKey || !this.keyId) return;
    if (state.spec.kind === 'folder') {
      state.history ??= new WitnessHistory({ publicKey: this.publicKey, keyId: this.keyId }, 'witness folder');
      const fault = state.history.accept(anchor as WitnessRecord);
      if (fault) return this.fail(fault.reason, fault.seq);
    } else if (anchor.key_id === this.keyId) {
      const valid =
        anchor.version >= 2
          ? verifyWitnessSignature(this.publicKey, anchor as WitnessRecord)
          : verifyCheckpoint(this.publicKey, checkpointStatementOf(anchor), anchor.signature);
      if (!valid) return this.fail('a trusted checkpoint at this seq has an invalid signature', anchor.seq);
    }
    state.comparison.push(anchor);
  }

  /** A record a witness could not give (an unreadable checkpoint file). */
  anchorUnreadable(reason: string, seq: number | null): void {
    this.fail(reason, seq ?? undefined);
  }

  private flushPending(): void {
    const p = this.pending;
    this.pending = null;
    if (!p || this.failure) return;
    for (const state of this.anchors) {
      const [fault] = state.comparison.entry(p.seq, p.hash, p.checkpoints);
      if (fault) return this.fail(fault.reason, fault.seq);
    }
  }

  /** No more events: anchors pushed from now on lie above the export's last seq. */
  endEntries(): void {
    if (this.entriesEnded) return;
    this.entriesEnded = true;
    this.flushPending();
    for (const state of this.anchors) state.comparison.end(this.lastSeq ?? 0);
  }

  private acceptEvent(e: AuditEventView): void {
    this.result.events++;
    if (e.seq === null) {
      this.result.unsealed++;
      return;
    }
    if (!Number.isSafeInteger(e.seq) || e.seq < 1) return this.fail('seq is not a positive integer');
    if (this.lastSeq !== null && e.seq <= this.lastSeq) return this.fail('events are out of seq order', e.seq);
    if (this.lastSeq !== null && e.seq === this.lastSeq + 1) {
      if (e.prev_hash !== this.lastHash) {
        return this.fail(
          `prev_hash does not match the hash of seq ${e.seq - 1}: an entry was inserted or removed`,
          e.seq,
        );
      }
    } else if (this.lastSeq !== null) {
      if (this.complete)
        return this.fail(`seq ${this.lastSeq + 1} is missing from a complete export`, this.lastSeq + 1);
      this.result.contiguous = false;
    }
    if (e.seq === 1 && e.prev_hash !== GENESIS_HASH) return this.fail('seq 1 does not start from the genesis hash', 1);
    let recomputed: string;
    try {
      recomputed = eventHash(String(e.prev_hash), fieldsFromView(e));
    } catch {
      return this.fail('event is malformed', e.seq);
    }
    if (recomputed !== e.hash)
      return this.fail('hash does not match the event: the event or its hash was altered', e.seq);
    this.flushPending();
    this.result.checked++;
    this.result.unanchored_events++;
    this.lastSeq = e.seq;
    this.lastHash = e.hash;
    if (this.anchors.length) this.pending = { seq: e.seq, hash: e.hash, checkpoints: [] };
  }

  private acceptCheckpoint(c: CheckpointView): void {
    this.checkpoints++;
    if (c.seq !== this.lastSeq) return this.fail('checkpoint does not follow the event at its seq', c.seq);
    if (c.key_id !== this.keyId) return this.fail(`checkpoint is signed by key ${c.key_id}, not ${this.keyId}`, c.seq);
    if (!this.publicKey || !verifyCheckpoint(this.publicKey, checkpointStatementOf(c), c.signature)) {
      return this.fail('checkpoint signature is invalid', c.seq);
    }
    if (c.hash !== this.lastHash) {
      return this.fail('hash differs from the signed checkpoint: the chain was rewritten up to here', c.seq);
    }
    this.pending?.checkpoints.push({
      seq: c.seq,
      hash: c.hash,
      signed_at: c.signed_at,
      key_id: c.key_id,
      signature: c.signature,
      version: c.version ?? 1,
      prev: (c.version ?? 1) >= 2 ? (c.prev ?? GENESIS_PREV) : null,
    });
    this.result.checkpoints_verified++;
    this.result.anchored_through_seq = c.seq;
    this.result.unanchored_events = 0;
  }

  finish(): ExportVerification {
    this.endEntries();
    if (!this.failure && !this.headerSeen) this.fail('empty export');
    for (const state of this.anchors) {
      state.report.matched = state.comparison.matched;
      state.report.skipped = state.comparison.skipped;
      const above = state.comparison.firstAbove;
      if (above && this.lastSeq !== null) {
        this.fail(
          `the export ends at seq ${this.lastSeq} but the ${state.spec.kind === 'folder' ? 'witness folder' : 'trusted checkpoints'} ` +
            `has a ${above.kind} at seq ${above.seq}, signed before the export was made: entries were removed`,
          this.lastSeq + 1,
        );
      }
    }
    if (!this.failure && !this.ended) this.fail('export is truncated: no end line');
    const base = {
      ...this.result,
      key_id: this.keyId,
      key_pinned: this.pinned,
      ...(this.anchors.length ? { anchors: this.anchors.map((a) => a.report) } : {}),
    };
    if (!this.failure) return { ok: true, ...base };
    return {
      ok: false,
      ...base,
      ...(this.failure.seq !== undefined ? { first_bad_seq: this.failure.seq } : {}),
      line: this.failure.line,
      reason: this.failure.reason,
    };
  }
}
