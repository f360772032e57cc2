import { Injectable } from '@nestjs/common';
import type { KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { AppConfig } from '../config/app-config';
import { PrismaService } from '../database/prisma.service';
import type { Transaction } from '../database/transaction';
import { poolConfigFromUrl } from '../database/schema-engine';
import { Prisma } from '../generated/prisma/client';
import { checkpointView, EVENT_COLUMNS, EventSqlRow } from './audit-rows';
import { GENESIS_HASH } from './canonical';
import type { ChainFault } from './chain-walker';
import { CheckpointKind, signingKeyFromSeed, verifyCheckpoint } from './checkpoint';
import { AuthenticityRules, MAC_REQUIRED_FROM } from './event-authenticity';
import { AuditEventAuthenticity } from './event-authenticity.service';
import { ChainLink, copyChainLinks, LinkSqlRow, linkFromSql, walkedFromSql } from './integrity/chain-rows';
import { AuthenticityState, IntegrityWalk, stateAfter } from './integrity/integrity-walk';
import { Anchor, AnchorComparison, SourceCheckpoint } from './witness/anchor-comparison';
import { AuditWitness, HttpDeliveryState, SigningRefusal } from './witness/audit-witness.service';
import { LatestRecord, WitnessDir } from './witness/witness-dir';
import { HttpWitness } from './witness/witness-http';
import {
  CadenceGap,
  cadenceToleranceMs,
  CadenceTracker,
  verifyWitnessSignature,
  WitnessHistory,
  WitnessRecord,
  witnessRecordDigest,
} from './witness/witness-record';

export interface WitnessSourceReport {
  /** folder: AUDIT_WITNESS_DIR (or --witness); http: AUDIT_WITNESS_URL; checkpoints: a list an auditor kept. */
  kind: 'folder' | 'http' | 'checkpoints';
  location: string;
  /** ok; lagging: behind the chain or the folder; unreachable / unreadable: could not be read (not tampering by itself); diverged: holds a record the folder does not. */
  state: 'ok' | 'lagging' | 'unreachable' | 'unreadable' | 'diverged';
  /** Records (or checkpoints) read. */
  records: number;
  checkpoints: number;
  heads: number;
  /** Read records whose hash matched the chain at their seq. */
  matched: number;
  latest_seq: number | null;
  latest_at: string | null;
  /** Records waiting to be delivered (http). */
  pending?: number;
  error?: string;
}

export interface IntegrityReport {
  /** True when nothing shows tampering (status intact or attention). */
  ok: boolean;
  /** intact; attention: nothing tampered, but something the evidence should show is late or missing (see `attention`); broken. */
  status: 'intact' | 'attention' | 'broken';
  /** Chain entries whose linkage and hash were checked. */
  checked: number;
  from_seq: number;
  to_seq: number;
  /** Signed checkpoints in the range whose signature and hash matched. */
  checkpoints_verified: number;
  first_bad_seq?: number;
  reason?: string;
  /** The first faults by seq (at most 20), and how many were found in all. */
  faults: ChainFault[];
  fault_count: number;
  witness: WitnessSourceReport[];
  cadence: { interval_ms: number; tolerance_ms: number; gap_count: number; gaps: CadenceGap[] };
  /** Whether the signer is signing; `refused` since it found a segment that does not verify (and raised an alert). */
  signing: {
    state: 'signing' | 'refused';
    refusal?: SigningRefusal;
    /** The newest audit_chain_broken alert in the trail. */
    last_alert?: { at: string; seq: number | null; reason: string | null };
  };
  /** Why the status is attention: cadence gaps, a lagging or unreachable witness, unwitnessed entries. */
  attention: string[];
}

export interface VerifyOptions {
  /** Compare with this witness folder instead of the configured one (an auditor's copy). */
  witnessDir?: string;
  /** Checkpoints an auditor kept (format 1 or 2): each must match the chain, and a complete chain must hold them. */
  trustedCheckpoints?: Anchor[];
}

const VERIFY_BATCH = 5000;
/** Seqs per COPY statement of a long walk. */
const COPY_SEGMENT = 100_000;
/** The walk gives the event loop a turn at least this often. */
const YIELD_EVERY_MS = 20;
const KEPT_FAULTS = 1000;
const SHOWN_FAULTS = 20;
/** Long walks (a first witness record over an existing chain) run inside the signer's transaction. */
export const SEGMENT_TX_TIMEOUT_MS = 600_000;

type Db = Transaction | PrismaService;

function checkpointStatement(c: SourceCheckpoint) {
  return {
    seq: c.seq,
    hash: c.hash,
    signedAt: c.signed_at,
    keyId: c.key_id,
    version: c.version >= 2 ? (2 as const) : (1 as const),
    kind: 'checkpoint' as CheckpointKind,
    prev: c.prev ?? undefined,
  };
}

/** One place anchors come from, read in seq order alongside the chain. */
class AnchorSource {
  private pending: Anchor | null = null;
  private done = false;
  malformed = 0;

  constructor(
    readonly report: WitnessSourceReport,
    private readonly items: AsyncIterator<Anchor | { malformed: string; seq: number | null; fatal: boolean }>,
    readonly comparison: AnchorComparison,
    private readonly onAnchor: (a: Anchor) => ChainFault | null,
    private readonly fault: (f: ChainFault) => void,
  ) {}

  private async peek(): Promise<Anchor | null> {
    while (!this.pending && !this.done) {
      const next = await this.items.next();
      if (next.done) {
        this.done = true;
        break;
      }
      const value = next.value;
      if ('malformed' in value) {
        this.malformed++;
        if (value.fatal) {
          this.fault({
            seq: value.seq ?? 0,
            reason: `the ${this.report.kind} holds an unreadable record: ${value.malformed}`,
          });
        }
        continue;
      }
      this.pending = value;
    }
    return this.pending;
  }

  /** Feeds every anchor with seq ≤ `seq` (all with Infinity). */
  async through(seq: number): Promise<void> {
    for (let a = await this.peek(); a && a.seq <= seq; a = await this.peek()) {
      this.pending = null;
      this.report.records++;
      if (a.kind === 'checkpoint') this.report.checkpoints++;
      else this.report.heads++;
      this.report.latest_seq = a.seq;
      this.report.latest_at = a.signed_at;
      const f = this.onAnchor(a);
      if (f) this.fault(f);
      this.comparison.push(a);
    }
  }
}

/**
 * Walks the chain in seq order, streamed with COPY in segments (constant memory; the
 * per-entry rules are in integrity/integrity-walk.ts), and reports every fault,
 * the first by seq first: a missing or duplicated seq, broken prev_hash linkage, a hash
 * that does not match its event, a sealed event that is gone, a signed checkpoint the
 * chain no longer matches, an event never sealed though events after it were (inserted
 * behind the sealer's back), and everything the witness shows (records the chain no
 * longer matches, records above the chain's end, checkpoints missing, added or
 * different, a gap or rewrite in the witness's own history). Cadence gaps and a lagging
 * witness make the status `attention`, not broken.
 */
@Injectable()
export class AuditIntegrity {
  private readonly publicKey: KeyObject;
  private readonly keyId: string;
  private readonly rules: AuthenticityRules;
  /** Seqs per COPY statement of a streamed walk (tests lower it to cross segment boundaries). */
  copySegment = COPY_SEGMENT;

  constructor(
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
    // The event rules are applied by the walk itself (integrity-walk.ts), with the same configuration.
    _authenticity: AuditEventAuthenticity,
    private readonly witness: AuditWitness,
  ) {
    const key = signingKeyFromSeed(config.audit.signingKeySeed);
    this.publicKey = key.publicKey;
    this.keyId = key.keyId;
    this.rules = {
      macKey: config.audit.macKey,
      toleranceMs: config.audit.orderToleranceMs,
      macRequiredFrom: MAC_REQUIRED_FROM,
    };
  }

  /**
   * For the signer: verifies entries from..to continuing from `anchorHash` (the hash at
   * from - 1): linkage, hashes, each event's authenticity, nothing inserted behind the sealer.
   */
  async verifySegment(db: Db, from: number, to: number, anchorHash: string): Promise<ChainFault | null> {
    if (from > to) return null;
    // A short segment (the signer's, at each sealing pass) is read in the caller's transaction; a long one streams.
    const fault = await this.walk(db, from, to, anchorHash, to - from + 1 > VERIFY_BATCH, null);
    return fault ?? (await this.unsealedBehindSealer(db, from, to));
  }

  async verifyChain(
    range: { fromSeq?: number; toSeq?: number } = {},
    options: VerifyOptions = {},
  ): Promise<IntegrityReport> {
    const faults: ChainFault[] = [];
    let faultCount = 0;
    const fault = (f: ChainFault) => {
      faultCount++;
      if (faults.length < KEPT_FAULTS) faults.push(f);
    };
    const attention: string[] = [];
    const interval = this.config.audit.checkpointIntervalMs;
    const cadence = new CadenceTracker(interval, cadenceToleranceMs(interval));

    // The witnesses are read as they are now, before the chain's head: every record was
    // written after its head committed, so none of them can be above the head read next.
    const dir = options.witnessDir ? new WitnessDir(options.witnessDir) : this.witness.dir;
    const folder = await this.folderSource(dir, options.witnessDir !== undefined, cadence, fault);
    const http = options.witnessDir ? null : await this.httpSource(fault);

    const [head] = await this.prisma.$queryRaw<{ seq: bigint | null }[]>`SELECT max(seq) AS seq FROM audit_chain`;
    const headSeq = head?.seq === null || head?.seq === undefined ? 0 : Number(head.seq);
    const from = Math.max(1, range.fromSeq ?? 1);
    const to = Math.min(range.toSeq ?? headSeq, headSeq);
    const reachesHead = range.toSeq === undefined || range.toSeq >= headSeq;
    const trusted = this.trustedSource(options.trustedCheckpoints ?? [], fault);
    const sources = [folder?.source, http?.source, trusted].filter((s): s is AnchorSource => Boolean(s));

    const report = { checked: 0, checkpoints_verified: 0 };
    let walkedToEnd = true;
    if (from <= to) {
      let anchor: string | null = GENESIS_HASH;
      if (from > 1) {
        const prev = await this.prisma.auditChainLink.findUnique({ where: { seq: BigInt(from - 1) } });
        anchor = prev?.hash ?? null;
      }
      let signed = new Map<number, SourceCheckpoint[]>();
      const walkFault = await this.walk(this.prisma, from, to, anchor, true, {
        batch: async (first, last) => {
          const rows = await this.prisma.auditCheckpoint.findMany({
            where: { seq: { gte: BigInt(first), lte: BigInt(last) } },
            orderBy: [{ seq: 'asc' }, { signedAt: 'asc' }],
          });
          signed = new Map();
          for (const row of rows) {
            const c = checkpointView(row);
            signed.set(c.seq, [...(signed.get(c.seq) ?? []), c]);
          }
          for (const s of sources) await s.through(last);
        },
        entry: (seq, hash, checked) => {
          report.checked = checked;
          const here = signed.get(seq) ?? [];
          for (const c of here) {
            // Another key's checkpoints (before a rotation) are compared with the witness, not verified here.
            if (c.key_id !== this.keyId) continue;
            if (!verifyCheckpoint(this.publicKey, checkpointStatement(c), c.signature)) {
              fault({ seq, reason: 'the signed checkpoint at this seq has an invalid signature' });
            } else if (c.hash !== hash) {
              fault({ seq, reason: 'hash differs from the signed checkpoint: the chain was rewritten up to here' });
            } else {
              report.checkpoints_verified++;
            }
          }
          for (const s of sources) for (const f of s.comparison.entry(seq, hash, here)) fault(f);
        },
      });
      if (walkFault) {
        fault(walkFault);
        walkedToEnd = false;
      }
      const behind = await this.unsealedBehindSealer(this.prisma, from, to);
      if (behind) fault(behind);
    }

    // What lies above the range: above the chain's end, records mean entries were removed.
    for (const s of sources) {
      s.comparison.end(walkedToEnd && reachesHead ? headSeq : Number.MAX_SAFE_INTEGER);
      await s.through(Number.POSITIVE_INFINITY);
      const above = s.comparison.firstAbove;
      if (above) {
        fault({
          seq: headSeq + 1,
          reason:
            `the chain ends at seq ${headSeq} but the ${labelOf(s.report.kind)} holds a ${above.kind} at seq ` +
            `${above.seq} (signed ${above.signed_at}): entries were removed`,
        });
      }
      s.report.matched = s.comparison.matched;
    }
    if (reachesHead) {
      // Checkpoints above the head read at the start. The chain grows while the walk runs and the
      // signer signs the new heads, so these are read first and the head again after: above the
      // head as it is now, entries were removed; below it, each must match the entry it signed.
      const beyond = await this.prisma.auditCheckpoint.findMany({
        where: { keyId: this.keyId, seq: { gt: BigInt(headSeq) } },
        orderBy: { seq: 'asc' },
        take: 100,
      });
      if (beyond.length > 0) {
        const [now] = await this.prisma.$queryRaw<{ seq: bigint | null }[]>`SELECT max(seq) AS seq FROM audit_chain`;
        const headNow = now?.seq === null || now?.seq === undefined ? 0 : Number(now.seq);
        const removed = beyond.find((c) => Number(c.seq) > headNow);
        if (removed) {
          fault({
            seq: headNow + 1,
            reason: `the chain ends at seq ${headNow} but a signed checkpoint covers seq ${removed.seq}: entries were removed`,
          });
        }
        const links = await this.prisma.auditChainLink.findMany({
          where: { seq: { in: beyond.filter((c) => Number(c.seq) <= headNow).map((c) => c.seq) } },
          select: { seq: true, hash: true },
        });
        const hashAt = new Map(links.map((l) => [Number(l.seq), l.hash]));
        for (const c of beyond) {
          const seq = Number(c.seq);
          if (seq > headNow) continue;
          if (!verifyCheckpoint(this.publicKey, checkpointStatement(checkpointView(c)), c.signature)) {
            fault({ seq, reason: 'the signed checkpoint at this seq has an invalid signature' });
          } else if (hashAt.get(seq) !== c.hash) {
            fault({ seq, reason: 'hash differs from the signed checkpoint: the chain was rewritten up to here' });
          }
        }
      }
    }
    if (folder) {
      // An auditor's copy may be older than the database: later checkpoints are not expected in it.
      if (!options.witnessDir) {
        for (const f of await this.checkpointsAfterSnapshot(folder.dir, folder.snapshot, from, to)) fault(f);
      }
      if (!options.witnessDir) {
        const start = folder.firstSeq();
        const older = await this.prisma.auditCheckpoint.count({
          where: { version: { gte: 2 }, ...(start !== null ? { seq: { lt: BigInt(start) } } : {}) },
        });
        if (older > 0) {
          attention.push(
            `the witness folder ${start === null ? 'holds no record' : `starts at seq ${start}`}, but the database ` +
              `has ${older} format-2 checkpoint(s) ${start === null ? '' : 'below that '}signed into a witness: it was ` +
              `emptied or replaced; compare the database with the earlier one (audit verify --witness <folder>)`,
          );
        }
      }
      if (folder.source.malformed) {
        attention.push(
          `the witness folder has ${folder.source.malformed} unreadable journal line(s) (a write cut by a crash)`,
        );
      }
    }

    // Not tampering, but evidence that is late or missing.
    cadence.finish(new Date());
    if (cadence.gapCount > 0) {
      const g = cadence.gaps[0];
      attention.push(
        `${cadence.gapCount} checkpoint cadence gap(s): a checkpoint is expected within ${interval} ms (+ ${cadence.toleranceMs} ms) ` +
          `of the chain growing; the first after seq ${g.after_seq} (grew ${g.grew_at}) ` +
          (g.checkpoint_at ? `came ${g.late_ms} ms late` : `is ${g.late_ms} ms overdue`),
      );
    }
    if (folder && !options.witnessDir) await this.witnessLag(folder.source.report, headSeq, attention);
    if (http) this.httpLag(http.source.report, http.delivery, folder?.source.report ?? null, attention);
    for (const s of sources)
      if (s.report.state === 'unreachable' || s.report.state === 'unreadable') {
        attention.push(`the ${labelOf(s.report.kind)} could not be read: ${s.report.error ?? 'unknown error'}`);
      }
    const writeFailure = options.witnessDir ? null : this.witness.folderWriteFailure;
    if (writeFailure)
      attention.push(`writing to the witness folder fails since ${writeFailure.since}: ${writeFailure.error}`);

    faults.sort((a, b) => a.seq - b.seq);
    const refusal = this.witness.signingRefusal;
    const lastAlert = await this.lastChainAlert();
    const status = faults.length ? 'broken' : attention.length ? 'attention' : 'intact';
    return {
      ok: faults.length === 0,
      status,
      checked: report.checked,
      from_seq: from,
      to_seq: to,
      checkpoints_verified: report.checkpoints_verified,
      ...(faults.length ? { first_bad_seq: faults[0].seq, reason: faults[0].reason } : {}),
      faults: faults.slice(0, SHOWN_FAULTS),
      fault_count: faultCount,
      witness: sources.map((s) => s.report),
      cadence: {
        interval_ms: interval,
        tolerance_ms: cadence.toleranceMs,
        gap_count: cadence.gapCount,
        gaps: cadence.gaps,
      },
      signing: {
        state: refusal ? 'refused' : 'signing',
        ...(refusal ? { refusal } : {}),
        ...(lastAlert ? { last_alert: lastAlert } : {}),
      },
      attention,
    };
  }

  private async folderSource(
    dir: WitnessDir,
    givenByAuditor: boolean,
    cadence: CadenceTracker,
    fault: (f: ChainFault) => void,
  ): Promise<{ source: AnchorSource; dir: WitnessDir; snapshot: LatestRecord | null; firstSeq: () => number | null }> {
    const report = emptySourceReport('folder', dir.root);
    let snapshot: LatestRecord | null = null;
    // Where the folder's history starts: checkpoints below it predate it (an upgrade, or a witness replaced).
    let firstSeq: number | null = null;
    try {
      snapshot = await dir.latest();
    } catch (err) {
      report.state = 'unreadable';
      report.error = errorText(err);
    }
    const history = new WitnessHistory({ publicKey: this.publicKey, keyId: this.keyId }, 'witness folder');
    const comparison = new AnchorComparison({
      label: 'witness folder',
      source: 'database',
      // Checkpoints signed after the folder was read are looked up by name afterwards (checkpointsAfterSnapshot).
      // Anchors come in before the entries of their seq: an unset start means no record at or below this one.
      expectsInAnchors: (c) => firstSeq !== null && c.seq >= firstSeq && covers(snapshot?.record ?? null, c),
      countsAbove: () => true,
    });
    async function* items() {
      if (!snapshot) return;
      for await (const item of dir.items()) {
        if ('record' in item) {
          yield toAnchor(item.record);
          // Records written after the snapshot may lie above the head read after it: not read.
          if (witnessRecordDigest(item.record) === snapshot.digest) return;
        } else {
          yield item;
        }
      }
      fault({ seq: snapshot.record.seq, reason: 'the witness folder’s latest record is not in its history as read' });
    }
    const source = new AnchorSource(
      report,
      items(),
      comparison,
      (a) => {
        firstSeq ??= a.seq;
        cadence.accept(a as WitnessRecord);
        return history.accept(a as WitnessRecord);
      },
      fault,
    );
    if (givenByAuditor && !snapshot && report.state === 'ok') {
      report.state = 'unreadable';
      report.error = 'no witness record in this folder';
    }
    return { source, dir, snapshot, firstSeq: () => firstSeq };
  }

  private async httpSource(
    fault: (f: ChainFault) => void,
  ): Promise<{ source: AnchorSource; delivery: HttpDeliveryState | null } | null> {
    const witnessHttp: HttpWitness | null = this.witness.http;
    if (!witnessHttp) return null;
    const http = witnessHttp;
    const report = emptySourceReport('http', http.shownAs);
    let count = 0;
    let latest: WitnessRecord | null = null;
    try {
      count = await http.count();
      if (count > 0) {
        const [last] = (await http.page(count - 1, 1)).records;
        if (typeof last !== 'string') latest = last;
      }
    } catch (err) {
      report.state = 'unreachable';
      report.error = errorText(err);
      count = 0;
    }
    const history = new WitnessHistory({ publicKey: this.publicKey, keyId: this.keyId }, 'HTTP witness');
    const comparison = new AnchorComparison({
      label: 'HTTP witness',
      source: 'database',
      // It receives records in the background: only checkpoints below its latest record must be there.
      expectsInAnchors: (c) => latest !== null && c.seq < latest.seq,
      countsAbove: () => true,
    });
    async function* items() {
      try {
        for await (const r of http.records(count)) {
          yield typeof r === 'string' ? { malformed: r, seq: null, fatal: true } : toAnchor(r);
        }
      } catch (err) {
        report.state = 'unreachable';
        report.error = errorText(err);
      }
    }
    const source = new AnchorSource(report, items(), comparison, (a) => history.accept(a as WitnessRecord), fault);
    return { source, delivery: this.witness.httpDelivery() };
  }

  private trustedSource(checkpoints: Anchor[], fault: (f: ChainFault) => void): AnchorSource | null {
    if (checkpoints.length === 0) return null;
    const sorted = [...checkpoints].sort((a, b) => a.seq - b.seq);
    const report = emptySourceReport('checkpoints', `${sorted.length} trusted checkpoint(s)`);
    const comparison = new AnchorComparison({
      label: 'trusted checkpoints',
      source: 'database',
      expectsInAnchors: () => false,
      countsAbove: () => true,
    });
    async function* items() {
      yield* sorted;
    }
    return new AnchorSource(
      report,
      items(),
      comparison,
      (a) => {
        if (a.key_id !== this.keyId) return null;
        const ok =
          a.version >= 2
            ? verifyWitnessSignature(this.publicKey, a as WitnessRecord)
            : verifyCheckpoint(this.publicKey, checkpointStatement(a), a.signature);
        return ok ? null : { seq: a.seq, reason: 'a trusted checkpoint at this seq has an invalid signature' };
      },
      fault,
    );
  }

  /**
   * Format-2 checkpoints the database holds that were signed after the folder was read:
   * each was written to the folder before its row committed, so it must be there now.
   */
  private async checkpointsAfterSnapshot(
    dir: WitnessDir,
    snapshot: LatestRecord | null,
    from: number,
    to: number,
  ): Promise<ChainFault[]> {
    const rows = await this.prisma.auditCheckpoint.findMany({
      where: {
        version: { gte: 2 },
        seq: { gte: BigInt(Math.max(from, snapshot?.record.seq ?? 0)), lte: BigInt(to) },
      },
      orderBy: { seq: 'asc' },
      take: 100,
    });
    const faults: ChainFault[] = [];
    if (!snapshot) return faults; // an empty folder: reported as replaced (verifyChain), not checkpoint by checkpoint
    for (const row of rows) {
      const c = checkpointView(row);
      if (covers(snapshot?.record ?? null, c)) continue;
      const found = await dir.findCheckpoint(c.seq, c.signed_at, c.key_id);
      if (!found || found.signature !== c.signature) {
        faults.push({
          seq: c.seq,
          reason: found
            ? 'the checkpoint at this seq differs between the database and the witness folder'
            : 'the database holds a checkpoint at this seq that the witness folder lacks: it was added, or the witness folder lost it',
        });
      }
    }
    return faults;
  }

  /** Entries the folder has not seen, sealed longer ago than the cadence tolerance: the witness is not being written. */
  private async witnessLag(report: WitnessSourceReport, headSeq: number, attention: string[]): Promise<void> {
    const witnessed = report.latest_seq ?? 0;
    if (headSeq <= witnessed) return;
    const [first] = await this.prisma.$queryRaw<{ sealed_at: Date }[]>`
      SELECT sealed_at FROM audit_chain WHERE seq = ${witnessed + 1}::bigint`;
    if (!first) return;
    const age = Date.now() - first.sealed_at.getTime();
    if (age <= cadenceToleranceMs(this.config.audit.checkpointIntervalMs)) return;
    if (report.state === 'ok') report.state = 'lagging';
    attention.push(
      `${headSeq - witnessed} chain entries (from seq ${witnessed + 1}, sealed ${first.sealed_at.toISOString()}) are not in the witness folder`,
    );
  }

  private httpLag(
    report: WitnessSourceReport,
    delivery: HttpDeliveryState | null,
    folder: WitnessSourceReport | null,
    attention: string[],
  ): void {
    if (delivery) {
      report.pending = delivery.pending;
      if (delivery.state === 'diverged') {
        report.state = 'diverged';
        attention.push('the HTTP witness holds a record the witness folder does not: the two histories diverged');
      } else if (delivery.state === 'unreachable' && report.state === 'ok') {
        report.state = 'unreachable';
        report.error = delivery.last_error;
      }
    }
    const behind = (folder?.records ?? 0) - report.records;
    if (report.state === 'ok' && behind > 0) {
      report.state = 'lagging';
      attention.push(`the HTTP witness is ${behind} record(s) behind the witness folder (delivery is retried)`);
    }
  }

  private async lastChainAlert(): Promise<{ at: string; seq: number | null; reason: string | null } | null> {
    const [row] = await this.prisma.$queryRaw<{ occurred_at: Date; details: Record<string, unknown> }[]>`
      SELECT occurred_at, details FROM audit_events
      WHERE action = 'security.alert' AND details->>'reason' = 'audit_chain_broken'
      ORDER BY occurred_at DESC, id DESC LIMIT 1`;
    if (!row) return null;
    const seq = row.details?.seq;
    const reason = row.details?.fault;
    return {
      at: row.occurred_at.toISOString(),
      seq: typeof seq === 'number' ? seq : null,
      reason: typeof reason === 'string' ? reason : null,
    };
  }

  private async walk(
    db: Db,
    from: number,
    to: number,
    anchor: string | null,
    /** Stream with COPY on a connection of its own (verifyChain, long segments), or read in `db`. */
    stream: boolean,
    visit: {
      batch(first: number, last: number): Promise<void>;
      entry(seq: number, hash: string, checked: number): void;
    } | null,
  ): Promise<ChainFault | null> {
    const walk = new IntegrityWalk(from, anchor, this.rules, await this.stateBefore(db, from));
    const links = stream ? this.copyLinks(from, to) : this.queryLinks(db, from, to);
    // Checkpoints and anchors are looked up by windows of VERIFY_BATCH seqs, ahead of the entries in them.
    let windowEnd = from - 1;
    let after = from - 1;
    let sinceYield = 0;
    let yieldAt = performance.now() + YIELD_EVERY_MS;
    for await (const batch of links) {
      for (const link of batch) {
        if (visit && link.seq > windowEnd) {
          const first = windowEnd + 1;
          windowEnd = Math.min(to, Math.max(link.seq, first + VERIFY_BATCH - 1));
          await visit.batch(first, windowEnd);
        }
        const fault = walk.accept(link);
        if (fault) return fault;
        after = link.seq;
        visit?.entry(link.seq, link.hash, walk.checked);
      }
      // Let requests through between batches: the check may run in the API process.
      sinceYield += batch.length;
      if (sinceYield >= 256) {
        sinceYield = 0;
        if (performance.now() >= yieldAt) {
          await new Promise((resolve) => setImmediate(resolve));
          yieldAt = performance.now() + YIELD_EVERY_MS;
        }
      }
    }
    return after < to ? { seq: after + 1, reason: `chain entries from seq ${after + 1} are missing` } : null;
  }

  /** The event rules' state before `from`: what the entry at from - 1 tells (nothing for seq 1). */
  private async stateBefore(db: Db, from: number): Promise<AuthenticityState> {
    if (from <= 1) return { tail: null, firstMacSeq: null };
    const [previous] = await db.$queryRaw<EventSqlRow[]>`
      SELECT ${EVENT_COLUMNS} FROM audit_chain c JOIN audit_events e ON e.id = c.event_id
      WHERE c.seq = ${from - 1}::bigint`;
    return stateAfter(this.rules, from - 1, previous ? walkedFromSql(previous) : null);
  }

  private async *queryLinks(db: Db, from: number, to: number): AsyncGenerator<ChainLink[]> {
    for (let after = from - 1; after < to;) {
      const rows = await db.$queryRaw<LinkSqlRow[]>`
        SELECT c.seq, c.prev_hash, c.hash AS link_hash, ${EVENT_COLUMNS}
        FROM audit_chain c LEFT JOIN audit_events e ON e.id = c.event_id
        WHERE c.seq > ${after}::bigint AND c.seq <= ${to}::bigint
        ORDER BY c.seq LIMIT ${VERIFY_BATCH}`;
      if (rows.length === 0) return;
      yield rows.map(linkFromSql);
      after = Number(rows[rows.length - 1].seq);
    }
  }

  /** Links from..to streamed with COPY on a connection of the walk's own, closed at the end (or when the walk stops). */
  private async *copyLinks(from: number, to: number): AsyncGenerator<ChainLink[]> {
    const client = new pg.Client(poolConfigFromUrl(this.config.databaseUrl, { application_name: 'idgate-integrity' }));
    client.on('error', () => undefined); // the socket closed under a COPY the walk stopped reading
    await client.connect();
    try {
      yield* copyChainLinks(client, from, to, this.copySegment);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * Sealing is in (txid, id) order and never skips: an unsealed event that
   * sorts before a sealed one was slipped in afterwards. Reported at the seq
   * of the first entry sealed after the place it claims.
   */
  private async unsealedBehindSealer(db: Db, from: number, to: number): Promise<ChainFault | null> {
    const lower =
      from > 1
        ? Prisma.sql`AND (e.txid, e.id) > (SELECT s.txid, s.id FROM audit_chain c JOIN audit_events s ON s.id = c.event_id WHERE c.seq = ${from - 1}::bigint)`
        : Prisma.empty;
    const [stray] = await db.$queryRaw<{ id: string; next_seq: bigint | null }[]>`
      WITH bound AS (
        SELECT s.txid, s.id FROM audit_chain c JOIN audit_events s ON s.id = c.event_id WHERE c.seq = ${to}::bigint
      )
      SELECT e.id::text AS id,
        (SELECT c2.seq FROM audit_events s2 JOIN audit_chain c2 ON c2.event_id = s2.id
          WHERE (s2.txid, s2.id) > (e.txid, e.id) ORDER BY s2.txid, s2.id LIMIT 1) AS next_seq
      FROM audit_events e, bound
      WHERE (e.txid, e.id) < (bound.txid, bound.id) ${lower}
        AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.event_id = e.id)
      ORDER BY e.txid, e.id LIMIT 1`;
    if (!stray) return null;
    return {
      seq: stray.next_seq === null ? to : Number(stray.next_seq),
      reason: `event ${stray.id} was never sealed though events after it were: it was inserted behind the sealer`,
    };
  }
}

/** Whether a witness read up to `latest` must hold checkpoint `c` (it was written before `latest`). */
function covers(latest: WitnessRecord | null, c: SourceCheckpoint): boolean {
  if (!latest) return false;
  if (c.seq < latest.seq) return true;
  return c.seq === latest.seq && latest.kind === 'checkpoint' && c.signed_at <= latest.signed_at;
}

function toAnchor(r: WitnessRecord): Anchor {
  return r;
}

function labelOf(kind: WitnessSourceReport['kind']): string {
  return kind === 'folder' ? 'witness folder' : kind === 'http' ? 'HTTP witness' : 'trusted checkpoints';
}

function emptySourceReport(kind: WitnessSourceReport['kind'], location: string): WitnessSourceReport {
  return {
    kind,
    location,
    state: 'ok',
    records: 0,
    checkpoints: 0,
    heads: 0,
    matched: 0,
    latest_seq: null,
    latest_at: null,
  };
}

function errorText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code ?? (err instanceof Error ? err.message : String(err));
}
