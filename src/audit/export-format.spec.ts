import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { eventHash, GENESIS_HASH } from './canonical';
import { signCheckpoint, signingKeyFromSeed, SigningKey } from './checkpoint';
import { AuditEventView, EXPORT_FORMAT, ExportVerifier, fieldsFromView } from './export-format';

function buildExport(key: SigningKey, n: number, checkpointAt: number[]): string[] {
  const lines = [
    JSON.stringify({
      type: 'header',
      format: EXPORT_FORMAT,
      version: 1,
      complete: true,
      public_key: { key_id: key.keyId, pem: key.publicKey.export({ format: 'pem', type: 'spki' }).toString() },
    }),
  ];
  let prev = GENESIS_HASH;
  let checkpoints = 0;
  for (let seq = 1; seq <= n; seq++) {
    const view: AuditEventView = {
      id: `0190f5a2-7b1c-7d3e-8f40-${String(seq).padStart(12, '0')}`,
      seq,
      occurred_at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
      actor: { type: 'system', id: 'cli', role: null },
      action: 'client.created',
      target: { type: 'client', id: String(seq) },
      outcome: 'success',
      request_id: null,
      ip: null,
      details: { client_name: `c${seq}` },
      id_card_hmac: null,
      prev_hash: prev,
      hash: null,
    };
    view.hash = eventHash(prev, fieldsFromView(view));
    prev = view.hash;
    lines.push(JSON.stringify({ type: 'event', ...view }));
    if (checkpointAt.includes(seq)) {
      const statement = { seq, hash: view.hash, signedAt: '2026-01-02T00:00:00.000Z', keyId: key.keyId };
      lines.push(
        JSON.stringify({
          type: 'checkpoint',
          seq,
          hash: view.hash,
          signed_at: statement.signedAt,
          key_id: key.keyId,
          signature: signCheckpoint(key, statement),
        }),
      );
      checkpoints++;
    }
  }
  lines.push(JSON.stringify({ type: 'end', events: n, checkpoints }));
  return lines;
}

function verify(lines: string[], pinned?: SigningKey) {
  const v = new ExportVerifier(pinned ? { publicKey: pinned.publicKey, keyId: pinned.keyId } : undefined);
  for (const l of lines) v.acceptLine(l);
  return v.finish();
}

type Line = Record<string, unknown>;
const edit = (lines: string[], index: number, change: (l: Line) => Line) =>
  lines.map((l, i) => (i === index ? JSON.stringify(change(JSON.parse(l) as Line)) : l));

/** A careful attacker: sets the outcome of the event at `victim`, then recomputes every hash from there on. */
function rewriteFrom(lines: string[], victim: number, outcome: string): string[] {
  let prev: string | null = null;
  return lines.map((text) => {
    const rec = JSON.parse(text) as AuditEventView & { type: string };
    if (rec.type !== 'event') return text;
    if ((rec.seq as number) < victim) {
      prev = rec.hash;
      return text;
    }
    if (rec.seq === victim) rec.outcome = outcome;
    rec.prev_hash = prev ?? GENESIS_HASH;
    rec.hash = eventHash(rec.prev_hash, fieldsFromView(rec));
    prev = rec.hash;
    return JSON.stringify(rec);
  });
}

