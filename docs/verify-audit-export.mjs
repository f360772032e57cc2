#!/usr/bin/env node
// Standalone verifier for an idgate audit export (NDJSON). Node >= 18, built-in
// modules only, no idgate code: an auditor can read all of it in a few minutes.
//
//   node verify-audit-export.mjs export.ndjson --public-key idgate-audit.pem
//   node verify-audit-export.mjs export.ndjson --key-id 3f2a…   (pin the key inside the file by id)
//   … --witness <folder>       compare with a copy of idgate's witness folder the auditor kept
//   … --checkpoints <file>     compare with checkpoints the auditor kept (GET /v1/audit/checkpoints output, or NDJSON)
//
// Checks, line by line in constant memory:
//   - every sealed event's hash = sha256_hex(prev_hash + "\n" + canonical(event));
//   - consecutive seqs link (prev_hash = hash of the previous seq); seq 1 starts from 64 zeros;
//   - every checkpoint's Ed25519 signature over the message below, and that the chain's hash at
//     its seq is the signed one (a chain rewritten from some seq on, hashes recomputed, fails here);
//   - in a complete export (header "complete": true, no content filter), that no seq is missing;
//   - the end line's counts (a cut or padded file fails).
// With --witness / --checkpoints (records kept outside the database, which a rewrite of the
// database cannot reach):
//   - the witness's own history: each record names the digest of the one before ("genesis" first),
//     seqs never go down, signatures verify;
//   - every record at a seq the export holds has the export's hash there (a chain rewritten and
//     re-signed, its later checkpoints deleted, fails at the first record after the change);
//   - a witness checkpoint at a seq the export holds is one of the export's checkpoints there
//     (deleted otherwise), and the export's format-2 checkpoints are in the witness (added otherwise);
//   - in a complete export without to_seq, a record above its last seq signed before the export was
//     made means entries were removed (the newest entries cut off).
// Exit code 0 when the export verifies, 1 when it does not, 2 on usage errors.
//
// canonical(event) = JSON, keys sorted at every depth, no whitespace, nulls for absent values:
//   {"action","actor":{"id","role","type"},"details","id","id_card_hmac","ip","occurred_at",
//    "outcome","request_id","target":{"id","type"}}  (occurred_at: ISO 8601 UTC with milliseconds)
// checkpoint message, format 1: "idgate-audit-checkpoint/v1\nseq:<seq>\nhash:<hash>\nsigned_at:<iso>\nkey_id:<id>"
// format 2 (witness records; export lines with "version":2):
//   "idgate-audit-checkpoint/v2\nkind:<checkpoint|head>\nseq:…\nhash:…\nsigned_at:…\nkey_id:…\nprev:<digest|genesis>"
// record digest = sha256_hex(message + "\nsignature:" + signature)
// key id = first 16 hex of sha256(raw 32-byte Ed25519 public key)
// witness folder: <YYYY-MM-DD>/checkpoint-<seq:16>-<time>-<key>.json (one record) and <YYYY-MM-DD>/heads-<HH>.jsonl

