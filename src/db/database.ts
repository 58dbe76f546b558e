import { AsyncLocalStorage } from 'node:async_hooks'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import SQLite from 'better-sqlite3'
import { Kysely, SqliteDialect, type Driver, type SqliteDatabase, type SqliteDialectConfig, type Transaction } from 'kysely'
import type { Config } from '../config.js'
import { startCheckpointer, type CheckpointResult } from './checkpointer.js'
import type { Database } from './schema.js'

export type Db = Kysely<Database>
/** Repository functions take either the database or an open transaction as their first argument. */
export type Executor = Kysely<Database> | Transaction<Database>

declare const unitBrand: unique symbol
/**
 * What a group-commit unit runs on (db/group-commit.ts): Kysely's one connection, held by the batch,
 * inside the batch's transaction. Its own type, so the type checker refuses the root database
 * where a unit's executor is needed; it is still an Executor for every repository function.
 */
export type UnitExecutor = Kysely<Database> & { readonly [unitBrand]: true }
/** Inside a transaction: a Kysely transaction or a group-commit unit, never the root database. */
export type TxExecutor = Transaction<Database> | UnitExecutor

export function openSqlite (path: string, synchronous: 'NORMAL' | 'FULL' = 'NORMAL'): SQLite.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const sqlite = new SQLite(path)
  // WAL lets the inbox read while a webhook writes. With synchronous=NORMAL a commit survives a
  // process crash (the acknowledgement guarantee we give MessageBird); FULL also survives power loss
  // at the cost of one fsync per commit. See README "Durability".
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma(`synchronous = ${synchronous}`)
  sqlite.pragma('busy_timeout = 5000')
  sqlite.pragma('foreign_keys = ON')
  // 16 MiB of page cache (the default is 2 MiB): the hot index pages stay in memory as tables grow.
  // 64 MiB measured no faster for ingestion or for /inbox at 100,000 tickets, and cost RSS.
  sqlite.pragma('cache_size = -16384')
  // Each group-commit unit runs in a savepoint, whose statement journal holds the pages the unit
  // changes. Past 64 KiB that journal spills to a temporary file, and every later unit of the batch
  // then writes its pages there: measured, this cost ingestion a quarter of its throughput. In
  // memory it is bounded by one unit's writes. (Sorts never need temp space: query-plans.test.ts.)
  sqlite.pragma('temp_store = MEMORY')
  return sqlite
}

/**
 * The database for a process. `backgroundCheckpoints` (the server sets it) moves WAL checkpoints
 * to a worker thread, see db/checkpointer.ts; short-lived scripts and most tests do without.
 */
export function createDatabase (config: Pick<Config, 'database'> & { nodeEnv?: Config['nodeEnv'] }, opts: { backgroundCheckpoints?: boolean, onCheckpointError?: (message: string) => void, onCheckpoint?: (r: CheckpointResult) => void } = {}): Db {
  const sqlite = openSqlite(config.database.path, config.database.synchronous)
  const checkpointer = opts.backgroundCheckpoints === true && config.database.path !== ':memory:'
    ? startCheckpointer(sqlite, { onError: opts.onCheckpointError, onCheckpoint: opts.onCheckpoint })
    : null
  const close = (): void => {
    void checkpointer?.stop()
    sqlite.close()
  }
  const statements = withStatementCache(sqlite, close)
  // Outside production, a query on the root database from inside a group-commit unit throws
  // instead of waiting forever; production skips the bookkeeping (an AsyncLocalStorage per unit).
  const units = config.nodeEnv === 'production' ? null : new AsyncLocalStorage<UnitScope>()
  const native: NativeConnection = {
    prepare: statements.prepare as NativeConnection['prepare'],
    inTransaction: () => sqlite.inTransaction,
    units,
    afterCommit: [],
    committed: () => runAfterCommit(native),
    rolledBack: (keep = 0) => { native.afterCommit.length = keep }
  }
  const db = new Kysely<Database>({ dialect: new TextdeskSqliteDialect({ database: statements }, native) })
  natives.set(db, native)
  return db
}

