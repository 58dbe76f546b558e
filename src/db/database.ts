import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import SQLite from 'better-sqlite3'
import { Kysely, SqliteDialect, type SqliteDatabase, type Transaction } from 'kysely'
import type { Config } from '../config.js'
import { startCheckpointer } from './checkpointer.js'
import type { Database } from './schema.js'

export type Db = Kysely<Database>
/** Repository functions take either the database or an open transaction as their first argument. */
export type Executor = Kysely<Database> | Transaction<Database>

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
  return sqlite
}

/**
 * The database for a process. `backgroundCheckpoints` (the server sets it) moves WAL checkpoints
 * to a worker thread, see db/checkpointer.ts; short-lived scripts and most tests do without.
 */
export function createDatabase (config: Pick<Config, 'database'>, opts: { backgroundCheckpoints?: boolean, onCheckpointError?: (message: string) => void } = {}): Db {
  const sqlite = openSqlite(config.database.path, config.database.synchronous)
  const checkpointer = opts.backgroundCheckpoints === true && config.database.path !== ':memory:'
    ? startCheckpointer(sqlite, { onError: opts.onCheckpointError })
    : null
  const close = (): void => {
    void checkpointer?.stop()
    sqlite.close()
  }
  const statements = withStatementCache(sqlite, close)
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: statements }) })
  natives.set(db, { prepare: statements.prepare as NativeConnection['prepare'], inTransaction: () => sqlite.inTransaction })
  return db
}

/**
 * The better-sqlite3 connection under a database, with the same statement cache Kysely uses. Only
 * for code that holds Kysely's connection (db/group-commit.ts), so nothing else runs in between.
 */
export interface NativeConnection {
  prepare: (sql: string) => SQLite.Statement
  inTransaction: () => boolean
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
