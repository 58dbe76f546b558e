import { sql } from 'kysely'
import { engineOf, type Executor } from '../db/database.js'

// All SQL for sign-in throttling. One row per key (`account:<email>` or `ip:<address>`).

export function findThrottle (db: Executor, key: string) {
  return db.selectFrom('login_throttle').selectAll().where('key', '=', key).executeTakeFirst()
}

export function findThrottles (db: Executor, keys: string[]) {
  return db.selectFrom('login_throttle').selectAll().where('key', 'in', keys).execute()
}

export async function saveThrottle (db: Executor, row: { key: string, failures: number, windowStartedAt: string, lockedUntil: string | null }): Promise<void> {
  const values = { failures: row.failures, window_started_at: row.windowStartedAt, locked_until: row.lockedUntil }
  await db.insertInto('login_throttle').values({ key: row.key, ...values })
    .onConflict((oc) => oc.column('key').doUpdateSet(values))
    .execute()
}

export async function deleteThrottle (db: Executor, key: string): Promise<void> {
  await db.deleteFrom('login_throttle').where('key', '=', key).execute()
}

/** Forgets rows whose window and lock have both run out. */
export async function deleteStaleThrottles (db: Executor, windowStartedBefore: string, now: string): Promise<void> {
  await db.deleteFrom('login_throttle')
    .where('window_started_at', '<', windowStartedBefore)
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
    .execute()
}

/**
 * Serialises the transactions that read and then rewrite the same keys' counts. On SQLite the one
 * connection already does. On PostgreSQL, READ COMMITTED would let 50 parallel guesses all read
 * the same count (and the row may not exist yet to lock), so each key takes a transaction-scoped
 * advisory lock, in a fixed order so two transactions cannot wait on each other.
 */
export async function lockThrottleKeys (trx: Executor, keys: string[]): Promise<void> {
  if (engineOf(trx) !== 'postgres') return
  for (const key of [...new Set(keys)].sort()) await sql`select pg_advisory_xact_lock(hashtext(${`login_throttle:${key}`}))`.execute(trx)
}
