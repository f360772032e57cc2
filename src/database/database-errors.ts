/*
 * Telling "the database is unreachable" apart from a bug, so that an outage is
 * answered 503 (retry later; nothing was recorded) rather than 500.
 */

/**
 * Prisma codes for a server that cannot be reached, timed out, or closed the connection,
 * and for a pool that could not lend a connection in time (P2024, and P2028: a
 * transaction that could not start within maxWait, or outlived its timeout and was
 * rolled back). In every case the statement did not take effect.
 */
const PRISMA_UNAVAILABLE = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2028', 'P2037']);
/** Driver-adapter error kinds with the same meaning. */
const ADAPTER_UNAVAILABLE = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
  'DatabaseDoesNotExist',
]);
/** SQLSTATE classes 08 (connection exception) and 57P (operator intervention: shutdown, crash recovery). */
const SQLSTATE_UNAVAILABLE = /^(08\w{3}|57P0[1-3])$/;
const NODE_UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

export function isDatabaseUnavailable(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 5) return false;
  const e = err as {
    code?: unknown;
    kind?: unknown;
    message?: unknown;
    cause?: unknown;
    meta?: { driverAdapterError?: unknown };
  };
  if (typeof e.code === 'string') {
    if (PRISMA_UNAVAILABLE.has(e.code) || SQLSTATE_UNAVAILABLE.test(e.code) || NODE_UNAVAILABLE.has(e.code))
      return true;
  }
  if (typeof e.kind === 'string' && ADAPTER_UNAVAILABLE.has(e.kind)) return true;
  // pg's own wording when a pooled connection dies under it.
  if (
    typeof e.message === 'string' &&
    /Connection terminated|connection is closed|timeout exceeded when trying to connect/i.test(e.message)
  ) {
    return true;
  }
  return isDatabaseUnavailable(e.meta?.driverAdapterError, depth + 1) || isDatabaseUnavailable(e.cause, depth + 1);
}

/** Write conflicts PostgreSQL asks the client to retry: serialization failure, deadlock (and Prisma's P2034). */
const RETRY_CONFLICT = new Set(['40001', '40P01', 'P2034']);

/**
 * Errors after which the same write may simply be tried again: the database was
 * unavailable or the pool exhausted (nothing was written), or a write conflict.
 */
export function isTransientDatabaseError(err: unknown, depth = 0): boolean {
  if (isDatabaseUnavailable(err)) return true;
  if (!err || typeof err !== 'object' || depth > 5) return false;
  const e = err as { code?: unknown; cause?: unknown; meta?: { driverAdapterError?: unknown } };
  if (typeof e.code === 'string' && RETRY_CONFLICT.has(e.code)) return true;
  return (
    isTransientDatabaseError(e.meta?.driverAdapterError, depth + 1) || isTransientDatabaseError(e.cause, depth + 1)
  );
}
