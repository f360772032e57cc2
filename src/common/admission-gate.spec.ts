import { AdmissionGate, AdmissionPermit, AdmissionRefused } from './admission-gate';

const settled = async <T>(p: Promise<T>): Promise<'pending' | 'resolved' | 'rejected'> => {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  p.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  await new Promise((r) => setImmediate(r));
  return state;
};

describe('AdmissionGate', () => {
  it('admits up to its concurrency at once', async () => {
    const gate = new AdmissionGate({ concurrency: 2, queue: 0, queueWaitMs: 1000 });
    await gate.enter();
    await gate.enter();
    expect(gate.inUse).toBe(2);
    await expect(gate.enter()).rejects.toEqual(new AdmissionRefused('queue_full'));
  });

  it('queues up to its queue length, first in first out, and hands a freed slot to the oldest waiter', async () => {
    const gate = new AdmissionGate({ concurrency: 1, queue: 2, queueWaitMs: 60_000 });
    const first = await gate.enter();
    const order: string[] = [];
    const second = gate.enter().then((p) => (order.push('second'), p));
    const third = gate.enter().then((p) => (order.push('third'), p));
    await expect(gate.enter()).rejects.toMatchObject({ reason: 'queue_full' });
    expect(gate.queued).toBe(2);
    expect(await settled(second)).toBe('pending');

    first.release();
    const secondPermit = await second;
    expect(await settled(third)).toBe('pending');
    expect(gate.inUse).toBe(1);
    secondPermit.release();
    (await third).release();
    expect(order).toEqual(['second', 'third']);
    expect(gate.inUse).toBe(0);
    expect(gate.queued).toBe(0);
  });

  it('refuses a waiter after the queue wait, and the slot it gave up goes to the next waiter', async () => {
    jest.useFakeTimers();
    try {
      const gate = new AdmissionGate({ concurrency: 1, queue: 5, queueWaitMs: 100 });
      const held = await gate.enter();
      const timedOut = gate.enter();
      jest.advanceTimersByTime(60);
      const later = gate.enter();
      jest.advanceTimersByTime(50);
      await expect(timedOut).rejects.toMatchObject({ reason: 'queue_timeout' });
      expect(gate.queued).toBe(1);
      held.release();
      const permit: AdmissionPermit = await later;
      expect(gate.inUse).toBe(1);
      permit.release();
      expect(gate.inUse).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('counts a permit once however often it is released', async () => {
    const gate = new AdmissionGate({ concurrency: 2, queue: 0, queueWaitMs: 10 });
    const a = await gate.enter();
    await gate.enter();
    a.release();
    a.release();
    a.release();
    expect(gate.inUse).toBe(1);
    await gate.enter();
    await expect(gate.enter()).rejects.toBeInstanceOf(AdmissionRefused);
  });

  it('never lets a newcomer overtake a waiter', async () => {
    const gate = new AdmissionGate({ concurrency: 1, queue: 1, queueWaitMs: 60_000 });
    const held = await gate.enter();
    const waiter = gate.enter();
    held.release();
    // The slot was handed to the waiter; a newcomer must queue (and here the queue is full again only if waiting).
    const newcomer = gate.enter();
    expect(await settled(waiter)).toBe('resolved');
    expect(await settled(newcomer)).toBe('pending');
    (await waiter).release();
    (await newcomer).release();
    expect(gate.inUse).toBe(0);
  });
});
