import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import type { Db, Executor } from '../db/database.js'
import * as repo from './login-throttle-repository.js'

export const accountThrottleKey = (email: string): string => `account:${email.trim().toLowerCase()}`
export const addressThrottleKey = (ip: string): string => `ip:${ip}`

export type ThrottleVerdict = { allowed: true } | { allowed: false, retryAfterSeconds: number, lockedOut: boolean }

/** One attempt, counted as a failure on each key until it is settled. */
export interface Reservation {
  readonly keys: ReadonlyArray<{ key: string, windowStartedAt: string, lockedUntil: string | null }>
}

export type ReserveResult = { allowed: true, reservation: Reservation } | { allowed: false, retryAfterSeconds: number, lockedOut: boolean }

const MAX_SLOWDOWN_SECONDS = 60

/**
 * Brute-force protection for sign-in, kept in the database so it survives restarts. Each failure
 * counts against the account (guessing one password) and the client address (trying many
 * accounts). From half the limit on, every failure makes the next attempt wait a little longer;
 * at the limit, attempts are refused for the lockout period. A refused attempt is not checked and
 * not counted, so it tells a guesser nothing.
 *
 * An attempt is counted as a failure *before* its password is checked (`reserve`, one
 * transaction that checks and counts), and given back when it turns out not to be one (`succeed`,
 * `refund`). So parallel guesses see each other: a burst gets exactly the checks that the same
 * guesses one after another would get, and a crash mid-check leaves the attempt counted.
 */
export class LoginThrottle {
  constructor (private readonly deps: { db: Db, clock: Clock, config: Pick<Config, 'login'> }) {}

  /** What the next attempt on these keys faces, without counting anything. */
  async check (keys: string[]): Promise<ThrottleVerdict> {
    return this.verdict(await repo.findThrottles(this.deps.db, keys), this.deps.clock.now().getTime())
  }

  /** Checks the keys and, when allowed, counts the attempt as a failure on each, atomically. */
  async reserve (keys: string[]): Promise<ReserveResult> {
    const { lockoutMinutes } = this.deps.config.login
    const nowDate = this.deps.clock.now()
    const now = nowDate.getTime()
    const windowMs = lockoutMinutes * 60_000
    return await this.deps.db.transaction().execute(async (trx): Promise<ReserveResult> => {
      await repo.lockThrottleKeys(trx, keys)
      const verdict = this.verdict(await repo.findThrottles(trx, keys), now)
      if (!verdict.allowed) return verdict
      const reserved: Array<Reservation['keys'][number]> = []
      for (const key of keys) {
        const row = await repo.findThrottle(trx, key)
        const fresh = row === undefined || Date.parse(row.window_started_at) <= now - windowMs
        const failures = fresh ? 1 : row.failures + 1
        const windowStartedAt = fresh ? nowDate.toISOString() : row.window_started_at
        const lockMs = this.lockFor(key, failures)
        const lockedUntil = lockMs === 0 ? null : new Date(now + lockMs).toISOString()
        await repo.saveThrottle(trx, { key, failures, windowStartedAt, lockedUntil })
        reserved.push({ key, windowStartedAt, lockedUntil })
      }
      await repo.deleteStaleThrottles(trx, new Date(now - windowMs).toISOString(), nowDate.toISOString())
      return { allowed: true, reservation: { keys: reserved } }
    })
  }

  /** The password was wrong: the attempt stays counted. Returns what the next attempt will face. */
  async fail (reservation: Reservation): Promise<ThrottleVerdict> {
    return await this.check(reservation.keys.map((k) => k.key))
  }

  /** A successful sign-in clears the account's count; the address gets this attempt back. */
  async succeed (reservation: Reservation, accountKey: string): Promise<void> {
    await this.deps.db.transaction().execute(async (trx) => {
      await repo.lockThrottleKeys(trx, [accountKey, ...reservation.keys.map((k) => k.key)])
      await repo.deleteThrottle(trx, accountKey)
      await this.giveBack(trx, reservation.keys.filter((k) => k.key !== accountKey))
    })
  }

  /** The attempt was not a failure (never checked, or the right password of a disabled account). */
  async refund (reservation: Reservation): Promise<void> {
    await this.deps.db.transaction().execute(async (trx) => {
      await repo.lockThrottleKeys(trx, reservation.keys.map((k) => k.key))
      await this.giveBack(trx, reservation.keys)
    })
  }

  private async giveBack (trx: Executor, keys: Reservation['keys']): Promise<void> {
    for (const reserved of keys) {
      const row = await repo.findThrottle(trx, reserved.key)
      // A new window started since: the reserved failure has already been forgotten.
      if (row === undefined || row.window_started_at !== reserved.windowStartedAt) continue
      const failures = row.failures - 1
      if (failures <= 0) {
        await repo.deleteThrottle(trx, reserved.key)
        continue
      }
      // The wait this attempt set is lifted; no attempt could start while it held, and any wait
      // set before it had already run out, or this attempt would have been refused.
      const lockedUntil = row.locked_until === reserved.lockedUntil ? null : row.locked_until
      await repo.saveThrottle(trx, { key: reserved.key, failures, windowStartedAt: row.window_started_at, lockedUntil })
    }
  }

  private verdict (rows: Array<{ key: string, failures: number, locked_until: string | null }>, now: number): ThrottleVerdict {
    let wait = 0
    let lockedOut = false
    for (const row of rows) {
      const until = row.locked_until === null ? 0 : Date.parse(row.locked_until)
      if (until > now) {
        wait = Math.max(wait, Math.ceil((until - now) / 1000))
        if (row.failures >= this.limitFor(row.key)) lockedOut = true
      }
    }
    return wait > 0 ? { allowed: false, retryAfterSeconds: wait, lockedOut } : { allowed: true }
  }

  private limitFor (key: string): number {
    const { maxFailures, maxFailuresPerIp } = this.deps.config.login
    return key.startsWith('ip:') ? maxFailuresPerIp : maxFailures
  }

  private lockFor (key: string, failures: number): number {
    const limit = this.limitFor(key)
    if (failures >= limit) return this.deps.config.login.lockoutMinutes * 60_000
    const slowFrom = Math.ceil(limit / 2)
    if (failures < slowFrom) return 0
    return Math.min(2 ** (failures - slowFrom), MAX_SLOWDOWN_SECONDS) * 1000
  }
}
