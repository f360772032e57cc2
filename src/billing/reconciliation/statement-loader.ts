import { Injectable } from '@nestjs/common';
import { createHash, Hash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import { validationProblem } from '../../common/problem';
import { StagingRowWriter, SeenTraceIds } from './staging-rows';
import { StagingCopy, StatementStaging } from './statement-staging.store';
import { StatementReader, StatementRecord } from './statement-reader';
import { isStatementHeader, parseStatementLine, STATEMENT_HEADER, unreadableLine } from './statement-rules';
import type { StatementUpload } from './statement-upload';

/** The longest statement line (characters); a longer one is reported as malformed and skipped unread. */
const MAX_RECORD_CHARS = 64 * 1024;
/** Rows gathered before they are sent to the COPY (bounded: at most this plus one chunk's rows is held). */
const FLUSH_BYTES = 512 * 1024;
/** With no rows to send for this long (a slow upload), the COPY commits and its connection is given back. */
const IDLE_MS = 200;

export const NOT_A_STATEMENT = `is not a vendor statement: the first line must be exactly ${STATEMENT_HEADER}`;

/** What loading a statement learnt, for matching and the report. */
export interface LoadedStatement {
  fileSha256: string;
  fileBytes: number;
  /** Data lines (header excluded), malformed ones included. */
  lineCount: number;
  /** The last line number (header = 1): items of ours are numbered after it. */
  maxLineNo: number;
  /** Earliest and latest called_at of the good lines (the statement's own period). */
  calledAt: { min: Date | null; max: Date | null };
  /** Good lines flagged `seen_before` (possible repeats of an earlier trace id); 0: no line repeats one. */
  repeatCandidates: number;
}

/**
 * Loader: the upload, as its bytes arrive, into the staging table. Bytes are
 * hashed, decoded (invalid UTF-8 becomes U+FFFD, and such a line fails its
 * checks), split into records by StatementReader (a line it cannot read is a
 * malformed line with its number, and reading goes on), judged line by line
 * (statement-rules.ts) and streamed as binary COPY rows (staging-rows.ts).
 * Never held whole: one chunk, one record and FLUSH_BYTES of rows at most.
 */
@Injectable()
export class StatementLoader {
  constructor(private readonly staging: StatementStaging) {}

  /**
   * Reads up to the header. Not a statement: 400 (field `file`), and the rest of
   * the request is drained so the client gets the answer.
   */
  async open(upload: StatementUpload): Promise<OpenStatement> {
    const statement = new OpenStatement(upload, this.staging.copyChannel());
    // An upload that fails before its first line is no statement either.
    const headerOk = await statement.readHeader().catch(() => false);
    if (!headerOk) {
      await statement.release();
      throw validationProblem([{ field: 'file', message: NOT_A_STATEMENT }]);
    }
    return statement;
  }
}

/** A statement whose header has been read; `loadInto` streams the rest into the staging table. */
export class OpenStatement {
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private readonly decoder = new StringDecoder('utf8');
  private readonly reader = new StatementReader({
    maxRecordChars: MAX_RECORD_CHARS,
    // A quoted field spanning lines is kept only when it makes a good line; otherwise its quote was unbalanced.
    acceptSpanning: (fields) => parseStatementLine(fields, 0).ok,
  });
  /** Not destroyed on return: after a refusal the rest of the request is drained, so the client gets the answer. */
  private readonly chunks: AsyncIterator<Buffer | string>;
  /** Records read before there was somewhere to put them (the rest of the header's chunk). */
  private early: StatementRecord[] = [];
  private onRecord: (record: StatementRecord) => void = (record) => void this.early.push(record);
  private ended = false;

  constructor(
    private readonly upload: StatementUpload,
    private readonly copy: StagingCopy,
  ) {
    this.chunks = upload.stream.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer | string>;
  }

  async readHeader(): Promise<boolean> {
    while (this.early.length === 0 && !this.ended) await this.consume(await this.chunks.next());
    const first = this.early.shift();
    return first?.kind === 'record' && first.lineNo === 1 && isStatementHeader(first.fields);
  }

  /** Streams every line into the staging table under `reconciliationId`. On failure nothing of this COPY stays. */
  async loadInto(reconciliationId: string): Promise<LoadedStatement> {
    const rows = new StagingRowWriter(reconciliationId);
    const seen = new SeenTraceIds();
    let lineCount = 0;
    let maxLineNo = 1;
    let repeatCandidates = 0;
    let min = Infinity;
    let max = -Infinity;
    this.onRecord = (record) => {
      lineCount++;
      maxLineNo = record.lineNo;
      if (record.kind === 'unreadable') {
        rows.add(unreadableLine(record.lineNo, record.problem), record.firstField, false);
        return;
      }
      const parsed = parseStatementLine(record.fields, record.lineNo);
      if (parsed.ok) {
        const at = parsed.line.calledAt.getTime();
        if (at < min) min = at;
        if (at > max) max = at;
        const seenBefore = seen.seenThenAdd(parsed.line.traceId);
        if (seenBefore) repeatCandidates++;
        rows.add(parsed, undefined, seenBefore);
      } else {
        rows.add(parsed, record.fields[0], false);
      }
    };
    try {
      for (const record of this.early.splice(0)) this.onRecord(record);
      while (!this.ended) {
        if (rows.size >= FLUSH_BYTES) await this.copy.write(rows.take());
        await this.consume(await this.nextChunk());
      }
      await this.copy.write(rows.take());
      await this.copy.finish();
    } catch (err) {
      await this.copy.abort();
      await this.release();
      throw err;
    }
    const calledAt = min <= max ? { min: new Date(min), max: new Date(max) } : { min: null, max: null };
    const fileSha256 = this.hash.digest('hex');
    return { fileSha256, fileBytes: this.bytes, lineCount, maxLineNo, calledAt, repeatCandidates };
  }

  /** Stops reading: the rest of the request is drained (not destroyed), and nothing more is copied. */
  async release(): Promise<void> {
    await this.copy.abort();
    await this.chunks.return?.().catch(() => undefined);
    this.upload.discard();
  }

  /** The next chunk; while it is slow to come, the COPY in progress commits and its connection is given back. */
  private async nextChunk(): Promise<IteratorResult<Buffer | string>> {
    const next = this.chunks.next();
    if (!this.copy.open) return next;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<'idle'>((resolve) => (timer = setTimeout(() => resolve('idle'), IDLE_MS)));
    const first = await Promise.race([next, idle]);
    clearTimeout(timer);
    if (first !== 'idle') return first;
    await this.copy.pause();
    return next;
  }

  private async consume(next: IteratorResult<Buffer | string>): Promise<void> {
    if (next.done) {
      this.reader.push(this.decoder.end(), this.onRecord);
      this.reader.end(this.onRecord);
      this.ended = true;
      return;
    }
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.reader.push(this.decoder.write(chunk), this.onRecord);
  }
}
