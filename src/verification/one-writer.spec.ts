import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * VerificationStore is the only code that reads or writes `verifications` and
 * `idempotency_keys` (billing reads the `verification_charges` view): a query of either table
 * anywhere else in src/ fails here, comments aside.
 */
const SRC = path.join(__dirname, '..');
const STORE = path.join(__dirname, 'verification.store.ts');
const QUERIES = [
  /\.verification\.\w+\(/, // Prisma model delegate
  /\.idempotencyRecord\.\w+\(/,
  /\b(FROM|UPDATE|INTO|JOIN)\s+"?(verifications|idempotency_keys)\b/i,
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return name === 'generated' ? [] : sourceFiles(full);
    return name.endsWith('.ts') && !name.endsWith('.spec.ts') ? [full] : [];
  });
}

describe('one store for verifications and idempotency keys', () => {
  it('no file but verification.store.ts queries either table', () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(SRC)) {
      if (file === STORE) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          const code = line.trim();
          if (code.startsWith('*') || code.startsWith('//') || code.startsWith('/*')) return;
          if (QUERIES.some((q) => q.test(code))) offenders.push(`${path.relative(SRC, file)}:${i + 1}: ${code}`);
        });
    }
    expect(offenders).toEqual([]);
  });

  it('the check sees a query when there is one', () => {
    const store = readFileSync(STORE, 'utf8');
    expect(QUERIES.filter((q) => q.test(store))).toHaveLength(QUERIES.length);
  });
});
