import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import {
  CHECKPOINT_FILE,
  checkpointFileName,
  DAY_DIR,
  HEAD_JOURNAL,
  headJournalName,
  placeFor,
  RecordPlace,
} from './witness-layout';
import {
  compareRecordOrder,
  parseWitnessRecord,
  serializeWitnessRecord,
  WitnessRecord,
  witnessRecordDigest,
} from './witness-record';

export interface LatestRecord {
  record: WitnessRecord;
  digest: string;
  /** Where the next record may go (see placeFor). */
  place: RecordPlace;
}

/** A record read back, or a place where no record could be read. */
export type WitnessItem =
  { record: WitnessRecord; where: string } | { malformed: string; seq: number | null; where: string; fatal: boolean };

/** Tail read for the latest head: far more than one record (about 350 bytes). */
const TAIL_BYTES = 64 * 1024;

/**
 * The witness folder: append-only by construction (a checkpoint file is created with
 * link(), which never replaces; a journal is opened O_APPEND), every write fsynced with
 * its folder. It protects the history only as far as the database server's OS user
 * cannot write here: see folder-safety.ts.
 */
export class WitnessDir {
  constructor(readonly root: string) {}

  async ensure(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o755 });
  }

  private async days(): Promise<string[]> {
    return (await readdir(this.root).catch(notFoundAsEmpty)).filter((d) => DAY_DIR.test(d)).sort();
  }

  /** The newest record, read from the folder itself (another instance may have written it). */
  async latest(): Promise<LatestRecord | null> {
    const days = await this.days();
    for (let i = days.length - 1; i >= 0; i--) {
      const day = days[i];
      const names = await readdir(path.join(this.root, day)).catch(notFoundAsEmpty);
      const journals = names.filter((n) => HEAD_JOURNAL.test(n)).sort();
      const checkpoints = names.filter((n) => CHECKPOINT_FILE.test(n)).sort();
      const candidates: WitnessRecord[] = [];
      for (let j = journals.length - 1; j >= 0; j--) {
        const last = await this.lastJournalRecord(path.join(this.root, day, journals[j]));
        if (last) {
          candidates.push(last);
          break;
        }
      }
      for (let j = checkpoints.length - 1; j >= 0; j--) {
        const record = await this.readCheckpoint(path.join(this.root, day, checkpoints[j]));
        if (typeof record !== 'string') {
          candidates.push(record);
          break;
        }
      }
      if (candidates.length === 0) continue;
      const record = candidates.sort(compareRecordOrder)[candidates.length - 1];
      const lastHour = journals.length
        ? (HEAD_JOURNAL.exec(journals[journals.length - 1]) as RegExpExecArray)[1]
        : '00';
      return { record, digest: witnessRecordDigest(record), place: { day, hour: lastHour } };
    }
    return null;
  }

  /** Appends a record after `latest` (read under the sealer's lock by the caller), durably. */
  async append(record: WitnessRecord, latest: LatestRecord | null): Promise<string> {
    const place = placeFor(record, latest?.place ?? null);
    const dayDir = path.join(this.root, place.day);
    const dayCreated = await mkdir(dayDir, { mode: 0o755 }).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST') return false;
        throw err;
      },
    );
    if (dayCreated) await fsyncDir(this.root);
    const line = serializeWitnessRecord(record) + '\n';
    if (record.kind === 'checkpoint') {
      const file = path.join(dayDir, checkpointFileName(record));
      const temp = path.join(dayDir, `.tmp-${randomBytes(6).toString('hex')}`);
      const handle = await open(temp, 'wx', 0o444);
      try {
        await handle.writeFile(line, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      try {
        // link() fails when the name exists: a checkpoint file is never replaced.
        await link(temp, file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if ((await readFile(file, 'utf8')) !== line) {
          throw new Error(`witness: ${file} already exists with other content`, { cause: err });
        }
      } finally {
        await unlink(temp).catch(() => undefined);
      }
      await fsyncDir(dayDir);
      return file;
    }
    const file = path.join(dayDir, headJournalName(place.hour));
    const handle = await open(file, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT, 0o644);
    try {
      const { size } = await handle.stat();
      let text = line;
      if (size > 0) {
        // A write cut by a crash leaves a line without its newline: start ours on a line of its own.
        const last = Buffer.alloc(1);
        const read = await open(file, 'r').then(async (r) => {
          try {
            return await r.read(last, 0, 1, size - 1);
          } finally {
            await r.close();
          }
        });
        if (read.bytesRead === 1 && last[0] !== 0x0a) text = '\n' + line;
      }
      await handle.write(text);
      await handle.datasync();
      if (size === 0) await fsyncDir(dayDir);
    } finally {
      await handle.close();
    }
    return file;
  }

  /** The checkpoint file for (seq, signed_at, key id), wherever its day put it, or null. */
  async findCheckpoint(seq: number, signedAt: string, keyId: string): Promise<WitnessRecord | null> {
    const name = checkpointFileName({ seq, signed_at: signedAt, key_id: keyId } as WitnessRecord);
    // Its own day, or a later one (a record never goes into an earlier day than the latest).
    for (const day of (await this.days()).filter((d) => d >= signedAt.slice(0, 10))) {
      const record = await this.readCheckpoint(path.join(this.root, day, name));
      if (typeof record !== 'string') return record;
    }
    return null;
  }

  /** Every record, in the order written, day by day; in memory a day's checkpoint names and one journal at a time. */
  async *items(): AsyncGenerator<WitnessItem> {
    for (const day of await this.days()) {
      const dayDir = path.join(this.root, day);
      const names = await readdir(dayDir).catch(notFoundAsEmpty);
      const checkpointNames = names.filter((n) => CHECKPOINT_FILE.test(n)).sort();
      const journals = names.filter((n) => HEAD_JOURNAL.test(n)).sort();
      const heads = this.journalItems(dayDir, journals);
      let nextHead = await heads.next();
      for (const name of checkpointNames) {
        const where = path.join(day, name);
        const parsed = await this.readCheckpoint(path.join(dayDir, name));
        if (typeof parsed === 'string') {
          yield {
            malformed: parsed,
            seq: Number((CHECKPOINT_FILE.exec(name) as RegExpExecArray)[1]),
            where,
            fatal: true,
          };
          continue;
        }
        while (!nextHead.done && precedes(nextHead.value, parsed)) {
          yield nextHead.value;
          nextHead = await heads.next();
        }
        yield { record: parsed, where };
      }
      while (!nextHead.done) {
        yield nextHead.value;
        nextHead = await heads.next();
      }
    }
  }

  private async *journalItems(dayDir: string, journals: string[]): AsyncGenerator<WitnessItem> {
    for (const name of journals) {
      const text = await readFile(path.join(dayDir, name), 'utf8').catch(() => '');
      const lines = text.split('\n');
      // The last piece has no newline: a record still being written, or cut by a crash.
      const complete = lines.slice(0, -1);
      for (const [i, line] of complete.entries()) {
        if (line === '') continue;
        const where = `${path.basename(dayDir)}/${name}:${i + 1}`;
        const parsed = parseLine(line);
        if (typeof parsed === 'string') yield { malformed: parsed, seq: null, where, fatal: false };
        else yield { record: parsed, where };
      }
    }
  }

  private async lastJournalRecord(file: string): Promise<WitnessRecord | null> {
    const handle = await open(file, 'r').catch(() => null);
    if (!handle) return null;
    try {
      const { size } = await handle.stat();
      let length = Math.min(size, TAIL_BYTES);
      for (;;) {
        const buffer = Buffer.alloc(length);
        await handle.read(buffer, 0, length, size - length);
        const lines = buffer.toString('utf8').split('\n').slice(0, -1);
        // The first piece of a partial read may be the cut end of an earlier line: not trusted.
        const usable = length === size ? lines : lines.slice(1);
        for (let i = usable.length - 1; i >= 0; i--) {
          const parsed = parseLine(usable[i]);
          if (typeof parsed !== 'string') return parsed;
        }
        if (length === size) return null;
        length = size;
      }
    } finally {
      await handle.close();
    }
  }

  private async readCheckpoint(file: string): Promise<WitnessRecord | string> {
    const text = await readFile(file, 'utf8').catch(() => null);
    if (text === null) return 'unreadable';
    if (!text.endsWith('\n') || text.indexOf('\n') !== text.length - 1) return 'not one record';
    return parseLine(text.slice(0, -1));
  }
}

function parseLine(line: string): WitnessRecord | string {
  try {
    return parseWitnessRecord(JSON.parse(line));
  } catch {
    return 'not JSON';
  }
}

/** Whether the next head goes before the checkpoint (heads first at one seq). */
function precedes(item: WitnessItem, checkpoint: WitnessRecord): boolean {
  return 'record' in item ? compareRecordOrder(item.record, checkpoint) < 0 : true;
}

function notFoundAsEmpty(err: NodeJS.ErrnoException): string[] {
  if (err.code === 'ENOENT') return [];
  throw err;
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
