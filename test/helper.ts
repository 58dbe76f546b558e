import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { buildApp } from '../src/app.js'
import type { Clock } from '../src/clock.js'
import { loadConfig, type Config } from '../src/config.js'
import { createDatabase, type Db } from '../src/db/database.js'
import { migrateToLatest } from '../src/db/migrate.js'
import type { ChannelAdapter } from '../src/messaging/channel.js'

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

/** A fresh, migrated SQLite file in its own temporary folder, removed after the test. */
export async function freshDatabase (t: Test): Promise<{ db: Db, path: string, dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'textdesk-test-'))
  const path = join(dir, 'test.sqlite')
  const db = createDatabase({ database: { kind: 'sqlite', path, synchronous: 'NORMAL' } })
  await migrateToLatest(db)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return { db, path, dir }
}

export interface TestAppOptions {
  env?: Record<string, string>
  clock?: FakeClock
  channel?: ChannelAdapter
  /** Reuse an existing database file (e.g. to simulate a restart). */
  databasePath?: string
}

export function testConfig (env: Record<string, string> = {}): Config {
  return loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', SIMULATOR_DELIVERY_DELAY_MS: '0', PASSWORD_SCRYPT_LOG_N: '10', ...env })
}

/** Builds the real app on a fresh SQLite file; the outbox worker is not started (tests call drain()). */
export async function buildTestApp (t: Test, opts: TestAppOptions = {}) {
  let path = opts.databasePath
  let db: Db
  if (path === undefined) {
    const fresh = await freshDatabase(t)
    path = fresh.path
    db = fresh.db
  } else {
    db = createDatabase({ database: { kind: 'sqlite', path, synchronous: 'NORMAL' } })
    await migrateToLatest(db)
  }
  const config = testConfig({ DATABASE_URL: `sqlite:${path}`, ...opts.env })
  const clock = opts.clock ?? new FakeClock()
  const app = await buildApp({ config, db, clock, channel: opts.channel })
  t.teardown(async () => await app.close())
  return { app, db, clock, config, services: app.services, databasePath: path }
}

export function form (fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString()
}
