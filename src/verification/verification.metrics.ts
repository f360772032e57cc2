import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Registry } from 'prom-client';
import { VerificationStore } from './verification.store';
import type { AdmissionGate } from '../common/admission-gate';

/**
 * Verification metrics in a registry of their own (merged into `/metrics`):
 * outcomes and charges as they happen, and the pending / unknown backlog read
 * from the database at scrape time (so every instance reports the shared truth).
 */
@Injectable()
export class VerificationMetrics {
  readonly registry = new Registry();
  readonly settled: Counter<'channel' | 'status' | 'result' | 'charge_status'>;
  readonly chargedAmount: Counter<'currency'>;
  readonly admissionRefused: Counter<'reason'>;
  private admissionGate: AdmissionGate | null = null;

  constructor(store: VerificationStore) {
    this.settled = new Counter({
      name: 'idgate_verifications_total',
      help: 'Verifications settled by this instance, by channel, status, result code and charge status',
      labelNames: ['channel', 'status', 'result', 'charge_status'],
      registers: [this.registry],
    });
    this.chargedAmount = new Counter({
      name: 'idgate_charged_amount_minor_total',
      help: 'Amount of charged verifications settled by this instance, in minor currency units',
      labelNames: ['currency'],
      registers: [this.registry],
    });
    this.admissionRefused = new Counter({
      name: 'idgate_admission_refused_total',
      help: 'Submissions refused before anything was written or called (queue_full, queue_timeout, database), answered 503 (429 on the drop-in)',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    const gate = () => this.admissionGate;
    new Gauge({
      name: 'idgate_admission_in_use',
      help: 'Submissions doing their pre-call database work now (at most ADMISSION_CONCURRENCY)',
      registers: [this.registry],
      collect() {
        this.set(gate()?.inUse ?? 0);
      },
    });
    new Gauge({
      name: 'idgate_admission_queued',
      help: 'Submissions waiting for admission (at most ADMISSION_QUEUE)',
      registers: [this.registry],
      collect() {
        this.set(gate()?.queued ?? 0);
      },
    });
    new Gauge({
      name: 'idgate_verifications_backlog',
      help: 'Verifications currently pending (upstream call in flight) or unknown (awaiting reconciliation)',
      labelNames: ['status'],
      registers: [this.registry],
      async collect() {
        const backlog = await store.backlogAllClients();
        this.reset();
        for (const status of ['pending', 'unknown'] as const) this.set({ status }, backlog[status]);
      },
    });
  }

  /** Reports the process's admission gate in the admission gauges. */
  watchAdmission(gate: AdmissionGate): void {
    this.admissionGate = gate;
  }

  recordSettled(v: {
    channel: string;
    status: string;
    result: string | null;
    chargeStatus: string;
    amount: number | null;
    currency: string;
  }): void {
    this.settled.inc({
      channel: v.channel,
      status: v.status,
      result: v.result ?? 'none',
      charge_status: v.chargeStatus,
    });
    if (v.chargeStatus === 'charged' && v.amount) this.chargedAmount.inc({ currency: v.currency }, v.amount);
  }
}
