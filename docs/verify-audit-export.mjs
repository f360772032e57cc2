#!/usr/bin/env node
// Standalone verifier for an idgate audit export (NDJSON). Node >= 18, built-in
// modules only, no idgate code: an auditor can read all of it in five minutes.
//
//   node verify-audit-export.mjs export.ndjson --public-key idgate-audit.pem
//   node verify-audit-export.mjs export.ndjson --key-id 3f2a…   (pin the key inside the file by id)
//
// Checks, line by line in constant memory:
//   - every sealed event's hash = sha256_hex(prev_hash + "\n" + canonical(event));
//   - consecutive seqs link (prev_hash = hash of the previous seq); seq 1 starts from 64 zeros;
//   - every checkpoint's Ed25519 signature over the message below, and that the chain's hash at
//     its seq is the signed one (a chain rewritten from some seq on, hashes recomputed, fails here);
//   - in a complete export (header "complete": true, no content filter), that no seq is missing;
//   - the end line's counts (a cut or padded file fails).
// Exit code 0 when the export verifies, 1 when it does not, 2 on usage errors.
//
// canonical(event) = JSON, keys sorted at every depth, no whitespace, nulls for absent values:
//   {"action","actor":{"id","role","type"},"details","id","id_card_hmac","ip","occurred_at",
//    "outcome","request_id","target":{"id","type"}}  (occurred_at: ISO 8601 UTC with milliseconds)
// checkpoint message = "idgate-audit-checkpoint/v1\nseq:<seq>\nhash:<hash>\nsigned_at:<iso>\nkey_id:<id>"
// key id = first 16 hex of sha256(raw 32-byte Ed25519 public key)

import { createHash, createPublicKey, verify } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const GENESIS = '0'.repeat(64);

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
  return createHash('sha256').update(`${e.prev_hash}\n${body}`, 'utf8').digest('hex');
}

function keyIdOf(publicKey) {
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

function checkpointValid(publicKey, c) {
  const message = `idgate-audit-checkpoint/v1\nseq:${c.seq}\nhash:${c.hash}\nsigned_at:${c.signed_at}\nkey_id:${c.key_id}`;
  try {
    return verify(null, Buffer.from(message, 'utf8'), publicKey, Buffer.from(c.signature, 'base64'));
  } catch {
    return false;
  }
}

function usage(message) {
  process.stderr.write(`${message}\nusage: node verify-audit-export.mjs <export.ndjson> [--public-key <pem-file>] [--key-id <id>] [--json]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
const options = { json: false };
let file;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--public-key') options.publicKey = args[++i];
  else if (args[i] === '--key-id') options.keyId = args[++i];
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

const r = {
  ok: true, events: 0, checked: 0, unsealed: 0, checkpoints_verified: 0,
  anchored_through_seq: null, unanchored_events: 0, contiguous: true,
  key_id: keyId, key_pinned: Boolean(options.publicKey || options.keyId),
};
let lineNo = 0;
let header = false;
let complete = false;
let ended = false;
let checkpoints = 0;
let lastSeq = null;
let lastHash = null;

function fail(reason, seq) {
  r.ok = false;
  r.reason = reason;
  r.line = lineNo;
  if (seq !== undefined) r.first_bad_seq = seq;
}

const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
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
    if (rec.type !== 'header' || rec.format !== 'idgate.audit-export' || rec.version !== 1) {
      fail('first line is not an idgate.audit-export v1 header');
      break;
    }
    header = true;
    complete = rec.complete === true;
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
    r.checked++;
    r.unanchored_events++;
    lastSeq = rec.seq;
    lastHash = rec.hash;
  } else if (rec.type === 'checkpoint') {
    checkpoints++;
    if (rec.seq !== lastSeq) { fail('checkpoint does not follow the event at its seq', rec.seq); break; }
    if (rec.key_id !== keyId) { fail(`checkpoint signed by key ${rec.key_id}, not ${keyId}`, rec.seq); break; }
    if (!checkpointValid(publicKey, rec)) { fail('checkpoint signature is invalid', rec.seq); break; }
    if (rec.hash !== lastHash) { fail('hash differs from the signed checkpoint: the chain was rewritten', rec.seq); break; }
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
lines.close();
if (r.ok && !header) fail('empty export');
if (r.ok && !ended) fail('export is truncated: no end line');

if (options.json) process.stdout.write(JSON.stringify(r) + '\n');
else if (r.ok) {
  process.stdout.write(
    `OK: ${r.checked} sealed events, ${r.checkpoints_verified} checkpoints verified` +
      (r.anchored_through_seq !== null ? `, signed through seq ${r.anchored_through_seq}` : '') +
      `; ${r.unanchored_events} after the last checkpoint, ${r.unsealed} not sealed yet.\n`,
  );
  if (!r.key_pinned) process.stdout.write(`warning: key ${r.key_id} came from the file itself; pin it with --public-key or --key-id\n`);
} else {
  process.stdout.write(`BROKEN${r.first_bad_seq !== undefined ? ` at seq ${r.first_bad_seq}` : ''} (line ${r.line}): ${r.reason}\n`);
}
process.exit(r.ok ? 0 : 1);
