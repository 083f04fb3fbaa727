import type { Sql } from './sql.js';

/**
 * The few SQL fragments PostgreSQL and SQLite spell differently. Every other statement is written
 * once, in what both accept: `$n` parameters, `CAST(x AS type)` rather than `x::type`, `now()`
 * (the SQLite adapter defines it: the process's clock, as integer milliseconds, the way it keeps
 * times), RETURNING, ON CONFLICT, aggregate FILTER.
 */
export interface Dialect {
  /** The database's clock plus `ms` milliseconds (an expression of type double precision), as a timestamptz. */
  nowPlusMs(ms: string): string;
  /** The later of two timestamptz expressions, neither NULL. */
  later(a: string, b: string): string;
  /** `expr` equals one of the texts of the array parameter `param`. */
  inTextArray(expr: string, param: string): string;
  /**
   * Appended to a claim's `SELECT … LIMIT 1`: PostgreSQL locks the row and skips rows other
   * instances hold; SQLite needs nothing, a write holding the whole database until it commits.
   */
  skipLocked: string;
}

const POSTGRES: Dialect = {
  nowPlusMs: (ms) => `now() + CAST(${ms} AS double precision) * interval '1 millisecond'`,
  later: (a, b) => `greatest(${a}, ${b})`,
  inTextArray: (expr, param) => `${expr} = ANY(CAST(${param} AS text[]))`,
  skipLocked: 'FOR UPDATE SKIP LOCKED',
};

/** Times are integer milliseconds since the epoch; an array parameter arrives as JSON text (sqlite.ts). */
const SQLITE: Dialect = {
  nowPlusMs: (ms) => `now() + CAST(round(${ms}) AS integer)`,
  later: (a, b) => `max(${a}, ${b})`,
  inTextArray: (expr, param) => `${expr} IN (SELECT value FROM json_each(${param}))`,
  skipLocked: '',
};

/** The dialect of a store; PGlite is PostgreSQL. */
export function dialectOf(sql: Pick<Sql, 'kind'>): Dialect {
  return sql.kind === 'sqlite' ? SQLITE : POSTGRES;
}
