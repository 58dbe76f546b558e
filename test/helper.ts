import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import pg from 'pg'
import type { Test } from 'tap'
import { buildApp } from '../src/app.js'
import type { Clock } from '../src/clock.js'
import { loadConfig, type Config } from '../src/config.js'
import { createDatabase, type Db, type Engine } from '../src/db/database.js'
import { migrateToLatest, migrations } from '../src/db/migrate.js'
import type { EventBus } from '../src/events/bus.js'
import type { ChannelAdapter } from '../src/messaging/channel.js'

/**
 * The engine the suite runs on: SQLite (a file per test) unless TEST_DATABASE_URL names a
 * PostgreSQL server's maintenance database (postgres://postgres@127.0.0.1:5433/postgres), which
 * `scripts/with-postgres.sh npm test` sets up. On PostgreSQL every test gets a database of its own.
 */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL === undefined || process.env.TEST_DATABASE_URL === '' ? null : process.env.TEST_DATABASE_URL
export const testEngine: Engine = TEST_DATABASE_URL === null ? 'sqlite' : 'postgres'

/**
 * Options for a test that exercises SQLite's own machinery (the checkpointer, group commit's
 * batches, pragmas, the backup API, the WAL): skipped, with the reason shown, in the PostgreSQL pass.
 */
export function sqliteOnly (what: string): { skip: string | false } {
  return { skip: testEngine === 'postgres' ? `SQLite only: ${what}` : false }
}

/** The opposite: a test of PostgreSQL's behaviour, skipped (and saying so) in the SQLite pass. */
export function postgresOnly (what: string): { skip: string | false } {
  return { skip: testEngine === 'sqlite' ? `PostgreSQL only (run with scripts/with-postgres.sh): ${what}` : false }
}

/** A foreign-key violation, as either engine words it. */
export const FOREIGN_KEY_VIOLATION = /FOREIGN KEY constraint failed|violates foreign key constraint/

/** A unique or primary-key violation, as either engine words it. */
export const UNIQUE_VIOLATION = /UNIQUE constraint failed|PRIMARY KEY|duplicate key value violates unique constraint/

/**
 * Makes every insert into `table` fail with `message`, as a broken disk would, until the returned
 * function runs: a trigger on either engine (a temporary one on SQLite's single connection).
 */
export async function refuseInserts (db: Db, table: string, message: string): Promise<() => Promise<void>> {
  const name = sql.raw(`refuse_${table}`)
  const target = sql.raw(table)
  const text = sql.lit(message)
  if (testEngine === 'sqlite') {
    await sql`create temp trigger ${name} before insert on ${target} begin select raise(abort, ${text}); end`.execute(db)
    return async () => { await sql`drop trigger ${name}`.execute(db) }
  }
  await sql`create function ${name}() returns trigger language plpgsql as $$ begin raise exception ${text}; end $$`.execute(db)
  await sql`create trigger ${name} before insert on ${target} for each row execute function ${name}()`.execute(db)
  return async () => {
    await sql`drop trigger ${name} on ${target}`.execute(db)
    await sql`drop function ${name}()`.execute(db)
  }
}

/** A clock tests move by hand: no test sleeps through a real deadline. */
export class FakeClock implements Clock {
  private t: number
  constructor (start = '2026-01-01T09:00:00.000Z') {
    this.t = Date.parse(start)
  }

  now (): Date {
    return new Date(this.t)
  }

  advance (ms: number): void {
    this.t += ms
  }

  set (iso: string): void {
    this.t = Date.parse(iso)
  }
}

/**
 * A fresh, migrated database, removed after the test: a SQLite file in its own temporary folder,
 * or, on PostgreSQL, a database of its own copied from a migrated template (CREATE DATABASE …
 * TEMPLATE, a file copy on the server: much cheaper than migrating each time). `dir` is a
 * temporary folder for the test's other files either way.
 */
export async function freshDatabase (t: Test): Promise<{ db: Db, databaseUrl: string, path: string, dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'textdesk-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  if (TEST_DATABASE_URL === null) {
    const databaseUrl = `sqlite:${join(dir, 'test.sqlite')}`
    const db = openTestDatabase(databaseUrl)
    await migrateToLatest(db)
    return { db, databaseUrl, path: sqlitePath(databaseUrl), dir }
  }
  const databaseUrl = await createPostgresDatabase(t)
  const db = openTestDatabase(databaseUrl)
  t.teardown(async () => await db.destroy())
  // `path` is for the tests of SQLite's own machinery, skipped on PostgreSQL: there it is the URL.
  return { db, databaseUrl, path: databaseUrl, dir }
}

/** A database as the app would open it from DATABASE_URL (the caller destroys it). */
export function openTestDatabase (databaseUrl: string, env: Record<string, string> = {}): Db {
  return createDatabase({ database: testConfig({ ...env, DATABASE_URL: databaseUrl }).database })
}

/** The path of a SQLite test database, for the tests of SQLite's own machinery. */
export function sqlitePath (databaseUrl: string): string {
  if (!databaseUrl.startsWith('sqlite:')) throw new Error(`not a SQLite database: ${databaseUrl}`)
  return databaseUrl.slice('sqlite:'.length)
}

let admin: pg.Pool | null = null
let template: Promise<string> | null = null

