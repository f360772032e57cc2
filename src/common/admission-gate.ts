/*
 * Admission control for the database work a submission does before the paid call.
 * At most `concurrency` submissions hold a permit at once; up to `queue` more wait,
 * first in first out, for at most `queueWaitMs`; the rest are refused at once. A
 * refused submission has written nothing and called nothing, so the caller may
 * simply retry later.
 *
 * Written here rather than taken from cockatiel: its bulkhead has no queue wait
 * limit, and a queued caller that gives up still holds its queue slot and, when
 * dequeued, consumes a completion without running (the slot stays idle).
 */

export interface AdmissionLimits {
  concurrency: number;
  queue: number;
  queueWaitMs: number;
}

export type AdmissionRefusal = 'queue_full' | 'queue_timeout';

export class AdmissionRefused extends Error {
  constructor(readonly reason: AdmissionRefusal) {
    super(`admission refused: ${reason}`);
    this.name = 'AdmissionRefused';
  }
}

/** Held while pre-call database work runs; release() is idempotent. */
export interface AdmissionPermit {
  release(): void;
}

interface Waiter {
  admit(permit: AdmissionPermit): void;
  timer: NodeJS.Timeout | null;
}

export class AdmissionGate {
  private active = 0;
  private readonly waiting: Waiter[] = [];

  constructor(private readonly limits: AdmissionLimits) {
    if (!(limits.concurrency >= 1)) throw new RangeError('concurrency must be at least 1');
  }

  get inUse(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** A permit now, a permit after waiting in the queue, or AdmissionRefused. */
  enter(): Promise<AdmissionPermit> {
    if (this.active < this.limits.concurrency && this.waiting.length === 0) {
      this.active++;
      return Promise.resolve(this.permit());
    }
    if (this.waiting.length >= this.limits.queue) return Promise.reject(new AdmissionRefused('queue_full'));
    return new Promise<AdmissionPermit>((resolve, reject) => {
      const waiter: Waiter = { admit: resolve, timer: null };
      waiter.timer = setTimeout(() => {
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(new AdmissionRefused('queue_timeout'));
      }, this.limits.queueWaitMs);
      waiter.timer.unref?.();
      this.waiting.push(waiter);
    });
  }

  private permit(): AdmissionPermit {
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.handOver();
      },
    };
  }

  /** A freed slot goes straight to the longest waiter, so the count never dips below the load. */
  private handOver(): void {
    const next = this.waiting.shift();
    if (!next) {
      this.active--;
      return;
    }
    if (next.timer) clearTimeout(next.timer);
    next.admit(this.permit());
  }
}