import { createHash, createPublicKey, verify } from 'node:crypto';
import { createReadStream, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

const GENESIS = '0'.repeat(64);
const sha256 = (text) => createHash('sha256').update(text, 'utf8').digest('hex');

function canonical(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('non-finite number');
  return JSON.stringify(value);
}

function eventHash(e) {
  const body = canonical({
    action: e.action,
    actor: { id: e.actor?.id ?? null, role: e.actor?.role ?? null, type: e.actor?.type ?? null },
    details: e.details ?? null,
    id: e.id,
    id_card_hmac: e.id_card_hmac ?? null,
    ip: e.ip ?? null,
    occurred_at: new Date(e.occurred_at).toISOString(),
    outcome: e.outcome,
    request_id: e.request_id ?? null,
    target: { id: e.target?.id ?? null, type: e.target?.type ?? null },
  });
  return sha256(`${e.prev_hash}\n${body}`);
}

function keyIdOf(publicKey) {
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

function message(c) {
  if ((c.version ?? 1) < 2) {
    return `idgate-audit-checkpoint/v1\nseq:${c.seq}\nhash:${c.hash}\nsigned_at:${c.signed_at}\nkey_id:${c.key_id}`;
  }
  return `idgate-audit-checkpoint/v2\nkind:${c.kind ?? 'checkpoint'}\nseq:${c.seq}\nhash:${c.hash}\nsigned_at:${c.signed_at}\nkey_id:${c.key_id}\nprev:${c.prev ?? 'genesis'}`;
}

const digestOf = (record) => sha256(`${message(record)}\nsignature:${record.signature}`);

function signatureValid(publicKey, c) {
  try {
    return verify(null, Buffer.from(message(c), 'utf8'), publicKey, Buffer.from(c.signature, 'base64'));
  } catch {
    return false;
  }
}

function usage(text) {
  process.stderr.write(
    `${text}\nusage: node verify-audit-export.mjs <export.ndjson> [--public-key <pem-file>] [--key-id <id>] ` +
      `[--witness <folder>] [--checkpoints <file>] [--json]\n`,
  );
  process.exit(2);
}

const args = process.argv.slice(2);
const options = { json: false };
let file;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--public-key') options.publicKey = args[++i];
  else if (args[i] === '--key-id') options.keyId = args[++i];
  else if (args[i] === '--witness') options.witness = args[++i];
  else if (args[i] === '--checkpoints') options.checkpoints = args[++i];
  else if (args[i] === '--json') options.json = true;
  else if (!file && !args[i].startsWith('--')) file = args[i];
  else usage(`unknown argument ${args[i]}`);
}
if (!file) usage('no export file given');

let publicKey = null;
let keyId = null;
if (options.publicKey) {
  publicKey = createPublicKey(readFileSync(options.publicKey, 'utf8'));
  if (publicKey.asymmetricKeyType !== 'ed25519') usage('--public-key is not an Ed25519 key');
  keyId = keyIdOf(publicKey);
  if (options.keyId && options.keyId !== keyId) usage(`--key-id does not match --public-key (${keyId})`);
}

// ── Anchors: records kept outside the database ─────────────────────────────────────────────

const RECORD_ORDER = { head: 0, checkpoint: 1 };
const byRecordOrder = (a, b) =>
  a.seq - b.seq || RECORD_ORDER[a.kind] - RECORD_ORDER[b.kind] || a.signed_at.localeCompare(b.signed_at);

function parseRecord(text, where) {
  let r;
  try {
    r = JSON.parse(text);
  } catch {
    return null;
  }
  const ok =
    r && r.version === 2 && (r.kind === 'checkpoint' || r.kind === 'head') && Number.isSafeInteger(r.seq) &&
    r.seq >= 1 && /^[0-9a-f]{64}$/.test(r.hash) && typeof r.signed_at === 'string' &&
    /^[0-9a-f]{16}$/.test(r.key_id) && (r.prev === 'genesis' || /^[0-9a-f]{64}$/.test(r.prev)) &&
    typeof r.signature === 'string';
  return ok ? { ...r, where } : null;
}

/** A witness folder's records in the order written: day by day, heads and checkpoints merged by seq. */
function* folderRecords(dir) {
  const days = readdirSync(dir).filter((d) => /^\d{4}-\d{2}-\d{2}$/.test(d)).sort();
  for (const day of days) {
    const names = readdirSync(path.join(dir, day)).sort();
    const records = [];
    for (const name of names) {
      const full = path.join(dir, day, name);
      if (/^checkpoint-\d{16}-\d{8}T\d{9}Z-[0-9a-f]{16}\.json$/.test(name)) {
        const r = parseRecord(readFileSync(full, 'utf8').trim(), `${day}/${name}`);
        if (!r) throw Object.assign(new Error(`unreadable witness record ${day}/${name}`), { seq: Number(name.slice(11, 27)) });
        records.push(r);
      } else if (/^heads-\d{2}\.jsonl$/.test(name)) {
        const lines = readFileSync(full, 'utf8').split('\n').slice(0, -1); // the last piece: cut or still being written
        lines.forEach((line, i) => {
          const r = parseRecord(line, `${day}/${name}:${i + 1}`);
          if (r) records.push(r); // an unreadable line (a crash mid-write) is caught by the next record's prev
        });
      }
    }
    // Heads within a day are in journal order already; merging by (seq, kind, time) keeps it (a stable sort).
    records.sort(byRecordOrder);
    yield* records;
  }
}

function parseTrusted(text) {
  const t = text.trim();
  let list;
  if (t.startsWith('[') || t.startsWith('{"items"')) {
    const doc = JSON.parse(t);
    list = Array.isArray(doc) ? doc : doc.items;
  } else {
    list = t.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)).filter((r) => r.type === undefined || r.type === 'checkpoint');
  }
  return list
    .map((c) => ({ kind: 'checkpoint', ...c, version: c.version ?? 1, prev: (c.version ?? 1) >= 2 ? c.prev : null }))
    .sort((a, b) => a.seq - b.seq);
}

