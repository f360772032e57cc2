import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { eventHash, GENESIS_HASH } from './canonical';
import { GENESIS_PREV, signCheckpoint, signingKeyFromSeed, SigningKey } from './checkpoint';
import { AuditEventView, EXPORT_FORMAT, ExportVerifier, fieldsFromView } from './export-format';
import { signWitnessRecord, WitnessRecord, witnessRecordDigest } from './witness/witness-record';

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

describe('ExportVerifier with a witness (records kept outside the database)', () => {
  const key = signingKeyFromSeed(randomBytes(32));
  const base = Date.UTC(2026, 0, 1);

  /** Events 1..n; a head record every 3 seqs, a checkpoint (in the export too) at each of `signedAt`. */
  function build(n: number, checkpointSeqs: number[]) {
    const events: AuditEventView[] = [];
    let prev = GENESIS_HASH;
    for (let seq = 1; seq <= n; seq++) {
      const view: AuditEventView = {
        id: `0190f5a2-7b1c-7d3e-8f40-${String(seq).padStart(12, '0')}`,
        seq,
        occurred_at: new Date(base + seq * 1000).toISOString(),
        actor: { type: 'system', id: 'cli', role: null },
        action: 'client.created',
        target: { type: 'client', id: String(seq) },
        outcome: 'success',
        request_id: null,
        ip: null,
        details: { n: seq },
        id_card_hmac: null,
        prev_hash: prev,
        hash: null,
      };
      view.hash = eventHash(prev, fieldsFromView(view));
      prev = view.hash;
      events.push(view);
    }
    const records: WitnessRecord[] = [];
    const add = (kind: WitnessRecord['kind'], seq: number) =>
      records.push(
        signWitnessRecord(key, {
          kind,
          seq,
          hash: events[seq - 1].hash as string,
          signedAt: new Date(base + seq * 1000 + (kind === 'checkpoint' ? 500 : 100)),
          prev: records.length ? witnessRecordDigest(records[records.length - 1]) : GENESIS_PREV,
        }),
      );
    for (let seq = 1; seq <= n; seq++) {
      if (seq % 3 === 0) add('head', seq);
      if (checkpointSeqs.includes(seq)) add('checkpoint', seq);
    }
    return { events, records };
  }

  function exportLines(
    events: AuditEventView[],
    checkpoints: WitnessRecord[],
    header: Record<string, unknown> = {},
  ): string[] {
    const lines = [
      JSON.stringify({
        type: 'header',
        format: EXPORT_FORMAT,
        version: 2,
        exported_at: new Date(base + 3_600_000).toISOString(),
        filters: {},
        complete: true,
        public_key: { key_id: key.keyId, pem: key.publicKey.export({ format: 'pem', type: 'spki' }).toString() },
        ...header,
      }),
    ];
    let count = 0;
    for (const e of events) {
      lines.push(JSON.stringify({ type: 'event', ...e }));
      for (const c of checkpoints.filter((r) => r.kind === 'checkpoint' && r.seq === e.seq)) {
        const { kind: _kind, ...line } = c;
        lines.push(JSON.stringify({ type: 'checkpoint', ...line }));
        count++;
      }
    }
    lines.push(JSON.stringify({ type: 'end', events: events.length, checkpoints: count }));
    return lines;
  }

  /** As the CLI feeds it: anchors up to an event's seq before its line, the rest after the last event. */
  function verifyWith(lines: string[], anchors: WitnessRecord[], kind: 'folder' | 'checkpoints' = 'folder') {
    const v = new ExportVerifier({ publicKey: key.publicKey, keyId: key.keyId }, [
      { kind, location: 'test', latest: kind === 'folder' ? (anchors[anchors.length - 1] ?? null) : undefined },
    ]);
    let next = 0;
    const through = (seq: number) => {
      while (next < anchors.length && anchors[next].seq <= seq) v.pushAnchor(0, anchors[next++]);
    };
    for (const text of lines) {
      const rec = v.parse(text);
      if (!rec) continue;
      if (rec.type === 'event' && typeof rec.seq === 'number') through(rec.seq);
      v.acceptParsed(rec);
    }
    v.endEntries();
    through(Number.MAX_SAFE_INTEGER);
    return v.finish();
  }

  it('verifies an export that matches every record, and reads format-2 checkpoint lines', () => {
    const { events, records } = build(12, [6, 12]);
    expect(verifyWith(exportLines(events, records), records)).toMatchObject({
      ok: true,
      checkpoints_verified: 2,
      anchors: [{ kind: 'folder', records: 6, matched: 6, skipped: 0, latest_seq: 12 }],
    });
  });

  /** Attack (a) on the export: the event at `victim` deleted, the rest re-linked, checkpoints from it on dropped. */
  function deleteAndRelink(events: AuditEventView[], victim: number): AuditEventView[] {
    const out = events.slice(0, victim - 1).map((e) => ({ ...e }));
    let prev = victim > 1 ? (events[victim - 2].hash as string) : GENESIS_HASH;
    for (const e of events.slice(victim)) {
      const moved = { ...e, seq: (e.seq as number) - 1, prev_hash: prev };
      moved.hash = eventHash(prev, fieldsFromView(moved));
      prev = moved.hash;
      out.push(moved);
    }
    return out;
  }

  it('attack (a): catches a deleted, re-linked chain at the first record at or after the victim', () => {
    const { events, records } = build(20, [6, 12, 18]);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 17 }), (victim) => {
        const forged = deleteAndRelink(events, victim);
        const lines = exportLines(
          forged,
          records.filter((r) => r.seq < victim),
        );
        // On its own the forged export verifies: that was the hole.
        expect(verify(lines, key).ok).toBe(true);
        const expected = Math.min(...records.filter((r) => r.seq >= victim).map((r) => r.seq));
        expect(verifyWith(lines, records)).toMatchObject({ ok: false, first_bad_seq: expected });
      }),
      { numRuns: 50 },
    );
  });

  it('attack (c): records above the export’s end signed before it was made mean entries were removed', () => {
    const { events, records } = build(12, [6]);
    const cut = exportLines(
      events.slice(0, 7),
      records.filter((r) => r.seq <= 7),
    );
    expect(verifyWith(cut, records)).toMatchObject({
      ok: false,
      first_bad_seq: 8,
      reason: expect.stringMatching(/has a head at seq 9, signed before the export was made: entries were removed/),
    });
    // An export that asked to end there (to_seq), or one made before those records: nothing is missing.
    expect(verifyWith(exportLines(events.slice(0, 7), records, { filters: { to_seq: 7 } }), records).ok).toBe(true);
    const early = new Date(base + 8_000).toISOString();
    expect(verifyWith(exportLines(events.slice(0, 7), records, { exported_at: early }), records).ok).toBe(true);
  });

  it('reports a checkpoint missing from the export, one the witness lacks, and a gap in the witness history', () => {
    const { events, records } = build(12, [6, 12]);
    const withoutSix = exportLines(
      events,
      records.filter((r) => !(r.kind === 'checkpoint' && r.seq === 6)),
    );
    expect(verifyWith(withoutSix, records)).toMatchObject({
      ok: false,
      first_bad_seq: 6,
      reason: 'the witness folder holds a checkpoint at this seq that the export lacks: it was deleted',
    });
    // A list of trusted checkpoints need not hold every checkpoint, but those it holds must be in a complete export.
    const trusted = records.filter((r) => r.kind === 'checkpoint' && r.seq === 6);
    expect(verifyWith(withoutSix, trusted, 'checkpoints')).toMatchObject({ ok: false, first_bad_seq: 6 });
    expect(verifyWith(exportLines(events, records), trusted, 'checkpoints')).toMatchObject({ ok: true });
    const extra = signWitnessRecord(key, {
      kind: 'checkpoint',
      seq: 9,
      hash: events[8].hash as string,
      signedAt: new Date(base + 9_700),
      prev: GENESIS_PREV,
    });
    expect(verifyWith(exportLines(events, [...records, extra]), records)).toMatchObject({
      ok: false,
      first_bad_seq: 9,
      reason: expect.stringMatching(/the export holds a checkpoint at this seq that the witness folder lacks/),
    });
    const gap = records.filter((r) => !(r.kind === 'head' && r.seq === 3));
    expect(verifyWith(exportLines(events, records), gap)).toMatchObject({
      ok: false,
      first_bad_seq: 6,
      reason: expect.stringMatching(/does not start the history/),
    });
    const hole = records.filter((r) => !(r.kind === 'head' && r.seq === 9));
    expect(verifyWith(exportLines(events, records), hole)).toMatchObject({
      ok: false,
      first_bad_seq: 12,
      reason: expect.stringMatching(/does not name the record before it/),
    });
  });
});
