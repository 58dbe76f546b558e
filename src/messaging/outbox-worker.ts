import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import type { Db, Executor } from '../db/database.js'
import { groupCommitter } from '../db/group-commit.js'
import type { Message, OutboxKind, OutboxRow } from '../db/schema.js'
import type { ChannelAdapter } from './channel.js'
import { findMessage, incrementMessageAttempts, updateMessageStatus } from './message-repository.js'
import { claimDue, deleteOutbox, insertOutbox, rescheduleOutbox } from './outbox-repository.js'
import { canAdvance } from './status.js'
import type { StatusService } from './status-service.js'

/** Handles one claimed outbox row; it deletes or reschedules the row itself. */
export type OutboxHandler = (row: OutboxRow) => Promise<void>

const BATCH = 100
const CONCURRENCY = 16

/**
 * Drains the outbox in the web process. Rows are claimed with a lease, so a second worker (or the
 * same one after a crash) only sees a row again once the lease has lapsed; a `send` found in
 * `sending` state then means "an earlier attempt may have reached the provider", which is settled
 * by waiting for a delivery report, never by sending again.
 */
export class OutboxWorker {
  private readonly handlers = new Map<OutboxKind, OutboxHandler>()
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private stopped = true
  private wakeRequested = false
  private lastBeat: number | null = null

  constructor (private readonly deps: {
    db: Db
    channel: ChannelAdapter
    status: StatusService
    clock: Clock
    config: Pick<Config, 'outbox' | 'publicUrl' | 'messagebird'>
    log: FastifyBaseLogger
  }) {
    this.handlers.set('send', async (row) => await this.handleSend(row))
    this.handlers.set('settle_unknown', async (row) => await this.handleSettleUnknown(row))
  }

  register (kind: OutboxKind, handler: OutboxHandler): void {
    this.handlers.set(kind, handler)
  }

  start (): void {
    this.stopped = false
    this.beat()
    this.schedule(0)
  }

  /** For readiness: whether the worker runs, and when it last polled or finished an item (a hung drain stops beating). */
  heartbeat (): { running: boolean, lastBeatAt: number | null } {
    return { running: !this.stopped, lastBeatAt: this.lastBeat }
  }

  private beat (): void {
    this.lastBeat = this.deps.clock.now().getTime()
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    await this.running
  }

  /** Called after a commit that queued work, so it goes out now rather than at the next poll. */
  wake (): void {
    if (this.stopped) return
    if (this.running !== null) {
      this.wakeRequested = true
      return
    }
    this.schedule(0)
  }

