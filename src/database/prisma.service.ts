import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { AppConfig } from '../config/app-config';
import { PrismaClient } from '../generated/prisma/client';
import { poolConfigFromUrl } from './schema-engine';

/** A query waiting this long for a pooled connection fails (answered 503), instead of hanging. */
const CONNECTION_WAIT_MS = 5_000;

/**
 * The one Prisma client of the process, on the pg adapter, built from validated config.
 *
 * The pool closes last: on shutdown Nest destroys modules, then closes the HTTP server
 * (in-flight requests finish), then runs `onApplicationShutdown`, where writes that
 * must not be lost (answers from the upstream still being recorded) are awaited for up
 * to SHUTDOWN_DRAIN_MS before the pool is closed.
 */
@Injectable()
export class PrismaService extends PrismaClient implements OnApplicationShutdown {
  private readonly logger = new Logger(PrismaService.name);
  private readonly mustFinish = new Set<Promise<unknown>>();
  private drainDeadline: number | null = null;

  constructor(private readonly config: AppConfig) {
    super({
      adapter: new PrismaPg(
        poolConfigFromUrl(config.databaseUrl, {
          max: config.databasePoolSize,
          application_name: 'idgate',
          connectionTimeoutMillis: CONNECTION_WAIT_MS,
        }),
      ),
    });
  }

  /** Keeps the pool open on shutdown until `work` ends (or the drain deadline passes). */
  keepOpenFor<T>(work: Promise<T>): Promise<T> {
    this.mustFinish.add(work);
    const forget = () => this.mustFinish.delete(work);
    work.then(forget, forget);
    return work;
  }

  /** True once shutdown has waited as long as it will: writers should stop retrying. */
  get drainExpired(): boolean {
    return this.drainDeadline !== null && Date.now() >= this.drainDeadline;
  }

  async onApplicationShutdown(): Promise<void> {
    this.drainDeadline = Date.now() + this.config.shutdownDrainMs;
    if (this.mustFinish.size > 0) {
      this.logger.log({ count: this.mustFinish.size }, 'waiting for writes in progress before closing the pool');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.mustFinish]),
        new Promise((resolve) => (timer = setTimeout(resolve, this.config.shutdownDrainMs))),
      ]);
      clearTimeout(timer);
      if (this.mustFinish.size > 0) {
        this.logger.warn(
          { count: this.mustFinish.size },
          'closing the pool with writes unfinished: their verifications stay pending for the sweeper',
        );
      }
    }
    await this.$disconnect();
  }
}
