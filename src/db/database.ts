import { AsyncLocalStorage } from 'node:async_hooks'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import SQLite from 'better-sqlite3'
import { Kysely, PostgresAdapter, PostgresDialect, SqliteDialect, type DatabaseIntrospector, type Dialect, type DialectAdapter, type Driver, type QueryCompiler, type SqliteDatabase, type SqliteDialectConfig, type Transaction } from 'kysely'
import pg from 'pg'
import type { Config, PostgresConfig, SqliteConfig } from '../config.js'
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

export type Engine = 'sqlite' | 'postgres'

/**
 * Which engine an executor (the database, a transaction, a unit) runs on, for the few places where
 * the SQL truly differs (README "PostgreSQL"). Not for the per-request path on SQLite.
 */
export function engineOf (db: Executor | Kysely<any>): Engine {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite'
}

export interface DatabaseOptions {
  /** SQLite only: WAL checkpoints on a worker thread (the server sets it), see db/checkpointer.ts. */
  backgroundCheckpoints?: boolean
  onCheckpointError?: (message: string) => void
  onCheckpoint?: (r: CheckpointResult) => void
  /** PostgreSQL only: an idle pooled connection failed (the server restarted, the network dropped); the pool replaces it. */
  onConnectionError?: (err: Error) => void
}

/**
 * The database for a process: SQLite through better-sqlite3 (the default), or PostgreSQL through a
 * `pg` pool, both behind Kysely with the same schema, repositories and services.
 */
export function createDatabase (config: Pick<Config, 'database'> & { nodeEnv?: Config['nodeEnv'] }, opts: DatabaseOptions = {}): Db {
  // Outside production, a query on the root database from inside a group-commit unit throws
  // instead of waiting forever; production skips the bookkeeping (an AsyncLocalStorage per unit).
  const units = config.nodeEnv === 'production' ? null : new AsyncLocalStorage<UnitScope>()
  return config.database.kind === 'postgres'
    ? createPostgres(config.database, units, opts)
    : createSqlite(config.database, units, opts)
}

/** `backgroundCheckpoints` (the server sets it) moves WAL checkpoints to a worker thread, see db/checkpointer.ts. */
function createSqlite (config: SqliteConfig, units: AsyncLocalStorage<UnitScope> | null, opts: DatabaseOptions): Db {
  const sqlite = openSqlite(config.path, config.synchronous)
  const checkpointer = opts.backgroundCheckpoints === true && config.path !== ':memory:'
    ? startCheckpointer(sqlite, { onError: opts.onCheckpointError, onCheckpoint: opts.onCheckpoint })
    : null
  const close = (): void => {
    void checkpointer?.stop()
    sqlite.close()
  }
  const statements = withStatementCache(sqlite, close)
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

// node-postgres returns int8 (what count(*) and sum() of integers give) as a string, since it may
// exceed 2^53. Every int8 this schema produces is a count of rows, so the pool parses them as
// numbers, the type SQLite gives and every caller expects; a value past 2^53 fails loudly
// instead of losing precision. Columns are `integer` (int4) and come back as numbers anyway.
const INT8_OID = 20
function parseInt8 (text: string): number {
  const n = Number(text)
  if (!Number.isSafeInteger(n)) throw new Error(`An int8 value from PostgreSQL (${text}) is beyond JavaScript's safe integers`)
  return n
}
const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser
}

/** The `pg` pool options for a configuration (also used for the event bus's own LISTEN connection). */
export function pgClientOptions (config: PostgresConfig): pg.ClientConfig {
  return {
    connectionString: config.url,
    application_name: 'textdesk',
    // Sent with each connection's start-up, so the server itself cancels a statement that runs too long.
    ...(config.statementTimeoutMs > 0 ? { statement_timeout: config.statementTimeoutMs } : {}),
    ssl: config.ssl.mode === 'off'
      ? false
      : config.ssl.mode === 'require'
        ? { rejectUnauthorized: false }
        : { rejectUnauthorized: true, ...(config.ssl.ca === null ? {} : { ca: config.ssl.ca }) },
    types: pgTypes
  }
}

function createPostgres (config: PostgresConfig, units: AsyncLocalStorage<UnitScope> | null, opts: DatabaseOptions): Db {
  const pool = new pg.Pool({ ...pgClientOptions(config), max: config.poolSize })
  // Without a listener, an idle connection's error (a server restart) would crash the process.
  pool.on('error', (err) => {
    if (opts.onConnectionError !== undefined) opts.onConnectionError(err)
    else console.error(`PostgreSQL connection lost (the pool opens a new one): ${err.message}`)
  })
  if (config.preparedStatements) pool.on('connect', (client) => prepareNamed(client))
  const postgresDialect = new PostgresDialect({ pool })
  const db = new Kysely<Database>({ dialect: units === null ? postgresDialect : new UnitGuardDialect(postgresDialect, units) })
  postgres.set(db, { units, config })
  return db
}