describe('ExportVerifier', () => {
  const key = signingKeyFromSeed(randomBytes(32));

  it('verifies an intact export, anchored by its checkpoints', () => {
    const result = verify(buildExport(key, 10, [4, 8]), key);
    expect(result).toMatchObject({
      ok: true,
      events: 10,
      checked: 10,
      checkpoints_verified: 2,
      anchored_through_seq: 8,
      unanchored_events: 2,
      contiguous: true,
      key_pinned: true,
      key_id: key.keyId,
    });
  });

  it('reports an edited event at its seq', () => {
    const lines = edit(buildExport(key, 10, [8]), 5, (l) => ({ ...l, details: { client_name: 'evil' } }));
    expect(verify(lines, key)).toMatchObject({
      ok: false,
      first_bad_seq: 5,
      reason: expect.stringMatching(/hash does not match/),
    });
  });

  it('reports a removed event at its seq (even with the end line fixed) and a cut file as truncated', () => {
    const lines = buildExport(key, 10, []);
    const removed = [
      ...lines.slice(0, 4),
      ...lines.slice(5, -1),
      JSON.stringify({ type: 'end', events: 9, checkpoints: 0 }),
    ];
    expect(verify(removed, key)).toMatchObject({
      ok: false,
      first_bad_seq: 4,
      reason: expect.stringMatching(/missing/),
    });
    expect(verify(lines.slice(0, 6), key)).toMatchObject({ ok: false, reason: expect.stringMatching(/truncated/) });
  });

  it('catches a chain rewritten from some seq on with every hash recomputed, at the checkpoint', () => {
    const lines = buildExport(key, 10, [8]);
    // The attacker edits seq 5 and recomputes seq 5..10 so that hashes and linkage are all consistent again.
    let prev = (JSON.parse(lines[4]) as AuditEventView).hash as string;
    const rewritten = lines.map((text, i) => {
      const rec = JSON.parse(text) as AuditEventView & { type: string };
      if (rec.type !== 'event' || (rec.seq as number) < 5) return text;
      if (rec.seq === 5) rec.details = { client_name: 'evil' };
      rec.prev_hash = prev;
      rec.hash = eventHash(prev, fieldsFromView(rec));
      prev = rec.hash;
      return i >= 0 ? JSON.stringify(rec) : text;
    });
    expect(verify(rewritten, key)).toMatchObject({
      ok: false,
      first_bad_seq: 8,
      reason: expect.stringMatching(/differs from the signed checkpoint/),
    });
  });

  it('refuses checkpoints by another key when a key is pinned, and a forged signature', () => {
    const intruder = signingKeyFromSeed(randomBytes(32));
    expect(verify(buildExport(intruder, 5, [3]), key)).toMatchObject({
      ok: false,
      first_bad_seq: 3,
      reason: expect.stringMatching(/signed by key/),
    });
    // Unpinned, a re-signed export "verifies" but says its key came from the file.
    expect(verify(buildExport(intruder, 5, [3]))).toMatchObject({
      ok: true,
      key_pinned: false,
      key_id: intruder.keyId,
    });
    const forged = edit(buildExport(key, 5, [3]), 4, (l) => ({ ...l, signature: Buffer.alloc(64).toString('base64') }));
    expect(verify(forged, key)).toMatchObject({
      ok: false,
      first_bad_seq: 3,
      reason: 'checkpoint signature is invalid',
    });
  });

  it('checks linkage only between consecutive seqs in a filtered export', () => {
    const lines = buildExport(key, 6, []);
    const filtered = [
      JSON.stringify({ ...(JSON.parse(lines[0]) as Line), complete: false }),
      lines[1],
      lines[2],
      lines[5],
      lines[6],
      JSON.stringify({ type: 'end', events: 4, checkpoints: 0 }),
    ];
    expect(verify(filtered, key)).toMatchObject({ ok: true, contiguous: false, checked: 4 });
  });

  it('rejects every rewrite that changes an event, at the first checkpoint at or after it; a no-op edit is no forgery', () => {
    // The e2e forgery once set outcome 'denied' on an event that already had it: the "rewritten"
    // export was the signed one byte for byte, and verifying it was right. Any real change is caught.
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 25 }).chain((n) =>
          fc.record({
            n: fc.constant(n),
            checkpoints: fc.uniqueArray(fc.integer({ min: 1, max: n }), { minLength: 1, maxLength: 4 }),
            victimPick: fc.nat(),
            outcome: fc.constantFrom('success', 'failure', 'denied'),
          }),
        ),
        ({ n, checkpoints, victimPick, outcome }) => {
          const lastSigned = Math.max(...checkpoints);
          const victim = 1 + (victimPick % lastSigned);
          const lines = buildExport(key, n, checkpoints);
          const rewritten = rewriteFrom(lines, victim, outcome);
          const result = verify(rewritten, key);
          if (outcome === 'success') {
            // buildExport's events are all 'success': nothing changed.
            expect(rewritten).toEqual(lines);
            expect(result.ok).toBe(true);
          } else {
            expect(result).toMatchObject({
              ok: false,
              first_bad_seq: Math.min(...checkpoints.filter((c) => c >= victim)),
              reason: expect.stringMatching(/differs from the signed checkpoint/),
            });
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reports a line that is JSON but not an object instead of throwing', () => {
    const lines = buildExport(key, 3, [2]);
    for (const bad of ['null', '[]', '7', '"event"']) {
      expect(verify([lines[0], bad, ...lines.slice(1)], key)).toMatchObject({
        ok: false,
        line: 2,
        reason: 'line is not a JSON object',
      });
      expect(verify([bad, ...lines], key)).toMatchObject({ ok: false, line: 1 });
    }
  });
});
