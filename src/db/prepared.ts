import type { Compilable, CompiledQuery, QueryResult } from 'kysely'
import type { Executor, NativeConnection } from './database.js'

const MARK = '\u0000param:'

/** A named placeholder inside a query built for `prepared()`. */
export function param<T> (name: string): T {
  return (MARK + name) as unknown as T
}

const direct = new WeakMap<Executor, NativeConnection>()

/**
 * While `executor` holds Kysely's only connection (inside `db.connection().execute()`), prepared
 * queries on it run on better-sqlite3 directly, skipping Kysely's per-query machinery (connection
 * provider, mutex, plugin pass, result promise); the SQL and the result shape are the ones Kysely's
 * SQLite driver would produce.
 */
export function executeDirectly (executor: Executor, native: NativeConnection): void {
  direct.set(executor, native)
}

/**
 * A query written with Kysely's builder but built and compiled once. Profiling the webhook path
 * showed as much time in building and compiling queries (object freezing, node visitors) as in
 * SQLite itself; for the handful of queries every inbound SMS runs, the compiled SQL is reused and
 * only the parameters change. Placeholders are marked with `param(name)`; every other value in
 * the query is a constant.
 */
export function prepared<P extends Record<string, unknown>, R> (build: (db: Executor) => Compilable<R>): (db: Executor, params: P) => Promise<QueryResult<R>> {
  // Compiled once per dialect: SQL compiled for SQLite must never reach PostgreSQL, or the other
  // way round (a process may hold both, as the test suite does). Keyed by the adapter's class.
  let compiledFor: unknown = null
  let compiled: Compiled<R> | null = null
  const others = new Map<unknown, Compiled<R>>()
  // The statement for the connection this query last ran on directly (one per process in practice).
  let statementOf: NativeConnection | null = null
  let statement: ReturnType<NativeConnection['prepare']> | null = null
  return async (db, params) => {
    const dialect = db.getExecutor().adapter.constructor
    if (dialect !== compiledFor) {
      if (compiled !== null) others.set(compiledFor, compiled)
      compiled = others.get(dialect) ?? compile(build(db))
      compiledFor = dialect
    }
    const { query: c, names } = compiled as Compiled<R>
    const parameters = names.map((name, i) => name === null ? c.parameters[i] : params[name])
    const native = direct.get(db)
    if (native === undefined) return await db.executeQuery<R>({ ...c, parameters })
    if (statementOf !== native || statement === null) {
      statement = native.prepare(c.sql)
      statementOf = native
    }
    const stmt = statement
    if (stmt.reader) return { rows: stmt.all(parameters) as R[] }
    const { changes, lastInsertRowid } = stmt.run(parameters)
    return { rows: [], numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid) }
  }
}

interface Compiled<R> {
  query: CompiledQuery<R>
  /** For each parameter, the name of its placeholder, or null for a constant. */
  names: Array<string | null>
}

function compile<R> (query: Compilable<R>): Compiled<R> {
  const c = query.compile()
  return { query: c, names: c.parameters.map((v) => typeof v === 'string' && v.startsWith(MARK) ? v.slice(MARK.length) : null) }
}
