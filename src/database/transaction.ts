import { Prisma } from '../generated/prisma/client';

/**
 * The one transaction type of the code base: the client handed to code running inside
 * `prisma.$transaction(async (tx) => …)`. Functions that must run inside a caller's
 * transaction take it as their first argument.
 */
export type Transaction = Prisma.TransactionClient;

/**
 * Takes a PostgreSQL advisory lock for the rest of `tx` (released at commit or rollback).
 * `name` is a readable lock name (hashed with hashtext, e.g. `idgate.reuse.<client>`) or a
 * fixed 64-bit number shared with SQL that takes the same lock. The one way code takes one:
 * every lock in the code base is found by searching for this function.
 */
export async function lockForTransaction(tx: Transaction, name: string | number): Promise<void> {
  // Selected into a value, not `SELECT pg_advisory_xact_lock(…)`: a void result is a column the adapter cannot read.
  if (typeof name === 'number') {
    await tx.$queryRaw`SELECT true AS locked FROM (SELECT pg_advisory_xact_lock(${name}::bigint)) l`;
  } else {
    await tx.$queryRaw`SELECT true AS locked FROM (SELECT pg_advisory_xact_lock(hashtext(${name}))) l`;
  }
}

/** Like lockForTransaction, but does not wait: false when another transaction holds the lock. */
export async function tryLockForTransaction(tx: Transaction, name: string | number): Promise<boolean> {
  const [row] =
    typeof name === 'number'
      ? await tx.$queryRaw<Array<{ locked: boolean }>>`SELECT pg_try_advisory_xact_lock(${name}::bigint) AS locked`
      : await tx.$queryRaw<Array<{ locked: boolean }>>`SELECT pg_try_advisory_xact_lock(hashtext(${name})) AS locked`;
  return row.locked;
}