/**
 * One source of anchors compared with the export, merged in seq order: `pushUpTo(seq)` takes
 * the anchors at or below seq from its iterator; `entry(seq, hash, checkpoints)` compares
 * those at seq; after the last entry, what is left lies above the export.
 */
function anchorSource(kind, location, iterator, latest) {
  const label = kind === 'folder' ? 'witness folder' : 'trusted checkpoints';
  const s = { kind, label, location, records: 0, matched: 0, skipped: 0, latest_seq: null, queue: [], next: null, done: false };
  s.expects = (c) =>
    kind === 'folder' && latest !== null && (c.seq < latest.seq || (c.seq === latest.seq && latest.kind === 'checkpoint' && c.signed_at <= latest.signed_at));
  s.history = { prevDigest: null, last: null };
  s.peek = () => {
    if (!s.next && !s.done) {
      const n = iterator.next();
      if (n.done) s.done = true;
      else s.next = n.value;
    }
    return s.next;
  };
  return s;
}

/** The witness's own history: linked by digests, in order, signed (returns a fault or null). */
function checkHistory(s, r) {
  if (s.kind !== 'folder') {
    if (r.key_id === keyId && !signatureValid(publicKey, r)) return { seq: r.seq, reason: 'a trusted checkpoint at this seq has an invalid signature' };
    return null;
  }
  const h = s.history;
  const what = `the witness folder ${r.kind} record at seq ${r.seq}`;
  const expected = h.prevDigest ?? 'genesis';
  const previous = h.last;
  h.prevDigest = digestOf(r);
  h.last = r;
  if (r.key_id === keyId && !signatureValid(publicKey, r)) return { seq: r.seq, reason: `${what} has an invalid signature` };
  if (r.prev !== expected) return { seq: r.seq, reason: `${what} does not name the record before it: the witness folder history has a gap or was rewritten` };
  if (previous && byRecordOrder(previous, r) > 0) return { seq: r.seq, reason: `${what} is out of order` };
  return null;
}

function sameCheckpoint(c, a) {
  return c.seq === a.seq && c.hash === a.hash && c.signed_at === a.signed_at && (c.version ?? 1) === a.version && (c.prev ?? null) === (a.prev ?? null);
}

/** Compares the anchors at `seq` with the export's entry there; returns the first fault or null. */
function compareEntry(s, seq, hash, checkpoints) {
  while (s.queue.length && s.queue[0].seq < seq) {
    s.queue.shift();
    s.skipped++;
  }
  const here = [];
  while (s.queue.length && s.queue[0].seq === seq) here.push(s.queue.shift());
  for (const a of here) {
    const named = s.kind === 'folder' ? `${s.label} ${a.kind} record` : 'trusted checkpoint';
    if (a.hash !== hash) return { seq, reason: `hash differs from the ${named} at this seq: the chain was rewritten up to here` };
    s.matched++;
    if (a.kind !== 'checkpoint') continue;
    const same = checkpoints.find((c) => c.key_id === a.key_id && c.signature === a.signature);
    if (!same) {
      const other = checkpoints.some((c) => c.key_id === a.key_id);
      const deleted = s.kind === 'folder' ? `the ${s.label} holds a checkpoint at this seq that the export lacks` : 'the export lacks the trusted checkpoint at this seq';
      return { seq, reason: other ? `the checkpoint at this seq differs between the export and the ${s.label}` : `${deleted}: it was deleted` };
    }
    if (!sameCheckpoint(same, a)) return { seq, reason: `the checkpoint at this seq differs between the export and the ${s.label}` };
  }
  for (const c of checkpoints) {
    if ((c.version ?? 1) < 2 || !s.expects(c)) continue;
    if (!here.some((a) => a.kind === 'checkpoint' && a.key_id === c.key_id && a.signature === c.signature)) {
      return { seq, reason: `the export holds a checkpoint at this seq that the ${s.label} lacks: it was added, or the ${s.label} lost it` };
    }
  }
  return null;
}

