import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import type { Db } from '../db/database.js'
import * as repo from './login-throttle-repository.js'

export const accountThrottleKey = (email: string): string => `account:${email.trim().toLowerCase()}`
export const addressThrottleKey = (ip: string): string => `ip:${ip}`

export type ThrottleVerdict = { allowed: true } | { allowed: false, retryAfterSeconds: number, lockedOut: boolean }

const MAX_SLOWDOWN_SECONDS = 60

/**
 * Brute-force protection for sign-in, kept in the database so it survives restarts. Each failure
 * counts against the account (guessing one password) and the client address (trying many
 * accounts). From half the limit on, every failure makes the next attempt wait a little longer;
 * at the limit, attempts are refused for the lockout period. A refused attempt is not checked and
 * not counted, so it tells a guesser nothing.
 */
export class LoginThrottle {
  constructor (private readonly deps: { db: Db, clock: Clock, config: Pick<Config, 'login'> }) {}

  async check (keys: string[]): Promise<ThrottleVerdict> {
    const now = this.deps.clock.now().getTime()
    let wait = 0
    let lockedOut = false
    for (const row of await repo.findThrottles(this.deps.db, keys)) {
      const until = row.locked_until === null ? 0 : Date.parse(row.locked_until)
      if (until > now) {
        wait = Math.max(wait, Math.ceil((until - now) / 1000))
        if (row.failures >= this.limitFor(row.key)) lockedOut = true
      }
    }
    return wait > 0 ? { allowed: false, retryAfterSeconds: wait, lockedOut } : { allowed: true }
  }

  /** Counts a failed attempt; returns what the next attempt will face. */
  async recordFailure (keys: string[]): Promise<ThrottleVerdict> {
    const { lockoutMinutes } = this.deps.config.login
    const nowDate = this.deps.clock.now()
    const now = nowDate.getTime()
    const windowMs = lockoutMinutes * 60_000
    await this.deps.db.transaction().execute(async (trx) => {
      for (const key of keys) {
        const row = await repo.findThrottle(trx, key)
        const fresh = row === undefined || Date.parse(row.window_started_at) <= now - windowMs
        const failures = fresh ? 1 : row.failures + 1
        const windowStartedAt = fresh ? nowDate.toISOString() : row.window_started_at
        const lockMs = this.lockFor(key, failures)
        await repo.saveThrottle(trx, { key, failures, windowStartedAt, lockedUntil: lockMs === 0 ? null : new Date(now + lockMs).toISOString() })
      }
      await repo.deleteStaleThrottles(trx, new Date(now - windowMs).toISOString(), nowDate.toISOString())
    })
    return await this.check(keys)
  }

  /** A successful sign-in clears the account's count; the address keeps its own. */
  async recordSuccess (accountKey: string): Promise<void> {
    await repo.deleteThrottle(this.deps.db, accountKey)
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
