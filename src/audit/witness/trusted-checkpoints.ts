import type { Anchor } from './anchor-comparison';
import { parseWitnessRecord } from './witness-record';

/*
 * Checkpoints an auditor kept (`--checkpoints <file>`): what GET /v1/audit/checkpoints
 * returned ({"items": [...]}), a JSON array of checkpoints or witness records, or NDJSON
 * (witness journal lines, or an export's checkpoint lines; other lines are skipped).
 * Format 1 (no version) and format 2 both.
 */

const HEX64 = /^[0-9a-f]{64}$/;

function parseOne(value: unknown, where: string): Anchor {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${where}: not an object`);
  const v = value as Record<string, unknown>;
  if (v.version === 2) {
    const parsed = parseWitnessRecord({ kind: 'checkpoint', ...v });
    if (typeof parsed === 'string') throw new Error(`${where}: ${parsed}`);
    return parsed;
  }
  if (v.version !== undefined && v.version !== 1)
    throw new Error(`${where}: unknown version ${JSON.stringify(v.version)}`);
  const seq = v.seq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1)
    throw new Error(`${where}: seq is not a positive integer`);
  if (typeof v.hash !== 'string' || !HEX64.test(v.hash)) throw new Error(`${where}: hash is not 64 lowercase hex`);
  if (typeof v.signed_at !== 'string' || Number.isNaN(Date.parse(v.signed_at)))
    throw new Error(`${where}: signed_at is not a time`);
  if (typeof v.key_id !== 'string' || typeof v.signature !== 'string')
    throw new Error(`${where}: key_id or signature missing`);
  return {
    kind: 'checkpoint',
    seq,
    hash: v.hash,
    signed_at: v.signed_at,
    key_id: v.key_id,
    signature: v.signature,
    version: 1,
    prev: null,
  };
}

export function parseTrustedCheckpoints(text: string): Anchor[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  if (trimmed.startsWith('[') || trimmed.startsWith('{"items"') || trimmed.startsWith('{ "items"')) {
    try {
      const doc = JSON.parse(trimmed) as unknown;
      const list = Array.isArray(doc) ? doc : (doc as { items?: unknown }).items;
      if (!Array.isArray(list)) throw new Error('no "items" list');
      return list.map((v, i) => parseOne(v, `item ${i + 1}`));
    } catch (err) {
      if (!trimmed.startsWith('{')) throw err;
      // One NDJSON line that happens to start like a list document: read as NDJSON below.
    }
  }
  const anchors: Anchor[] = [];
  for (const [i, line] of trimmed.split('\n').entries()) {
    if (line.trim() === '') continue;
    const value = JSON.parse(line) as Record<string, unknown>;
    if (value.type !== undefined && value.type !== 'checkpoint') continue;
    const { type: _type, ...rest } = value;
    anchors.push(parseOne(rest, `line ${i + 1}`));
  }
  return anchors;
}
