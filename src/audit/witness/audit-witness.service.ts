import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { mkdirSync } from 'node:fs';
import { loggableError } from '../../common/problem.filter';
import { AppConfig } from '../../config/app-config';
import type { CheckpointKind } from '../checkpoint';
import type { ChainFault } from '../chain-walker';
import { checkWitnessFolder } from './folder-safety';
import { LatestRecord, WitnessDir } from './witness-dir';
import { HttpWitness } from './witness-http';
import { WitnessRecord, witnessRecordDigest } from './witness-record';

/** The signer's refusal to sign a segment that does not verify, as the integrity badge shows it. */
export interface SigningRefusal {
  since: string;
  kind: CheckpointKind;
  seq: number;
  reason: string;
}

export interface HttpDeliveryState {
  url: string;
  /** ok: every record delivered; lagging: some wait; unreachable: the last attempt failed; diverged: it holds a record the folder does not. */
  state: 'ok' | 'lagging' | 'unreachable' | 'diverged';
  pending: number;
  last_error?: string;
  last_delivered_at?: string;
}

/** Records waiting for the HTTP witness beyond this are dropped and re-read from the folder when it answers again. */
const MAX_QUEUE = 10_000;
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 30_000;

/**
 * Where checkpoints and sealed heads go besides the database: the witness folder
 * (AUDIT_WITNESS_DIR, written synchronously, holds the one history of records) and,
 * when set, an HTTP witness (AUDIT_WITNESS_URL) that receives a copy of every record in
 * the background, with retries. Refuses to start on a folder the database server's OS
 * user could write (folder-safety.ts).
 */