/** The maintenance connection for creating and dropping test databases; it lets the process exit when idle. */
function adminPool (): pg.Pool {
  if (TEST_DATABASE_URL === null) throw new Error('TEST_DATABASE_URL is not set')
  admin ??= new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 2, allowExitOnIdle: true })
  return admin
}

/** The URL of database `name` on the test server. */
export function postgresUrl (name: string): string {
  const u = new URL(TEST_DATABASE_URL as string)
  u.pathname = `/${name}`
  return u.toString()
}

/**
 * An empty database on the test server, dropped after the test (after everything the test
 * opened on it is closed: tap runs teardowns last-registered first).
 */
export async function createEmptyPostgresDatabase (t: Test, opts: { template?: string } = {}): Promise<string> {
  const name = `t_${randomBytes(8).toString('hex')}`
  await adminPool().query(`create database ${name}${opts.template === undefined ? '' : ` template ${opts.template}`}`)
  t.teardown(async () => { await adminPool().query(`drop database if exists ${name} with (force)`) })
  return postgresUrl(name)
}

async function createPostgresDatabase (t: Test): Promise<string> {
  template ??= migratedTemplate()
  return await createEmptyPostgresDatabase(t, { template: await template })
}

/**
 * A database migrated to this build's schema, made once on the server and shared by every test
 * process: its name carries a hash of the migrations' code, so a changed migration gets a new
 * template. Test processes start in parallel, so one makes it under an advisory lock while the
 * others wait, then find it made.
 */
async function migratedTemplate (): Promise<string> {
  const hash = createHash('sha256')
  for (const [name, m] of Object.entries(migrations)) hash.update(`${name}\n${m.up.toString()}\n`)
  const name = `textdesk_template_${hash.digest('hex').slice(0, 16)}`
  const client = await adminPool().connect()
  try {
    await client.query("select pg_advisory_lock(hashtext('textdesk test template'))")
    const made = await client.query('select 1 from pg_database where datname = $1 and datistemplate', [name])
    if (made.rowCount === 0) {
      await client.query(`drop database if exists ${name}`)
      await client.query(`create database ${name}`)
      const db = createDatabase({ database: testConfig({ DATABASE_URL: postgresUrl(name) }).database })
      try {
        await migrateToLatest(db)
      } finally {
        await db.destroy()
      }
      // Marked only once complete: a process that died half-way leaves an unmarked one, made again.
      await client.query(`alter database ${name} is_template true`)
    }
    return name
  } finally {
    await client.query("select pg_advisory_unlock(hashtext('textdesk test template'))")
    client.release()
  }
}

export interface TestAppOptions {
  env?: Record<string, string>
  clock?: FakeClock
  channel?: ChannelAdapter
  /** Reuse an existing database (its DATABASE_URL, e.g. to simulate a restart). */
  databaseUrl?: string
  /** The same, as the `databasePath` an earlier buildTestApp returned (a SQLite path, or a PostgreSQL URL). */
  databasePath?: string
}

export function testConfig (env: Record<string, string> = {}): Config {
  return loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', SIMULATOR_DELIVERY_DELAY_MS: '0', PASSWORD_SCRYPT_LOG_N: '10', ...env })
}

/** Builds the real app on a fresh database; the outbox worker is not started (tests call drain()). */
export async function buildTestApp (t: Test, opts: TestAppOptions = {}) {
  let databaseUrl = opts.databaseUrl ?? (opts.databasePath === undefined ? undefined : /^postgres(ql)?:/.test(opts.databasePath) ? opts.databasePath : `sqlite:${opts.databasePath}`)
  let db: Db
  if (databaseUrl === undefined) {
    const fresh = await freshDatabase(t)
    databaseUrl = fresh.databaseUrl
    db = fresh.db
  } else {
    db = openTestDatabase(databaseUrl)
    await migrateToLatest(db)
  }
  const config = testConfig({ DATABASE_URL: databaseUrl, ...opts.env })
  const clock = opts.clock ?? new FakeClock()
  const app = await buildApp({ config, db, clock, channel: opts.channel })
  t.teardown(async () => await app.close())
  const databasePath = databaseUrl.startsWith('sqlite:') ? sqlitePath(databaseUrl) : databaseUrl
  return { app, db, clock, config, services: app.services, databaseUrl, databasePath }
}

let markers = 0

/**
 * Resolves once every ticket event published before the call has reached `bus`'s subscribers.
 * In-process that is at once; through LISTEN/NOTIFY it is a round trip, so the test publishes a
 * marker (a negative ticket id, which subscribers ignore with `isMarker`) and awaits its arrival:
 * notifications arrive in the order they were sent. No time is waited for.
 */
export async function eventsDelivered (bus: EventBus): Promise<void> {
  const ticketId = -(++markers)
  const arrived = new Promise<void>((resolve) => {
    const off = bus.subscribe((e) => { if (e.name === 'ticket' && e.data.ticketId === ticketId) { off(); resolve() } })
  })
  await bus.publish({ ticketId, change: 'message' })
  await arrived
}

/** Whether an event is eventsDelivered()'s marker. */
export const isMarker = (e: { name: string, data: unknown }): boolean => e.name === 'ticket' && (e.data as { ticketId: number }).ticketId < 0

export function form (fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString()
}