const sources = [];
if (options.witness) {
  // Read whole (a copy the auditor kept does not change); its latest record tells which checkpoints it must hold.
  const all = [...folderRecords(options.witness)];
  sources.push(anchorSource('folder', options.witness, all[Symbol.iterator](), all.length ? all[all.length - 1] : null));
}
if (options.checkpoints) {
  sources.push(anchorSource('checkpoints', options.checkpoints, parseTrusted(readFileSync(options.checkpoints, 'utf8'))[Symbol.iterator](), null));
}

// ── The export ────────────────────────────────────────────────────────────────────────────

const r = {
  ok: true, events: 0, checked: 0, unsealed: 0, checkpoints_verified: 0,
  anchored_through_seq: null, unanchored_events: 0, contiguous: true,
  key_id: keyId, key_pinned: Boolean(options.publicKey || options.keyId),
};
let lineNo = 0;
let header = false;
let complete = false;
let exportedAt = null;
let rangeEnds = false;
let ended = false;
let checkpoints = 0;
let lastSeq = null;
let lastHash = null;
let pending = null; // the last sealed event, collecting its checkpoint lines before the anchors see it

function fail(reason, seq) {
  if (!r.ok) return;
  r.ok = false;
  r.reason = reason;
  r.line = lineNo;
  if (seq !== undefined) r.first_bad_seq = seq;
}

/** Takes every anchor at or below `seq` from each source (its history checked on the way). */
function pushAnchors(seq) {
  for (const s of sources) {
    for (let a = s.peek(); a && a.seq <= seq; a = s.peek()) {
      s.next = null;
      s.records++;
      s.latest_seq = a.seq;
      const f = checkHistory(s, a);
      if (f) return fail(f.reason, f.seq);
      s.queue.push(a);
    }
  }
}

function flushPending() {
  const p = pending;
  pending = null;
  if (!p || !r.ok) return;
  for (const s of sources) {
    const f = compareEntry(s, p.seq, p.hash, p.checkpoints);
    if (f) return fail(f.reason, f.seq);
  }
}

