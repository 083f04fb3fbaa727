/**
 * Why a write failed, which decides how it is retried:
 * - `unreachable`: the store cannot be reached (connection refused or lost, server shutting down);
 * - `refusing`: the store answers but takes no writes now — read-only (a standby after a
 *   failover, `default_transaction_read_only`), disk full or out of resources, a statement or
 *   lock timeout, a serialization failure, no privilege, or any failure not known to be the
 *   statement's own fault;
 * - `rejected`: the statement itself is wrong (a constraint, bad data, a syntax or schema error,
 *   a programming error): it fails the same way every time.
 * The first two are retried until the store takes the write; a rejected one a few times.
 */
export type WriteFailure = 'unreachable' | 'refusing' | 'rejected';

/**
 * SQLSTATE classes of a statement that is wrong in itself: cardinality (21), data (22),
 * integrity constraint (23), routine (2F), schema name (3F), syntax or access rule (42, except
 * 42501 below), WITH CHECK OPTION (44), PL/pgSQL (P0), feature not supported (0A).
 */
const REJECTED_CLASSES = new Set(['21', '22', '23', '2F', '3F', '42', '44', 'P0', '0A']);
/** Insufficient privilege: an operator took write access away; it comes back the same way. */
const INSUFFICIENT_PRIVILEGE = '42501';

/**
 * Whether an error means the store could not be reached (retry later) rather than an answer
 * from it. PostgreSQL classes 08 (connection) and 57P (shutdown, cannot connect now), too many
 * connections (53300), and socket errors.
 */
export function isUnreachable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  if (code.startsWith('08') || code.startsWith('57P') || code === '53300') return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN'].includes(code)) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|the database system is (starting up|shutting down)|Query read timeout/i.test(message);
}

/** Classifies a failed write (see WriteFailure). */
export function classifyWriteFailure(err: unknown): WriteFailure {
  if (isUnreachable(err)) return 'unreachable';
  if (err instanceof UnrecordedDeployment) return 'rejected';
  if (err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError || err instanceof SyntaxError) return 'rejected';
  const code = sqlState(err);
  if (code && code !== INSUFFICIENT_PRIVILEGE && REJECTED_CLASSES.has(code.slice(0, 2))) return 'rejected';
  return 'refusing';
}

/** The SQLSTATE of a database error, when it has one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** A write names a deployment whose own record was set aside: it cannot be made either. */
export class UnrecordedDeployment extends Error {
  constructor(readonly provisionalId: number) {
    super(`it names deployment ${provisionalId}, whose record the store rejected and which was set aside`);
    this.name = 'UnrecordedDeployment';
  }
}
