import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditCheckpoints } from '../../src/audit/audit-checkpoints.service';
import { AuditIntegrity } from '../../src/audit/audit-integrity.service';
import { GENESIS_PREV, recordDigest, signingKeyFromSeed } from '../../src/audit/checkpoint';
import { checkWitnessFolder, osUser } from '../../src/audit/witness/folder-safety';
import {
  serializeWitnessRecord,
  signWitnessRecord,
  WitnessRecord,
  witnessRecordDigest,
  recordStatement,
} from '../../src/audit/witness/witness-record';
import { AuditWitness } from '../../src/audit/witness/audit-witness.service';
import { startSandbox } from '../../src/upstream/sandbox/sandbox-server';
import { databaseEnv } from '../support/databases';
import { runCli, spawnNode } from '../support/processes';
import { startTestApp, TestApp } from '../support/test-app';
import { asAttacker, auditOf, recordEvents, rewriteChainTimeFrom } from './support';
import { cutTail, exportTo, lastJson, runVerifier, witnessRecords } from './witness-support';

/*
 * Issue 13, points 1–4: checkpoints and sealed heads leave the database for a witness the database
 * cannot rewrite; the integrity check, the CLI and the standalone verifier compare the chain with it;
 * the expected cadence; the signer signs only what verifies. Attack (a) repeated: forgery.e2e-spec.ts.
 */

/** Budgets for a busy 2-core machine. */
const HOOK_BUDGET_MS = 60_000;
const CLI_BUDGET_MS = 180_000;
/** No background sealing or signing: each test seals and signs itself. */
const NEVER_MS = 86_400_000;

function cliEnv(t: TestApp, seed: Buffer): Record<string, string> {
  return {
    ...databaseEnv(t.db),
    PII_KEYS: `k1:${randomBytes(32).toString('base64')}`,
    PII_HMAC_KEY: randomBytes(32).toString('base64'),
    AUDIT_SIGNING_KEY: seed.toString('base64'),
    AUDIT_MAC_KEY: t.config.audit.macKey.toString('base64'),
    AUDIT_WITNESS_DIR: t.config.audit.witnessDir,
    AUDIT_CHECKPOINT_INTERVAL_MS: String(NEVER_MS),
    LOG_LEVEL: 'silent',
  };
}

/** The integrity report, as GET /v1/audit/integrity returns it (the service: a key made here would be an event). */
async function integrity(t: TestApp) {
  return JSON.parse(JSON.stringify(await auditOf(t).verifyChain()));
}

/** Through HTTP, with a compliance key (made now unless given: its creation is an event, sealed later). */
async function integrityOverHttp(t: TestApp, key?: string) {
  const compliance = key ?? (await t.keyFor('compliance')).key;
  const res = await t.http.get('/v1/audit/integrity').set('Authorization', `Bearer ${compliance}`);
  expect(res.status).toBe(200);
  return res.body;
}

/** Events in `batches` transactions, each sealed on its own: one head record per sealing. */
async function grow(t: TestApp, batches: number, size = 3, tag = 'g'): Promise<void> {
  for (let i = 0; i < batches; i++) {
    await recordEvents(t, size, `${tag}${i}`);
    await auditOf(t).sealNow();
  }
}