const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
try {
  for await (const text of lines) {
    lineNo++;
    if (text.trim() === '') continue;
    let rec;
    try {
      rec = JSON.parse(text);
    } catch {
      fail('line is not JSON');
      break;
    }
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) { fail('line is not a JSON object'); break; }
    if (ended) { fail('content after the end line'); break; }
    if (!header) {
      if (rec.type !== 'header' || rec.format !== 'idgate.audit-export' || (rec.version !== 1 && rec.version !== 2)) {
        fail('first line is not an idgate.audit-export v1/v2 header');
        break;
      }
      header = true;
      complete = rec.complete === true;
      exportedAt = typeof rec.exported_at === 'string' ? rec.exported_at : null;
      rangeEnds = rec.filters?.to_seq !== undefined && rec.filters?.to_seq !== null;
      if (!publicKey) {
        try {
          publicKey = createPublicKey(String(rec.public_key?.pem));
          if (publicKey.asymmetricKeyType !== 'ed25519') throw new Error('not Ed25519');
        } catch {
          fail('header carries no usable public key; pass one');
          break;
        }
        keyId = keyIdOf(publicKey);
        r.key_id = keyId;
        if (options.keyId && options.keyId !== keyId) { fail(`the export's key is ${keyId}, not ${options.keyId}`); break; }
      }
      continue;
    }
    if (rec.type === 'event') {
      r.events++;
      if (rec.seq === null) { r.unsealed++; continue; }
      if (!Number.isSafeInteger(rec.seq) || rec.seq < 1) { fail('seq is not a positive integer'); break; }
      if (lastSeq !== null && rec.seq <= lastSeq) { fail('events are out of seq order', rec.seq); break; }
      if (lastSeq !== null && rec.seq === lastSeq + 1) {
        if (rec.prev_hash !== lastHash) { fail(`prev_hash does not match the hash of seq ${rec.seq - 1}`, rec.seq); break; }
      } else if (lastSeq !== null) {
        if (complete) { fail(`seq ${lastSeq + 1} is missing from a complete export`, lastSeq + 1); break; }
        r.contiguous = false;
      }
      if (rec.seq === 1 && rec.prev_hash !== GENESIS) { fail('seq 1 does not start from the genesis hash', 1); break; }
      let recomputed;
      try {
        recomputed = eventHash(rec);
      } catch {
        fail('event is malformed', rec.seq);
        break;
      }
      if (recomputed !== rec.hash) { fail('hash does not match the event', rec.seq); break; }
      flushPending();
      pushAnchors(rec.seq);
      if (!r.ok) break;
      r.checked++;
      r.unanchored_events++;
      lastSeq = rec.seq;
      lastHash = rec.hash;
      pending = { seq: rec.seq, hash: rec.hash, checkpoints: [] };
    } else if (rec.type === 'checkpoint') {
      checkpoints++;
      if (rec.seq !== lastSeq) { fail('checkpoint does not follow the event at its seq', rec.seq); break; }
      if (rec.key_id !== keyId) { fail(`checkpoint signed by key ${rec.key_id}, not ${keyId}`, rec.seq); break; }
      if (!signatureValid(publicKey, { ...rec, kind: 'checkpoint' })) { fail('checkpoint signature is invalid', rec.seq); break; }
      if (rec.hash !== lastHash) { fail('hash differs from the signed checkpoint: the chain was rewritten', rec.seq); break; }
      pending?.checkpoints.push(rec);
      r.checkpoints_verified++;
      r.anchored_through_seq = rec.seq;
      r.unanchored_events = 0;
    } else if (rec.type === 'end') {
      ended = true;
      if (rec.events !== r.events || rec.checkpoints !== checkpoints) { fail('end line counts do not match the lines read'); break; }
    } else {
      fail(`unknown line type ${JSON.stringify(rec.type)}`);
      break;
    }
  }
} catch (err) {
  // An unreadable witness checkpoint file.
  fail(err.message, err.seq);
}
lines.close();
flushPending();
if (r.ok && sources.length) {
  // Above the export's last seq: an anchor signed before the export was made means entries were removed.
  try {
    pushAnchors(Number.MAX_SAFE_INTEGER);
  } catch (err) {
    fail(err.message, err.seq);
  }
  for (const s of sources) {
    for (const a of s.queue) {
      if (lastSeq === null || a.seq <= lastSeq) { s.skipped++; continue; }
      if (r.ok && complete && !rangeEnds && exportedAt !== null && a.signed_at < exportedAt) {
        fail(`the export ends at seq ${lastSeq} but the ${s.label} has a ${a.kind} at seq ${a.seq}, signed before the export was made: entries were removed`, lastSeq + 1);
      }
    }
  }
}
if (r.ok && !header) fail('empty export');
if (r.ok && !ended) fail('export is truncated: no end line');
if (sources.length) {
  r.anchors = sources.map((s) => ({ kind: s.kind, location: s.location, records: s.records, matched: s.matched, skipped: s.skipped, latest_seq: s.latest_seq }));
}

if (options.json) process.stdout.write(JSON.stringify(r) + '\n');
else if (r.ok) {
  process.stdout.write(
    `OK: ${r.checked} sealed events, ${r.checkpoints_verified} checkpoints verified` +
      (r.anchored_through_seq !== null ? `, signed through seq ${r.anchored_through_seq}` : '') +
      `; ${r.unanchored_events} after the last checkpoint, ${r.unsealed} not sealed yet.\n`,
  );
  for (const a of r.anchors ?? []) {
    process.stdout.write(`compared with ${a.kind === 'folder' ? 'witness folder' : 'trusted checkpoints'} ${a.location}: ${a.records} read, ${a.matched} matched\n`);
  }
  if (!r.key_pinned) process.stdout.write(`warning: key ${r.key_id} came from the file itself; pin it with --public-key or --key-id\n`);
} else {
  process.stdout.write(`BROKEN${r.first_bad_seq !== undefined ? ` at seq ${r.first_bad_seq}` : ''} (line ${r.line}): ${r.reason}\n`);
}
process.exit(r.ok ? 0 : 1);