/**
 * The names of the statements each pooled connection keeps prepared, by SQL text. Kysely sends
 * every query unnamed, which PostgreSQL parses and plans again on each execution; a named one is
 * parsed once per connection and then only bound and executed. The set of texts is bounded (a
 * multi-row insert's text depends on its row count), and past the bound a text runs unnamed, so a
 * connection never holds more than MAX_NAMED_STATEMENTS. A transaction-pooling proxy that cannot
 * keep them (PgBouncer in transaction mode before 1.21) needs DATABASE_PREPARED_STATEMENTS=off.
 */
const MAX_NAMED_STATEMENTS = 500
const statementNames = new Map<string, string>()

/**
 * `select *` and `returning *` are left unnamed: a prepared statement's result columns are fixed,
 * and after another instance's migration adds a column (a rolling deploy) PostgreSQL refuses to run
 * it ("cached plan must not change result type"). A statement that names its columns is simply
 * planned again after such a change.
 */
const ALL_COLUMNS = /(?:select|returning|,)\s+(?:"[^"]+"\.)?\*/i

function statementName (text: string): string | undefined {
  if (ALL_COLUMNS.test(text)) return undefined
  const known = statementNames.get(text)
  if (known !== undefined || statementNames.size >= MAX_NAMED_STATEMENTS) return known
  const name = `textdesk_${statementNames.size + 1}`
  statementNames.set(text, name)
  return name
}

type QueryFn = (config: unknown, values?: unknown, callback?: unknown) => unknown

/** Sends each parameterized query of this connection as a named (prepared) statement. */
function prepareNamed (client: pg.PoolClient): void {
  // The class's own query, looked up on each call rather than bound once, so that a wrapper put on
  // the prototype later (a test recording statements) still sees every query.
  const proto = Object.getPrototypeOf(client) as { query: QueryFn }
  const named: QueryFn = (config, values, callback) => {
    const name = typeof config === 'string' && Array.isArray(values) && values.length > 0 ? statementName(config) : undefined
    return name === undefined ? proto.query.call(client, config, values, callback) : proto.query.call(client, { name, text: config, values }, callback)
  }
  client.query = named as typeof client.query
}

/** What PostgreSQL code needs beyond Kysely (group-commit.ts runs units; the event bus opens its LISTEN connection). */
export interface PostgresNative {
  /** Which unit the running code belongs to; null in production. */
  units: AsyncLocalStorage<UnitScope> | null
  config: PostgresConfig
}

const postgres = new WeakMap<Db, PostgresNative>()

export function postgresNative (db: Db): PostgresNative | undefined {
  return postgres.get(db)
}

/**
 * On PostgreSQL a unit is a transaction on a pooled connection: a query on the root database from
 * inside it would run on another connection, outside the unit's transaction. Outside production it
 * is refused at once, with a message that says what to do (as on SQLite, where it would deadlock).
 */
class UnitGuardDialect implements Dialect {
  constructor (private readonly inner: Dialect, private readonly units: AsyncLocalStorage<UnitScope>) {}

  createAdapter (): DialectAdapter {
    return this.inner.createAdapter()
  }

  createQueryCompiler (): QueryCompiler {
    return this.inner.createQueryCompiler()
  }

  createIntrospector (db: Kysely<any>): DatabaseIntrospector {
    return this.inner.createIntrospector(db)
  }

  createDriver (): Driver {
    const driver = this.inner.createDriver()
    const acquire = driver.acquireConnection.bind(driver)
    driver.acquireConnection = async () => {
      if (this.units.getStore()?.running === true) throw new Error(ROOT_DB_IN_UNIT)
      return await acquire()
    }
    return driver
  }
}

/** A group-commit unit while it runs (see db/group-commit.ts). */
export interface UnitScope { running: boolean }

export const ROOT_DB_IN_UNIT = 'A group-commit unit ran a query on the root database. On SQLite the batch holds the only connection, ' +
  'so that query would wait forever; on PostgreSQL it would run outside the unit\'s transaction. ' +
  'Run it on the executor the unit was given: groupCommitter(db).run(async (unit) => …(unit, …)).'

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
