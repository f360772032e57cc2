import { Injectable, OnModuleDestroy } from '@nestjs/common';
import pg from 'pg';
import { AppConfig } from '../config/app-config';
import { poolConfigFromUrl } from '../database/schema-engine';
import { UpstreamCircuit } from '../upstream/upstream-circuit';
import { UpstreamClient } from '../upstream/upstream.client';
import type { CircuitStateName } from '../upstream/upstream.types';

export interface Check {
  status: 'up' | 'down';
  detail?: string;
}

/** The upstream as this instance sees it: reported, but not a reason to leave rotation. */
export interface UpstreamReport {
  /** `up` while the circuit is closed, `degraded` while it is open, half-open or isolated. */
  status: 'up' | 'degraded';
  circuit: CircuitStateName;
  /** Whether results are simulated by the built-in sandbox. */
  mode: 'vendor' | 'sandbox';
  detail?: string;
  retry_after_seconds?: number;
}

const DB_CHECK_TIMEOUT_MS = 2000;

/**
 * Readiness asks the database on a connection of its own, outside the pool: a pool busy
 * with reads or a long job is not an unhealthy database, and must not take every instance
 * out of rotation at once.
 */
@Injectable()
export class HealthService implements OnModuleDestroy {
  private probe: pg.Client | null = null;

  constructor(
    private readonly config: AppConfig,
    private readonly upstreamCircuit: UpstreamCircuit,
    private readonly upstreamClient: UpstreamClient,
  ) {}

  async onModuleDestroy(): Promise<void> {
    await this.dropProbe();
  }

  /** What gates readiness: only the database. Reads, audit and billing work while the vendor is down. */
  async readinessChecks(): Promise<Record<string, Check>> {
    return { database: await this.databaseCheck() };
  }

  /**
   * The vendor's circuit, for people and dashboards. Every instance's breaker sees the
   * same vendor, so taking instances out of rotation for it would only turn "the vendor
   * is down" into "idgate is down", and the breaker recovers by itself.
   */
  upstreamReport(): UpstreamReport {
    const { state, retryAfterSeconds } = this.upstreamCircuit.view();
    const mode = this.upstreamClient.simulated ? 'sandbox' : 'vendor';
    if (state === 'closed') return { status: 'up', circuit: state, mode };
    const detail =
      state === 'half_open'
        ? 'circuit half-open: a trial call is deciding whether calls flow again'
        : `circuit ${state}: new verifications get 503 for about ${retryAfterSeconds ?? 1} s, then one trial call goes through`;
    return { status: 'degraded', circuit: state, mode, detail, retry_after_seconds: retryAfterSeconds ?? 1 };
  }

  private async databaseCheck(): Promise<Check> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.askDatabase(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), DB_CHECK_TIMEOUT_MS);
        }),
      ]);
      return { status: 'up' };
    } catch (err) {
      await this.dropProbe();
      return { status: 'down', detail: (err as Error).message === 'timeout' ? 'no answer within 2 s' : 'query failed' };
    } finally {
      clearTimeout(timer);
    }
  }

  private async askDatabase(): Promise<void> {
    if (!this.probe) {
      const client = new pg.Client({
        ...poolConfigFromUrl(this.config.databaseUrl),
        application_name: 'idgate-readiness',
        connectionTimeoutMillis: DB_CHECK_TIMEOUT_MS,
      });
      // A server that goes away must not crash the process through an unhandled 'error'.
      client.on('error', () => void this.dropProbe());
      this.probe = client;
      await client.connect();
    }
    await this.probe.query('SELECT 1');
  }

  private async dropProbe(): Promise<void> {
    const client = this.probe;
    this.probe = null;
    await client?.end().catch(() => undefined);
  }
}
