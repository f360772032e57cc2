import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { AuditSealer } from './audit-sealer.service';
import { systemContext } from './audit-vocabulary';
import { SecurityAlerts } from './security-alerts.service';

/** How often the sealer's progress is looked at. */
const WATCH_INTERVAL_MS = 5_000;

/*
 * Events are protected by the chain from the moment they are sealed. Whoever stops sealing (holds
 * the sealing lock, or keeps a transaction open under new events) can delete unsealed events
 * without breaking the chain. That cannot be prevented from inside the database, so it is made
 * loud outside it: an error log line and the idgate_security_alerts_total metric at once, and a
 * security.alert event (sealed when sealing resumes). Repeated once a minute while it lasts.
 */
@Injectable()
export class AuditSealingWatch implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('AuditSealingWatch');
  private timer: NodeJS.Timeout | undefined;
  private reported: string | null = null;

  constructor(
    private readonly config: AppConfig,
    private readonly sealer: AuditSealer,
    private readonly alerts: SecurityAlerts,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.backgroundWorkers) return;
    this.timer = setInterval(() => void this.check(), Math.min(WATCH_INTERVAL_MS, this.config.audit.sealStallMs));
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** Looks once; returns the stall it reported, if any. */
  async check(now = Date.now()): Promise<string | null> {
    const stall = this.sealer.stall(now);
    if (!stall) {
      if (this.reported) this.logger.warn({ cause: this.reported }, 'audit sealing resumed');
      this.reported = null;
      return null;
    }
    const since = stall.since.toISOString();
    // Once per stall in the log at error level; the alert's own window bounds the audit events.
    if (this.reported !== `${stall.cause}|${since}`) {
      this.logger.error(
        { cause: stall.cause, since },
        'audit sealing stalled: unsealed events can be removed unnoticed',
      );
    }
    this.reported = `${stall.cause}|${since}`;
    await this.alerts.raise(systemContext('sealer'), 'audit_sealing_stalled', { cause: stall.cause, since }, null);
    return stall.cause;
  }
}