  private schedule (ms: number): void {
    if (this.stopped) return
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = null
      this.running = this.drain().then(() => undefined)
        .catch((err) => this.deps.log.error({ err }, 'outbox drain failed'))
        .finally(() => {
          this.running = null
          const again = this.wakeRequested
          this.wakeRequested = false
          this.schedule(again ? 0 : this.deps.config.outbox.pollIntervalMs)
        })
    }, ms)
  }

  /** Processes every row that is due now; returns how many were handled. Tests call this directly. */
  async drain (): Promise<number> {
    let total = 0
    for (;;) {
      const now = this.deps.clock.now()
      this.lastBeat = now.getTime()
      const lease = new Date(now.getTime() + this.leaseMs()).toISOString()
      const rows = await this.deps.db.transaction().execute(async (trx) => await claimDue(trx, now.toISOString(), lease, BATCH))
      if (rows.length === 0) return total
      await runWithConcurrency(rows, CONCURRENCY, async (row) => {
        await this.handle(row)
        this.beat()
      })
      total += rows.length
      if (rows.length < BATCH) return total
    }
  }

  private leaseMs (): number {
    return Math.max(30_000, this.deps.config.messagebird.timeoutMs * 3)
  }

  private async handle (row: OutboxRow): Promise<void> {
    const handler = this.handlers.get(row.kind)
    try {
      if (handler === undefined) throw new Error(`no handler for outbox kind ${row.kind}`)
      await handler(row)
    } catch (err) {
      // A handler bug must not wedge the queue: back off this row and keep going.
      this.deps.log.error({ err, outboxId: row.id, kind: row.kind }, 'outbox item failed')
      const retryAt = new Date(this.deps.clock.now().getTime() + this.backoffMs(row.attempts + 1)).toISOString()
      await rescheduleOutbox(this.deps.db, row.id, retryAt, String((err as Error)?.message ?? err).slice(0, 500))
    }
  }

  private backoffMs (attempt: number): number {
    const { backoffBaseMs, backoffMaxMs } = this.deps.config.outbox
    const exp = Math.min(backoffMaxMs, backoffBaseMs * 2 ** Math.max(0, attempt - 1))
    // "Equal jitter": half fixed, half random, so retries from many messages spread out.
    return Math.round(exp / 2 + Math.random() * exp / 2)
  }

  private reportUrl (channel: string): string | null {
    const base = this.deps.config.publicUrl
    if (base === null) return null
    return channel === 'sms' ? `${base}/webhooks/messagebird/status` : `${base}/webhooks/messagebird/conversations`
  }

  private async handleSend (row: OutboxRow): Promise<void> {
    const { db, clock, channel, status, log } = this.deps
    const messageId = row.message_id
    const message = messageId === null ? undefined : await findMessage(db, messageId)
    if (message === undefined || (message.status !== 'queued' && message.status !== 'sending')) {
      await deleteOutbox(db, row.id)
      return
    }
    const now = clock.now().toISOString()
    if (message.status === 'sending') {
      // We marked it `sending` and then lost track (crash or lapsed lease): the provider may have it.
      await db.transaction().execute(async (trx) => {
        await this.markUnknown(trx, message, 'The service stopped while sending; waiting for a delivery report before deciding', now)
        await deleteOutbox(trx, row.id)
      })
      log.warn({ messageId: message.id }, 'send interrupted earlier; outcome unknown, not resending')
      return
    }
    if (!channel.supports(message.channel)) {
      await db.transaction().execute(async (trx) => {
        await status.transition(trx, message, { status: 'failed', statusAt: now, reason: `The ${message.channel} channel is not available with ${channel.provider}`, errorCode: 'CHANNEL_UNSUPPORTED' }, now)
        await deleteOutbox(trx, row.id)
      })
      return
    }

    // Concurrent sends share commits (db/group-commit.ts); each still waits for its own commit, so
    // `sending` is durable before the request leaves.
    const commit = groupCommitter(db)
    await commit.run(async (trx) => {
      await updateMessageStatus(trx, message.id, { status: 'sending', statusAt: now, provider: channel.provider }, now)
      await incrementMessageAttempts(trx, message.id, now)
    })
    const outcome = await channel.send({
      messageId: message.id,
      channel: message.channel,
      to: message.to_address,
      body: message.body,
      reportUrl: this.reportUrl(message.channel)
    })
    const done = clock.now().toISOString()

    await commit.run(async (trx) => {
      // Re-read: a delivery report may have arrived while the request was in flight.
      const current = await findMessage(trx, message.id)
      if (current === undefined) return
      if (outcome.ok) {
        if (canAdvance(current.status, 'sent')) {
          await status.transition(trx, current, { status: 'sent', statusAt: done, reason: null, errorCode: null, provider: channel.provider, providerMessageId: outcome.providerMessageId }, done)
        } else {
          await updateMessageStatus(trx, current.id, { status: current.status, statusAt: current.status_at, provider: channel.provider, providerMessageId: outcome.providerMessageId }, done)
        }
        await deleteOutbox(trx, row.id)
        return
      }
      if (outcome.failure === 'transient' && row.attempts + 1 < this.deps.config.outbox.maxAttempts) {
        const retryAt = new Date(clock.now().getTime() + this.backoffMs(row.attempts + 1)).toISOString()
        await updateMessageStatus(trx, current.id, { status: 'queued', statusAt: done, reason: `Retrying: ${outcome.reason}`, errorCode: outcome.code }, done)
        await rescheduleOutbox(trx, row.id, retryAt, outcome.reason)
        log.warn({ messageId: current.id, attempt: row.attempts + 1, retryAt }, 'send failed transiently; retrying')
        return
      }
      if (outcome.failure === 'ambiguous') {
        await this.markUnknown(trx, current, outcome.reason, done)
        await deleteOutbox(trx, row.id)
        return
      }
      const reason = outcome.failure === 'transient'
        ? `Gave up after ${row.attempts + 1} attempts: ${outcome.reason}`
        : outcome.reason
      if (canAdvance(current.status, 'failed')) {
        await status.transition(trx, current, { status: 'failed', statusAt: done, reason, errorCode: outcome.code }, done)
      }
      await deleteOutbox(trx, row.id)
      log.warn({ messageId: current.id, code: outcome.code }, 'send failed')
    })
  }

  /**
   * Through the status service, so listeners see it: a failover step's expiry starts here too (the
   * provider may have the message). A report that already arrived during the send wins.
   */
  private async markUnknown (trx: Executor, message: Message, reason: string, now: string): Promise<void> {
    if (!canAdvance(message.status, 'unknown')) return
    await this.deps.status.transition(trx, message, { status: 'unknown', statusAt: now, reason, errorCode: null }, now)
    const settleAt = new Date(Date.parse(now) + this.deps.config.outbox.ambiguousGraceMs).toISOString()
    await insertOutbox(trx, { kind: 'settle_unknown', messageId: message.id, runAt: settleAt }, now)
  }

  /** No report arrived for an ambiguous send: record it as failed, and say why it was not retried. */
  private async handleSettleUnknown (row: OutboxRow): Promise<void> {
    const { db, clock, status } = this.deps
    await db.transaction().execute(async (trx) => {
      const message = row.message_id === null ? undefined : await findMessage(trx, row.message_id)
      if (message !== undefined && message.status === 'unknown') {
        const now = clock.now().toISOString()
        const minutes = Math.round(this.deps.config.outbox.ambiguousGraceMs / 60_000)
        await status.transition(trx, message, {
          status: 'failed',
          statusAt: now,
          reason: `No confirmation from the provider within ${minutes} min of an unanswered send. Not retried automatically, to avoid sending it twice; send it again if it matters.`,
          errorCode: 'OUTCOME_UNKNOWN'
        }, now)
      }
      await deleteOutbox(trx, row.id)
    })
  }
}

async function runWithConcurrency<T> (items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]
      await fn(item)
      // Database work resolves in microtasks, which never let the event loop read a socket: give
      // waiting webhooks a turn between items, so a burst of sends does not hold up their answers.
      await new Promise((resolve) => setImmediate(resolve))
    }
  })
  await Promise.all(workers)
}