function runAfterCommit (native: NativeConnection): void {
  const callbacks = native.afterCommit.splice(0)
  for (const fn of callbacks) {
    try {
      fn()
    } catch (err) {
      // What runs after a commit (publishing live events) must not turn a committed change into an error.
      process.emitWarning(err as Error)
    }
  }
}

/** A group-commit unit while it runs (see db/group-commit.ts). */
export interface UnitScope { running: boolean }

export const ROOT_DB_IN_UNIT = 'A group-commit unit ran a query on the root database. The batch holds the only connection, ' +
  'so that query would wait forever. Run it on the executor the unit was given: groupCommitter(db).run(async (unit) => …(unit, …)).'

/**
 * Kysely's SQLite driver with two additions. Kysely's transactions tell after-commit.ts when they
 * commit or roll back. And outside production: the driver has one connection behind a mutex, and
 * a group-commit batch holds it; a unit that asks for the connection again (any query on the root
 * database, or a new transaction) would wait for its own batch: refused at once, with a message
 * that says what to do.
 */
class TextdeskSqliteDialect extends SqliteDialect {
  constructor (config: SqliteDialectConfig, private readonly native: NativeConnection) {
    super(config)
  }

  override createDriver (): Driver {
    const driver = super.createDriver()
    const { units } = this.native
    if (units !== null) {
      const acquire = driver.acquireConnection.bind(driver)
      driver.acquireConnection = async () => {
        if (units.getStore()?.running === true) throw new Error(ROOT_DB_IN_UNIT)
        return await acquire()
      }
    }
    const commit = driver.commitTransaction.bind(driver)
    const rollback = driver.rollbackTransaction.bind(driver)
    driver.commitTransaction = async (connection) => {
      await commit(connection)
      this.native.committed()
    }
    driver.rollbackTransaction = async (connection) => {
      this.native.rolledBack()
      await rollback(connection)
    }
    return driver
  }
}

/**
 * The better-sqlite3 connection under a database, with the same statement cache Kysely uses. Only
 * for code that holds Kysely's connection (db/group-commit.ts), so nothing else runs in between.
 */
export interface NativeConnection {
  prepare: (sql: string) => SQLite.Statement
  inTransaction: () => boolean
  /** Which group-commit unit the running code belongs to; null in production. */
  units: AsyncLocalStorage<UnitScope> | null
  /** Callbacks waiting for the open transaction to commit (db/after-commit.ts). */
  afterCommit: Array<() => void>
  /** The open transaction committed: run the callbacks. */
  committed: () => void
  /** Rolled back: drop the callbacks after the first `keep` (a unit's savepoint), or all. */
  rolledBack: (keep?: number) => void
}

const natives = new WeakMap<Db, NativeConnection>()

export function nativeConnection (db: Db): NativeConnection | undefined {
  return natives.get(db)
}

const STATEMENT_CACHE_SIZE = 500

/**
 * Kysely's SQLite driver prepares every query anew; preparing costs more than running most of
 * our statements. Kysely compiles a given query shape to the same SQL text every time, so
 * statements are cached by that text (least recently used out first). Kysely only iterates a
 * statement when streaming, which this code base does not do, so reuse is safe.
 */
function withStatementCache (sqlite: SQLite.Database, close: () => void): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>()
  return {
    close,
    prepare: (sql: string) => {
      let stmt = cache.get(sql)
      if (stmt !== undefined) {
        cache.delete(sql)
      } else {
        stmt = sqlite.prepare(sql)
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string)
      }
      cache.set(sql, stmt)
      return stmt as unknown as ReturnType<SqliteDatabase['prepare']>
    }
  }
}

/** True when the error is a unique-constraint violation, on SQLite or Postgres. */
export function isUniqueViolation (err: unknown): boolean {
  const e = err as { code?: string } | null
  return e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || e?.code === '23505'
}