@Injectable()
export class AuditWitness implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(AuditWitness.name);
  readonly dir: WitnessDir;
  readonly http: HttpWitness | null;
  /** Set at start when no separation from the database server is possible on this machine. */
  warning: string | null = null;
  private refusal: SigningRefusal | null = null;
  private writeFailure: { since: string; error: string } | null = null;
  private queue: WitnessRecord[] = [];
  private resyncNeeded = true;
  private delivering: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_MIN_MS;
  private stopped = false;
  private httpState: Omit<HttpDeliveryState, 'url' | 'pending' | 'state'> & {
    error: boolean;
    diverged: boolean;
  } = { error: false, diverged: false };

  constructor(private readonly config: AppConfig) {
    this.dir = new WitnessDir(config.audit.witnessDir);
    this.http = config.audit.witnessUrl ? new HttpWitness(config.audit.witnessUrl) : null;
  }

  onModuleInit(): void {
    mkdirSync(this.dir.root, { recursive: true, mode: 0o755 });
    const check = checkWitnessFolder(this.dir.root, this.config.embeddedDatabase);
    if (check.refusal) throw new Error(check.refusal);
    this.warning = check.warning;
    if (check.warning && !this.http) this.logger.warn(check.warning);
  }

  onApplicationBootstrap(): void {
    if (this.http && this.config.backgroundWorkers) this.kick();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.delivering?.catch(() => undefined);
  }

  latest(): Promise<LatestRecord | null> {
    return this.dir.latest();
  }

  /** Writes a record to the folder (durably, before returning) and queues it for the HTTP witness. */
  async append(record: WitnessRecord, latest: LatestRecord | null): Promise<void> {
    try {
      await this.dir.append(record, latest);
      this.writeFailure = null;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      this.writeFailure ??= {
        since: new Date().toISOString(),
        error: code ?? (err instanceof Error ? err.message : String(err)),
      };
      throw err;
    }
    this.refusal = null;
    if (!this.http) return;
    if (this.queue.length >= MAX_QUEUE) {
      this.queue = [];
      this.resyncNeeded = true;
    } else {
      this.queue.push(record);
    }
    this.kick();
  }

  /** The signer would not sign (or write a head over) a segment that does not verify. */
  refused(kind: CheckpointKind, fault: ChainFault): void {
    if (this.refusal?.seq === fault.seq && this.refusal.reason === fault.reason) return;
    this.refusal = { since: new Date().toISOString(), kind, seq: fault.seq, reason: fault.reason };
  }

  clearRefusal(): void {
    this.refusal = null;
  }

  get signingRefusal(): SigningRefusal | null {
    return this.refusal;
  }

  get folderWriteFailure(): { since: string; error: string } | null {
    return this.writeFailure;
  }

  /** Null without an HTTP witness, and in a CLI command (no delivery of its own: the server's delivers). */
  httpDelivery(): HttpDeliveryState | null {
    if (!this.http || !this.config.backgroundWorkers) return null;
    const pending = this.queue.length + (this.resyncNeeded ? 1 : 0);
    const { error: failed, diverged, ...rest } = this.httpState;
    const state = diverged ? 'diverged' : failed ? 'unreachable' : pending > 0 ? 'lagging' : 'ok';
    return { url: this.http.shownAs, state, pending: this.queue.length, ...rest };
  }

  /** Waits until every queued record reached the HTTP witness (tests, shutdown of a CLI command), up to `ms`. */
  async flush(ms = 10_000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const state = this.httpDelivery();
      if (!state || state.state === 'ok') return true;
      this.kick(true);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return false;
  }

  private kick(now = false): void {
    // Not in a CLI command: the server's delivery finds what it wrote (a 409, then a resync from the folder).
    if (this.stopped || !this.http || !this.config.backgroundWorkers) return;
    if (now) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    if (this.delivering || this.retryTimer) return;
    this.delivering = this.deliver().finally(() => (this.delivering = null));
  }

  private async deliver(): Promise<void> {
    const http = this.http as HttpWitness;
    try {
      for (;;) {
        if (this.stopped) return;
        if (this.resyncNeeded) {
          this.resyncNeeded = false;
          try {
            await this.resync(http);
          } catch (err) {
            this.resyncNeeded = true;
            throw err;
          }
        }
        const next = this.queue[0];
        if (!next) break;
        const outcome = await http.post(next);
        if (outcome === 'conflict') {
          this.resyncNeeded = true;
          continue;
        }
        this.queue.shift();
        this.httpState.last_delivered_at = new Date().toISOString();
      }
      this.httpState = { ...this.httpState, error: false, diverged: false, last_error: undefined };
      this.retryMs = RETRY_MIN_MS;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (!this.httpState.error)
        this.logger.warn({ err: loggableError(err) }, 'HTTP witness delivery failed; retrying');
      this.httpState = { ...this.httpState, error: true, last_error: message };
      if (!this.stopped) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.kick();
        }, this.retryMs);
        this.retryTimer.unref();
        this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
      }
    }
  }

  /**
   * Brings the HTTP witness up to the folder: finds its latest record in the folder's
   * history and sends every record after it, in order. A latest record the folder does
   * not hold means the two histories diverged: reported, never papered over.
   */
  private async resync(http: HttpWitness): Promise<void> {
    const count = await http.count();
    let theirs: string | null = null;
    if (count > 0) {
      const [last] = (await http.page(count - 1, 1)).records;
      if (typeof last === 'string') throw new Error(`the HTTP witness's latest record is malformed: ${last}`);
      theirs = witnessRecordDigest(last);
    }
    const ours = await this.dir.latest();
    if (ours && ours.digest === theirs) {
      this.queue = [];
      this.httpState.diverged = false;
      return;
    }
    let found = theirs === null;
    for await (const item of this.dir.items()) {
      if (this.stopped) return;
      if (!('record' in item)) continue;
      if (!found) {
        found = witnessRecordDigest(item.record) === theirs;
        continue;
      }
      const outcome = await http.post(item.record);
      if (outcome === 'conflict') throw new Error('the HTTP witness refused a record of the folder’s history');
      this.httpState.last_delivered_at = new Date().toISOString();
    }
    if (!found) {
      this.httpState.diverged = true;
      throw new Error('the HTTP witness holds a record the witness folder does not: the two histories diverged');
    }
    this.httpState.diverged = false;
    // Everything the folder held is delivered; records queued meanwhile are answered "already held".
  }
}

/** For the start banner (src/main.ts): the witness's whereabouts, and the warning when it is not separated from the database. */
export function witnessBannerLines(config: AppConfig, warning: string | null): string[] {
  const lines = [
    `  audit witness: ${config.audit.witnessDir}${config.audit.witnessUrl ? ` and ${new HttpWitness(config.audit.witnessUrl).shownAs}` : ''}`,
  ];
  if (warning) lines.push(`  WARNING: ${warning}`);
  return lines;
}