describe('audit witness: records outside the database', () => {
  const seed = randomBytes(32);
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp({
      audit: { signingKeySeed: seed, sealIntervalMs: NEVER_MS, checkpointIntervalMs: NEVER_MS },
    });
  }, HOOK_BUDGET_MS);
  afterEach(() => t?.close(), HOOK_BUDGET_MS);

  it('writes a signed head per sealing and a file per checkpoint, each naming the record before it', async () => {
    await grow(t, 3);
    const signed = await t.app.get(AuditCheckpoints).signHead(null);
    await grow(t, 2);
    const dir = t.config.audit.witnessDir;
    const records = await witnessRecords(dir);
    expect(records.map((r) => [r.kind, r.seq])).toEqual([
      ['head', 3],
      ['head', 6],
      ['head', 9],
      ['checkpoint', 9],
      ['head', 12],
      ['head', 15],
    ]);
    // One history: genesis first, then each names the digest of the one before (signature included).
    expect(records[0].prev).toBe(GENESIS_PREV);
    for (let i = 1; i < records.length; i++) expect(records[i].prev).toBe(witnessRecordDigest(records[i - 1]));
    expect(witnessRecordDigest(records[1])).toBe(recordDigest(recordStatement(records[1]), records[1].signature));

    // The layout: a day folder, the checkpoint in a file of its own (read-only), heads in an hourly journal.
    const [day] = readdirSync(dir);
    expect(day).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    const files = readdirSync(path.join(dir, day)).sort();
    expect(files.filter((f) => f.startsWith('checkpoint-'))).toEqual([
      expect.stringMatching(/^checkpoint-0000000000000009-\d{8}T\d{9}Z-[0-9a-f]{16}\.json$/),
    ]);
    expect(files.filter((f) => f.startsWith('heads-'))).toEqual([expect.stringMatching(/^heads-\d{2}\.jsonl$/)]);
    const checkpointFile = path.join(dir, day, files.find((f) => f.startsWith('checkpoint-')) as string);
    expect(statSync(checkpointFile).mode & 0o777).toBe(0o444);
    expect(readFileSync(checkpointFile, 'utf8')).toBe(serializeWitnessRecord(records[3]) + '\n');

    // The database keeps the checkpoint as a format-2 row naming the same previous record.
    expect(signed?.checkpoint).toMatchObject({ seq: 9, version: 2, prev: witnessRecordDigest(records[2]) });
    const rows = await t.prisma.auditCheckpoint.findMany();
    expect(rows).toEqual([
      expect.objectContaining({ seq: 9n, version: 2, prevDigest: witnessRecordDigest(records[2]) }),
    ]);

    const report = await integrityOverHttp(t);
    expect(report).toMatchObject({
      ok: true,
      status: 'intact',
      checked: 15,
      checkpoints_verified: 1,
      witness: [{ kind: 'folder', state: 'ok', records: 6, checkpoints: 1, heads: 5, matched: 6, latest_seq: 15 }],
      signing: { state: 'signing' },
      attention: [],
    });
  });

  it(
    'attack (c): entries cut after the last checkpoint are caught by the head records, through the API, the CLI and the standalone verifier',
    async () => {
      // The key first: its creation is an event (two, with its alert), sealed with the first batch: nothing is left to seal.
      const compliance = (await t.keyFor('compliance')).key;
      await grow(t, 2);
      const cp = (await t.app.get(AuditCheckpoints).signHead(null))?.checkpoint.seq as number;
      await grow(t, 3); // heads at cp + 3, + 6, + 9: younger than any checkpoint interval
      expect((await witnessRecords(t.config.audit.witnessDir)).map((r) => r.seq).slice(2)).toEqual([
        cp,
        cp + 3,
        cp + 6,
        cp + 9,
      ]);
      const keep = cp + 4;
      expect(await cutTail(t, keep)).toBe(5);

      const bad = keep + 1;
      const expected = {
        ok: false,
        status: 'broken',
        first_bad_seq: bad,
        reason: expect.stringMatching(/entries were removed/),
      };
      expect(await integrityOverHttp(t, compliance)).toMatchObject(expected);

      // The export of what is left verifies on its own (hashes and the checkpoint are intact)…
      const dir = mkdtempSync(path.join(os.tmpdir(), 'idgate-witness-export-'));
      try {
        const file = path.join(dir, 'cut.ndjson');
        await exportTo(t, file);
        const pem = path.join(dir, 'key.pem');
        writeFileSync(pem, auditOf(t).publicKey().pem);
        const alone = await runVerifier([file, '--public-key', pem, '--json']);
        expect({ code: alone.code, out: lastJson(alone.stdout) }).toMatchObject({ code: 0, out: { ok: true } });
        // …but not against the witness folder the auditor kept: the heads above the cut were signed before the export.
        const copy = path.join(dir, 'witness-copy');
        copyDir(t.config.audit.witnessDir, copy);
        const withWitness = await runVerifier([file, '--public-key', pem, '--witness', copy, '--json']);
        expect(withWitness.code).toBe(1);
        expect(lastJson(withWitness.stdout)).toMatchObject({
          ok: false,
          first_bad_seq: bad,
          reason: expect.stringContaining(
            `has a head at seq ${cp + 6}, signed before the export was made: entries were removed`,
          ),
        });
        const cli = await runCli(
          ['audit', 'verify', '--file', file, '--public-key', pem, '--witness', copy, '--json'],
          {},
        );
        expect(cli.code).toBe(1);
        expect(lastJson(cli.stdout)).toMatchObject({ ok: false, first_bad_seq: bad });
        const db = await runCli(['audit', 'verify'], cliEnv(t, seed));
        expect(db.code).toBe(1);
        expect(db.stdout).toContain(
          `Audit chain BROKEN at seq ${bad}: the chain ends at seq ${keep} but the witness folder holds a head at seq ${cp + 6}`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    CLI_BUDGET_MS,
  );

  it('a checkpoint deleted from, added to, or changed in the database is reported at its seq', async () => {
    await grow(t, 2);
    const checkpoints = t.app.get(AuditCheckpoints);
    await checkpoints.signHead(null); // 6
    await grow(t, 2);
    await checkpoints.signHead(null); // 12
    await grow(t, 1);
    const key = signingKeyFromSeed(seed);

    const deleted = await asAttacker(t.db.adminUrl, async (c) => {
      const row = (await c.query(`SELECT row_to_json(k) AS j FROM audit_checkpoints k WHERE seq = 6`)).rows[0].j;
      await c.query(`DELETE FROM audit_checkpoints WHERE seq = 6`);
      return row;
    });
    expect(await integrity(t)).toMatchObject({
      ok: false,
      first_bad_seq: 6,
      reason: 'the witness folder holds a checkpoint at this seq that the database lacks: it was deleted',
    });
    await asAttacker(t.db.adminUrl, (c) =>
      c.query(`INSERT INTO audit_checkpoints SELECT * FROM json_populate_record(NULL::audit_checkpoints, $1::json)`, [
        JSON.stringify(deleted),
      ]),
    );
    expect(await integrity(t)).toMatchObject({ ok: true });

    // Added: a checkpoint with a valid signature (the key holder's) that the witness never saw.
    const [at9] = await t.prisma.$queryRaw<{ hash: string }[]>`SELECT hash FROM audit_chain WHERE seq = 9`;
    const forged = signWitnessRecord(key, {
      kind: 'checkpoint',
      seq: 9,
      hash: at9.hash,
      signedAt: new Date(),
      prev: GENESIS_PREV,
    });
    await asAttacker(t.db.adminUrl, (c) =>
      c.query(
        `INSERT INTO audit_checkpoints (id, seq, hash, signed_at, key_id, signature, version, prev_digest)
         VALUES (gen_random_uuid(), 9, $1, $2, $3, $4, 2, NULL)`,
        [forged.hash, forged.signed_at, forged.key_id, forged.signature],
      ),
    );
    expect(await integrity(t)).toMatchObject({
      ok: false,
      first_bad_seq: 9,
      reason: expect.stringMatching(/the database holds a checkpoint at this seq that the witness folder lacks/),
    });
    await asAttacker(t.db.adminUrl, (c) => c.query(`DELETE FROM audit_checkpoints WHERE seq = 9`));

    // Different: the row at 12 re-signed with another time (its signature valid, but not the witness's record).
    const row12 = await t.prisma.auditCheckpoint.findFirstOrThrow({ where: { seq: 12 } });
    const resigned = signWitnessRecord(key, {
      kind: 'checkpoint',
      seq: 12,
      hash: row12.hash,
      signedAt: new Date(row12.signedAt.getTime() + 1),
      prev: row12.prevDigest ?? GENESIS_PREV,
    });
    await asAttacker(t.db.adminUrl, (c) =>
      c.query(`UPDATE audit_checkpoints SET signed_at = $1, signature = $2 WHERE seq = 12`, [
        resigned.signed_at,
        resigned.signature,
      ]),
    );
    const report = await integrity(t);
    expect(report).toMatchObject({
      ok: false,
      first_bad_seq: 12,
      reason: 'the checkpoint at this seq differs between the database and the witness folder',
    });
    expect(report.checkpoints_verified).toBe(2); // its signature alone is valid: only the witness shows the change
  });

  it('a gap or a rewrite in the witness’s own history is reported at the record after it', async () => {
    await grow(t, 4);
    const dir = t.config.audit.witnessDir;
    const [day] = readdirSync(dir);
    const journal = path.join(dir, day, readdirSync(path.join(dir, day)).find((f) => f.startsWith('heads-')) as string);
    const original = readFileSync(journal, 'utf8');
    const lines = original.trimEnd().split('\n');
    expect(lines).toHaveLength(4);

    // A gap: the head record at 6 removed (as root: the database's user cannot).
    writeFileSync(journal, [lines[0], ...lines.slice(2)].join('\n') + '\n');
    expect(await integrity(t)).toMatchObject({
      ok: false,
      first_bad_seq: 9,
      reason:
        'the witness folder head record at seq 9 does not name the record before it: the witness folder history has a gap or was rewritten',
    });

    // A rewrite: the record at 6 re-signed (valid signature, other time): its digest changes, the next link breaks.
    const key = signingKeyFromSeed(seed);
    const at6 = JSON.parse(lines[1]) as WitnessRecord;
    const resigned = signWitnessRecord(key, {
      kind: 'head',
      seq: 6,
      hash: at6.hash,
      signedAt: new Date(),
      prev: at6.prev,
    });
    writeFileSync(journal, [lines[0], serializeWitnessRecord(resigned), ...lines.slice(2)].join('\n') + '\n');
    expect(await integrity(t)).toMatchObject({ ok: false, first_bad_seq: 9 });

    // A record whose signature does not hold.
    const tampered = { ...at6, hash: 'f'.repeat(64) };
    writeFileSync(journal, [lines[0], JSON.stringify(tampered), ...lines.slice(2)].join('\n') + '\n');
    expect(await integrity(t)).toMatchObject({
      ok: false,
      first_bad_seq: 6,
      reason: expect.stringMatching(/head record at seq 6 has an invalid signature/),
    });

    // A line cut by a crash at the end: unread (no newline yet); the next record starts a line of its own, the cut
    // one stays as an unreadable line (attention, not a fault: every record names the one before, so none is missing).
    writeFileSync(journal, original + lines[3].slice(0, 40));
    expect(await integrity(t)).toMatchObject({ ok: true, status: 'intact', witness: [{ records: 4 }] });
    await grow(t, 1);
    expect(await integrity(t)).toMatchObject({
      ok: true,
      status: 'attention',
      attention: ['the witness folder has 1 unreadable journal line(s) (a write cut by a crash)'],
      witness: [{ records: 5, latest_seq: 15 }],
    });
  });

  it('the signer refuses a segment that does not verify: no record, one alert, the metric, the badge', async () => {
    await grow(t, 4);
    const checkpoints = t.app.get(AuditCheckpoints);
    await checkpoints.signHead(null); // 12
    await grow(t, 2); // heads 15, 18
    const before = await witnessRecords(t.config.audit.witnessDir);
    const metric = async () => {
      const text = (await t.http.get('/metrics')).text;
      return Number(/idgate_security_alerts_total\{reason="audit_chain_broken"\} (\d+)/.exec(text)?.[1] ?? NaN);
    };
    expect(await metric()).toBe(0);

    // A rewrite from seq 8 (time only, which no event MAC covers), every later hash recomputed.
    await rewriteChainTimeFrom(t, 8);
    const compliance = (await t.keyFor('compliance')).key;
    const refused = await t.http.post('/v1/audit/checkpoints').set('Authorization', `Bearer ${compliance}`);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ first_bad_seq: 18, detail: expect.stringMatching(/nothing was signed/) });
    // (The request sealed first, and the head writer refused then: the alert names it.)
    // Again, and sealing more (the head writer refuses too): one alert for the one fault.
    await expect(checkpoints.signHead(null)).rejects.toThrow(/does not verify/);
    await grow(t, 2);
    await expect(checkpoints.signHead(null)).rejects.toThrow(/does not verify/);

    expect(await witnessRecords(t.config.audit.witnessDir)).toEqual(before);
    const alerts = await t.prisma.auditEvent.findMany({
      where: { action: 'security.alert', details: { path: ['reason'], equals: 'audit_chain_broken' } },
    });
    expect(alerts.map((a) => a.details)).toEqual([
      expect.objectContaining({ reason: 'audit_chain_broken', seq: 18, refused: 'head' }),
    ]);
    expect(await metric()).toBe(1);

    const report = await integrityOverHttp(t);
    expect(report).toMatchObject({
      ok: false,
      status: 'broken',
      // The first witness record after the change.
      first_bad_seq: 9,
      signing: {
        state: 'refused',
        refusal: { kind: 'head', seq: 18, reason: expect.stringMatching(/witness's latest record/) },
        last_alert: { seq: 18, reason: expect.stringMatching(/rewritten/) },
      },
    });
  });

  it(
    'checkpoints an auditor kept (GET /v1/audit/checkpoints) catch a rewrite whose checkpoints were deleted, in all three verifiers',
    async () => {
      const compliance = (await t.keyFor('compliance')).key;
      await grow(t, 3);
      await t.app.get(AuditCheckpoints).signHead(null);
      await grow(t, 2);
      await t.app.get(AuditCheckpoints).signHead(null);
      const kept = await t.http.get('/v1/audit/checkpoints').set('Authorization', `Bearer ${compliance}`).expect(200);
      expect(kept.body.items).toHaveLength(2);
      const [second, first] = kept.body.items as { seq: number }[];

      // The chain rewritten from just before the first checkpoint, and both checkpoints deleted from the database.
      await rewriteChainTimeFrom(t, first.seq - 1);
      await asAttacker(t.db.adminUrl, (c) => c.query(`DELETE FROM audit_checkpoints`));
      const dir = mkdtempSync(path.join(os.tmpdir(), 'idgate-kept-'));
      try {
        const checkpointsFile = path.join(dir, 'checkpoints.json');
        writeFileSync(checkpointsFile, JSON.stringify(kept.body));
        const pem = path.join(dir, 'key.pem');
        writeFileSync(pem, auditOf(t).publicKey().pem);
        const file = path.join(dir, 'export.ndjson');
        await exportTo(t, file);
        expect((await runVerifier([file, '--public-key', pem, '--json'])).code).toBe(0);
        const standalone = await runVerifier([file, '--public-key', pem, '--checkpoints', checkpointsFile, '--json']);
        expect({ code: standalone.code, out: lastJson(standalone.stdout) }).toMatchObject({
          code: 1,
          out: {
            ok: false,
            first_bad_seq: first.seq,
            reason: expect.stringMatching(/hash differs from the trusted checkpoint at this seq/),
          },
        });
        const offline = await runCli(
          ['audit', 'verify', '--file', file, '--public-key', pem, '--checkpoints', checkpointsFile, '--json'],
          {},
        );
        expect({ code: offline.code, out: lastJson(offline.stdout) }).toMatchObject({
          code: 1,
          out: { ok: false, first_bad_seq: first.seq },
        });
        // The database alone, with the kept checkpoints (the witness folder too: it catches the rewrite at the head record before).
        const db = await runCli(['audit', 'verify', '--checkpoints', checkpointsFile, '--json'], cliEnv(t, seed));
        expect(db.code).toBe(1);
        const report = lastJson(db.stdout);
        expect(report.faults).toEqual(
          expect.arrayContaining([
            { seq: first.seq, reason: expect.stringMatching(/hash differs from the trusted checkpoint at this seq/) },
            { seq: second.seq, reason: expect.stringMatching(/hash differs from the trusted checkpoint at this seq/) },
          ]),
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    CLI_BUDGET_MS,
  );

  it('a witness folder emptied or replaced is attention, not a fault per checkpoint; a new history starts from genesis', async () => {
    await grow(t, 2);
    await t.app.get(AuditCheckpoints).signHead(null); // 6
    await grow(t, 1);
    const dir = t.config.audit.witnessDir;
    const archive = `${dir}-archived`;
    renameSync(dir, archive);
    mkdirSync(dir);
    expect(await integrity(t)).toMatchObject({
      ok: true,
      status: 'attention',
      attention: [
        expect.stringMatching(/the witness folder holds no record, but the database has 1 format-2 checkpoint/),
      ],
    });
    // The next record verifies the chain from seq 1 and starts a new history there; the old one still verifies.
    await grow(t, 1);
    expect((await witnessRecords(dir)).map((r) => [r.seq, r.prev])).toEqual([[12, GENESIS_PREV]]);
    expect(await integrity(t)).toMatchObject({
      ok: true,
      status: 'attention',
      attention: [
        expect.stringMatching(/starts at seq 12, but the database has 1 format-2 checkpoint\(s\) below that/),
      ],
    });
    expect(await t.app.get(AuditIntegrity).verifyChain({}, { witnessDir: archive })).toMatchObject({
      ok: true,
      witness: [{ kind: 'folder', records: 4, matched: 4 }],
    });
    rmSync(archive, { recursive: true, force: true });
  });

  it('reports a checkpoint cadence gap while the chain grows, with the stated tolerance', async () => {
    await t.close();
    t = await startTestApp({ audit: { signingKeySeed: seed, sealIntervalMs: NEVER_MS, checkpointIntervalMs: 1000 } });
    await grow(t, 1);
    await t.app.get(AuditCheckpoints).signHead(null);
    // The periodic signer stops (a hung process, or one held off its lock) while the chain grows.
    await t.app.get(AuditCheckpoints).onModuleDestroy();
    await grow(t, 1);
    await new Promise((r) => setTimeout(r, 6_300)); // interval 1 s + tolerance 5 s (half the interval, at least 5 s)
    const overdue = await integrity(t);
    expect(overdue).toMatchObject({
      ok: true,
      status: 'attention',
      cadence: { interval_ms: 1000, tolerance_ms: 5000, gap_count: 1, gaps: [{ after_seq: 3, checkpoint_at: null }] },
      attention: [expect.stringMatching(/1 checkpoint cadence gap\(s\).*after seq 3.*overdue/)],
    });
    // The late checkpoint closes the gap; the gap stays on record.
    await t.app.get(AuditCheckpoints).signHead(null);
    const late = await integrity(t);
    expect(late).toMatchObject({ ok: true, status: 'attention', cadence: { gap_count: 1 } });
    expect(late.cadence.gaps[0].checkpoint_at).toEqual(expect.any(String));
    expect(late.cadence.gaps[0].late_ms).toBeGreaterThan(0);
  }, 30_000);
});

describe('audit witness: the HTTP witness (the sandbox’s /witness)', () => {
  it('receives every record in order, is compared like the folder, and a lagging witness is attention, not tampering', async () => {
    const sandbox = await startSandbox();
    const seed = randomBytes(32);
    const t = await startTestApp({
      audit: {
        signingKeySeed: seed,
        sealIntervalMs: NEVER_MS,
        checkpointIntervalMs: NEVER_MS,
        witnessUrl: `${sandbox.url}/witness`,
      },
    });
    try {
      await grow(t, 2);
      await t.app.get(AuditCheckpoints).signHead(null);
      const witness = t.app.get(AuditWitness);
      expect(await witness.flush()).toBe(true);
      expect(sandbox.witness.records()).toEqual(await witnessRecords(t.config.audit.witnessDir));
      expect(await integrity(t)).toMatchObject({
        ok: true,
        status: 'intact',
        witness: [
          { kind: 'folder', records: 3, matched: 3 },
          { kind: 'http', location: `${sandbox.url}/witness`, state: 'ok', records: 3, matched: 3 },
        ],
      });

      // Down: records wait and are retried; the report says so without calling it tampering.
      sandbox.witness.setAvailable(false);
      await grow(t, 2);
      const lagging = await integrity(t);
      expect(lagging).toMatchObject({ ok: true, status: 'attention' });
      expect(lagging.witness[1].state).toMatch(/unreachable|lagging/);
      sandbox.witness.setAvailable(true);
      expect(await witness.flush(40_000)).toBe(true);
      expect(sandbox.witness.records()).toHaveLength(5);
      expect(await integrity(t)).toMatchObject({ ok: true, status: 'intact' });

      // The database rewritten: the HTTP witness catches it too, at its first record after the change.
      await rewriteChainTimeFrom(t, 2);
      const broken = await integrity(t);
      expect(broken).toMatchObject({ ok: false, first_bad_seq: 3 });
      expect(broken.faults.map((f: { reason: string }) => f.reason)).toEqual(
        expect.arrayContaining([expect.stringMatching(/HTTP witness head record/)]),
      );
    } finally {
      await t.close();
      await sandbox.close();
    }
  }, 90_000);
});

describe('audit witness: a folder the database server could write', () => {
  const asRoot = process.getuid?.() === 0 && osUser('postgres') !== null;
  if (!asRoot) {
    process.stderr.write('witness folder refusal tests skipped: they need root and an OS user postgres\n');
  }
  const itAsRoot = asRoot ? it : it.skip;
  let base: string;
  beforeAll(() => {
    base = mkdtempSync(path.join(os.tmpdir(), 'idgate-witness-safety-'));
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  itAsRoot(
    'refuses a folder user postgres owns or can write, or a parent that lets it replace the folder',
    async () => {
      const postgres = osUser('postgres') as NonNullable<ReturnType<typeof osUser>>;
      const owned = path.join(base, 'owned');
      mkdirSync(owned);
      chownSync(owned, postgres.uid, postgres.gids[0]);
      expect(checkWitnessFolder(owned, true).refusal).toMatch(
        /not safe from the database: user postgres can write .*owned \(it owns it\)/,
      );
      const open = path.join(base, 'open');
      mkdirSync(open);
      chmodSync(open, 0o777);
      expect(checkWitnessFolder(open, false).refusal).toMatch(/any other user can write .*open/);
      const grouped = path.join(base, 'grouped');
      mkdirSync(grouped);
      chownSync(grouped, 0, postgres.gids[0]);
      chmodSync(grouped, 0o775);
      expect(checkWitnessFolder(grouped, true).refusal).toMatch(/user postgres can write .*grouped/);
      const parent = path.join(base, 'parent');
      mkdirSync(path.join(parent, 'witness'), { recursive: true });
      chmodSync(parent, 0o777);
      expect(checkWitnessFolder(path.join(parent, 'witness'), true).refusal).toMatch(
        /can write .*parent and so replace .*witness/,
      );
      // A day folder inside that user could write.
      const inner = path.join(base, 'inner');
      mkdirSync(path.join(inner, '2026-01-02'), { recursive: true });
      chownSync(path.join(inner, '2026-01-02'), postgres.uid, postgres.gids[0]);
      expect(checkWitnessFolder(inner, true).refusal).toMatch(/user postgres can write .*2026-01-02/);

      // A sticky folder (like /tmp) lets no one else rename a folder they do not own: accepted, and the app starts.
      chmodSync(parent, 0o1777);
      expect(checkWitnessFolder(path.join(parent, 'witness'), true)).toEqual({ refusal: null, warning: null });
      const t = await startTestApp({ audit: { witnessDir: path.join(parent, 'witness') } });
      await t.close();
    },
  );

  itAsRoot(
    '`npm start` (dist/main.js) refuses such a folder with the reason, and exits 1',
    async () => {
      const dataDir = mkdtempSync(path.join(os.tmpdir(), 'idgate-witness-start-'));
      const witnessDir = path.join(base, 'for-start');
      mkdirSync(witnessDir);
      chmodSync(witnessDir, 0o777);
      try {
        const p = spawnNode('dist/main.js', [], {
          IDGATE_DATA_DIR: dataDir,
          AUDIT_WITNESS_DIR: witnessDir,
          PORT: '0',
          LOG_LEVEL: 'silent',
        });
        expect(await p.exit).toBe(1);
        expect(p.stderr()).toMatch(
          /idgate: failed to start: the audit witness folder .* is not safe from the database/,
        );
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
    CLI_BUDGET_MS,
  );
});

function copyDir(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    const src = path.join(from, name);
    const dst = path.join(to, name);
    if (statSync(src).isDirectory()) copyDir(src, dst);
    else writeFileSync(dst, readFileSync(src));
  }
}
