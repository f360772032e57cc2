import { Injectable } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { PrismaService } from '../../database/prisma.service';
import type { Transaction } from '../../database/transaction';
import { poolConfigFromUrl } from '../../database/schema-engine';
import { copyHeader, copyTrailer, STAGING_COLUMNS } from './staging-rows';

/** One COPY is one transaction: ended after this long or this much, so none holds the audit watermark back for long. */
const COPY_MAX_MS = 2000;
const COPY_MAX_BYTES = 64 << 20;
/** The name loader connections show in pg_stat_activity. */
export const LOADER_APPLICATION_NAME = 'idgate-reconciliation';

const COPY_SQL = `COPY reconciliation_lines (${STAGING_COLUMNS.join(', ')}) FROM STDIN WITH (FORMAT binary)`;

/**
 * The store of `reconciliation_lines`, the staging table of statements being
 * reconciled (unlogged, no index; schema.prisma says why): the only code that
 * writes or removes its rows. The matching passes read it in their transaction.
 */
@Injectable()
export class StatementStaging {
  private readonly databaseUrl: string;

  constructor(
    private readonly prisma: PrismaService,
    config: AppConfig,
  ) {
    this.databaseUrl = config.databaseUrl;
  }

  /** A COPY channel for one statement's rows (see StagingCopy). */
  copyChannel(): StagingCopy {
    return new StagingCopy(this.databaseUrl);
  }

  /**
   * Fresh statistics for the rows just loaded, so the planner hash-joins a large
   * statement instead of looping (PostgreSQL < 17 lets only the owner: skipped there with a warning).
   */
  async analyze(tx: Transaction): Promise<void> {
    await tx.$executeRaw`ANALYZE reconciliation_lines`;
  }

  /** A statement's lines, once its reconciliation is complete (in that transaction) or discarded. */
  async remove(tx: Transaction, reconciliationId: string): Promise<void> {
    await tx.$executeRaw`DELETE FROM reconciliation_lines WHERE reconciliation_id = ${reconciliationId}::uuid`;
  }

  /** Lines whose load no longer exists (a reconciliation removed by hand, or an older version's leftovers). */
  async removeOrphans(): Promise<number> {
    return this.prisma.$executeRaw`
      DELETE FROM reconciliation_lines l
      WHERE NOT EXISTS (SELECT 1 FROM reconciliations r WHERE r.id = l.reconciliation_id AND r.state = 'loading')`;
  }
}

/**
 * Binary COPY into the staging table on a connection of its own (not the pool's),
 * held only while rows flow: `pause()` ends the COPY and closes the connection
 * while the upload waits for bytes, and the next `write()` opens them again. Each
 * COPY commits on its own and is bounded in time and size.
 */
export class StagingCopy {
  private client: pg.Client | null = null;
  private copy: Writable | null = null;
  private copyStartedAt = 0;
  private copyBytes = 0;
  private failure: Error | null = null;

  constructor(private readonly databaseUrl: string) {}

  /** Whether a connection is held now. */
  get open(): boolean {
    return this.client !== null;
  }

  async write(rows: Buffer): Promise<void> {
    if (rows.length === 0) return;
    if (this.copy && (Date.now() - this.copyStartedAt > COPY_MAX_MS || this.copyBytes > COPY_MAX_BYTES)) {
      await this.endCopy();
    }
    const copy = this.copy ?? (await this.startCopy());
    this.copyBytes += rows.length;
    if (!copy.write(rows)) await once(copy, 'drain');
    this.throwIfFailed();
  }

  /** Ends the COPY in progress (its rows commit) and gives the connection back. */
  async pause(): Promise<void> {
    await this.endCopy();
    await this.close();
  }

  /** The last rows are written: commit them and close. */
  async finish(): Promise<void> {
    await this.pause();
  }

  /** Abandons the COPY in progress (its rows roll back) and closes; never throws. */
  async abort(): Promise<void> {
    const copy = this.copy;
    this.copy = null;
    if (copy) {
      copy.on('error', () => undefined);
      copy.destroy(new Error('statement load abandoned'));
    }
    await this.close();
  }

  private async startCopy(): Promise<Writable> {
    if (!this.client) {
      const client = new pg.Client(poolConfigFromUrl(this.databaseUrl, { application_name: LOADER_APPLICATION_NAME }));
      // A connection lost between COPYs surfaces on the next write; without a listener it would end the process.
      client.on('error', (err) => (this.failure ??= err));
      this.client = client;
      await client.connect();
    }
    const copy = this.client.query(copyFrom(COPY_SQL));
    copy.on('error', (err: Error) => (this.failure ??= err));
    copy.write(copyHeader());
    this.copy = copy;
    this.copyStartedAt = Date.now();
    this.copyBytes = 0;
    return copy;
  }

  private async endCopy(): Promise<void> {
    const copy = this.copy;
    if (!copy) return;
    this.copy = null;
    this.throwIfFailed();
    await new Promise<void>((resolve, reject) => {
      copy.once('finish', resolve);
      copy.once('error', reject);
      copy.end(copyTrailer());
    });
  }

  private async close(): Promise<void> {
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}
