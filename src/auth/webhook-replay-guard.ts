import type { Clock } from '../clock.js'
import type { Db, Executor } from '../db/database.js'
import { groupCommitter } from '../db/group-commit.js'
import * as repo from './webhook-jti-repository.js'

const PURGE_EVERY_MS = 60_000

/**
 * Remembers the id (jti) of every signed webhook until its token expires, so a captured request
 * cannot be played again. The jti is spent in the same unit of work as what the webhook stores
 * (architecture invariant 2): both commit, or neither does, so a crash or a failure before the
 * commit leaves the jti unspent and the provider's retry with the same token is accepted.
 */
export class WebhookReplayGuard {
  private lastPurge = 0

  constructor (private readonly deps: { db: Db, clock: Clock }) {}

  /** True when an unexpired token already spent this jti: read only, for refusing a replay before a handler runs. */
  async isSpent (jti: string): Promise<boolean> {
    return await repo.isJtiSpent(this.deps.db, jti, this.deps.clock.now().toISOString())
  }

  /** Spends the jti in the caller's unit of work; false when another request spent it first. */
  async spend (trx: Executor, jti: string, acceptedUntil: Date): Promise<boolean> {
    const now = this.deps.clock.now()
    if (now.getTime() - this.lastPurge >= PURGE_EVERY_MS) {
      this.lastPurge = now.getTime()
      await repo.deleteExpiredJtis(trx, now.toISOString())
    }
    return await repo.claimJti(trx, jti, acceptedUntil.toISOString(), now.toISOString())
  }

  /** Spends the jti in a commit of its own, for a webhook that stores nothing else (an ignored event). */
  async spendAlone (jti: string, acceptedUntil: Date): Promise<boolean> {
    return await groupCommitter(this.deps.db).run(async (trx) => await this.spend(trx, jti, acceptedUntil))
  }
}
