import type { Clock } from '../clock.js'
import type { Db } from '../db/database.js'
import * as repo from './webhook-jti-repository.js'

const PURGE_EVERY_MS = 60_000

/**
 * Remembers the id (jti) of every signed webhook until its token expires, so a captured request
 * cannot be played again. A request that was not acknowledged gives its jti back: it stored
 * nothing, and the provider's retry may carry the same token.
 */
export class WebhookReplayGuard {
  private lastPurge = 0

  constructor (private readonly deps: { db: Db, clock: Clock }) {}

  /** False when the jti was already used by an unexpired token. */
  async claim (jti: string, acceptedUntil: Date): Promise<boolean> {
    const now = this.deps.clock.now()
    if (now.getTime() - this.lastPurge >= PURGE_EVERY_MS) {
      this.lastPurge = now.getTime()
      await repo.deleteExpiredJtis(this.deps.db, now.toISOString())
    }
    return await repo.claimJti(this.deps.db, jti, acceptedUntil.toISOString(), now.toISOString())
  }

  async release (jti: string): Promise<void> {
    await repo.releaseJti(this.deps.db, jti)
  }
}
