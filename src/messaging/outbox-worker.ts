import { listMessageMedia } from '../media/media-repository.js'
import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import type { Db, TxExecutor, UnitExecutor } from '../db/database.js'
import { groupCommitter } from '../db/group-commit.js'
import type { Message, OutboxKind, OutboxRow } from '../db/schema.js'
import { backoffMs } from './backoff.js'
import type { ChannelAdapter, HsmTemplate, SendOutcome } from './channel.js'
import { findMessage, markSending, noteWaiting, recordProviderMessageId, transitionMessage } from './message-repository.js'
import { OPTED_OUT_REASON } from './outbound.js'
import { claimDue, deleteOutbox, insertOutbox, postponeOutbox, rescheduleOutbox } from './outbox-repository.js'
import type { QuietHours } from './quiet-hours.js'
import type { TicketPort } from './ports.js'
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
    tickets: TicketPort
    clock: Clock
    config: Pick<Config, 'outbox' | 'publicUrl' | 'messagebird'>
    log: FastifyBaseLogger
    /** Holds messages marked for it (messages.quiet_hours) while the recipient's quiet hours last. */
    quietHours?: QuietHours
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
      const rows = await this.claim()
      if (rows.length === 0) return total
      await this.process(rows)
      total += rows.length
      if (rows.length < BATCH) return total
    }
  }

  /**
   * A drain's two steps, claim() then process(). Apart, they let a test commit something (a STOP)
   * between the moment the worker leased a row and the moment it handles it.
   */
  async claim (): Promise<OutboxRow[]> {
    const now = this.deps.clock.now()
    this.lastBeat = now.getTime()
    const lease = new Date(now.getTime() + this.leaseMs()).toISOString()
    return await claimDue(this.deps.db, now.toISOString(), lease, BATCH)
  }

  async process (rows: OutboxRow[]): Promise<void> {
    await runWithConcurrency(rows, CONCURRENCY, async (row) => {
      await this.handle(row)
      this.beat()
    })
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
      const retryAt = this.retryAt(row.attempts + 1)
      await rescheduleOutbox(this.deps.db, row.id, retryAt, String((err as Error)?.message ?? err).slice(0, 500))
    }
  }

  private retryAt (attempt: number): string {
    const { backoffBaseMs, backoffMaxMs } = this.deps.config.outbox
    return new Date(this.deps.clock.now().getTime() + backoffMs(attempt, { baseMs: backoffBaseMs, maxMs: backoffMaxMs })).toISOString()
  }

  private reportUrl (channel: string): string | null {
    const base = this.deps.config.publicUrl
    if (base === null) return null
    // MMS API status reports arrive like SMS ones: a GET with id, reference and status.
    return channel === 'sms' || channel === 'mms' ? `${base}/webhooks/messagebird/status` : `${base}/webhooks/messagebird/conversations`
  }

  private async handleSend (row: OutboxRow): Promise<void> {
    const { db, clock, channel } = this.deps
    // Concurrent sends share commits (db/group-commit.ts); each still waits for its own commit, so
    // `sending` is durable before the request leaves.
    const commit = groupCommitter(db)
    const now = clock.now().toISOString()
    const message = await commit.run(async (unit) => await this.claimSend(unit, row, now))
    if (message === null) return
    const media = message.channel === 'mms' ? (await listMessageMedia(db, message.id)).map((m) => m.url) : []
    const outcome = await channel.send({
      messageId: message.id,
      channel: message.channel,
      to: message.to_address,
      body: message.body,
      from: message.from_address,
      template: message.template === null ? null : JSON.parse(message.template) as HsmTemplate,
      ...(media.length > 0 ? { mediaUrls: media } : {}),
      reportUrl: this.reportUrl(message.channel)
    })
    const done = clock.now().toISOString()
    await commit.run(async (unit) => await this.recordOutcome(unit, row, message, outcome, done))
  }

  /**
   * Decides, in one transaction, whether the row's message goes to the provider, and returns it
   * marked `sending` if so. The message must still be `queued` and its customer must not have
   * opted out; `sending` is a guarded UPDATE, and only a row it changed is sent. A STOP that
   * committed first has blocked the message (or is seen here); one that commits later finds it
   * `sending`, already on its way. The outbox row stays until the outcome is recorded, so a crash
   * during the send is noticed.
   */
  private async claimSend (unit: UnitExecutor, row: OutboxRow, now: string): Promise<Message | null> {
    const message = row.message_id === null ? undefined : await findMessage(unit, row.message_id)
    if (message?.status === 'queued') {
      const sending = await this.claimQueued(unit, message, now)
      if (sending !== null && 'holdUntil' in sending) {
        await postponeOutbox(unit, row.id, sending.holdUntil)
        return null
      }
      if (sending !== null) return sending
    } else if (message?.status === 'sending') {
      // We marked it `sending` and then lost track (crash or lapsed lease): the provider may have it.
      await this.markUnknown(unit, message, 'The service stopped while sending; waiting for a delivery report before deciding', now)
      this.deps.log.warn({ messageId: message.id }, 'send interrupted earlier; outcome unknown, not resending')
    }
    await deleteOutbox(unit, row.id)
    return null
  }

  private async claimQueued (unit: UnitExecutor, message: Message, now: string): Promise<Message | { holdUntil: string } | null> {
    const { channel, status, tickets } = this.deps
    if (!channel.supports(message.channel)) {
      await status.transition(unit, message, { status: 'failed', statusAt: now, reason: `The ${message.channel} channel is not available with ${channel.provider}`, errorCode: 'CHANNEL_UNSUPPORTED' }, now)
      return null
    }
    // Consent is read in the transaction that marks the message `sending`. The confirmation of a
    // STOP is the one message an opted-out number still gets.
    if (message.kind !== 'opt_out' && await tickets.optedOutAt(unit, message.ticket_id) !== null) {
      await status.block(unit, message, OPTED_OUT_REASON, now)
      return null
    }
    const holdUntil = await this.holdUntil(unit, message, now)
    if (holdUntil !== null) return { holdUntil }
    return await markSending(unit, message.id, channel.provider, now) ?? null
  }

  /**
   * Whether a waiting message must wait longer: a scheduled reply whose time moved later while this
   * row was leased (an edit), or a message quiet hours hold while they last for its recipient.
   * Judged here, at the moment of sending, so a restart, an edit or a change of QUIET_HOURS is
   * always taken into account. A held message says why on itself (its status stays `queued`).
   */
  private async holdUntil (unit: UnitExecutor, message: Message, now: string): Promise<string | null> {
    if (message.send_at !== null && message.send_at > now) return message.send_at
    const quiet = this.deps.quietHours
    if (message.quiet_hours !== 'hold' || quiet === undefined) return null
    const release = quiet.releaseAt(new Date(now), message.to_address)
    if (release === null) return null
    const zone = quiet.zoneOf(message.to_address)
    await noteWaiting(unit, message.id, `Held for quiet hours (${quiet.describe()} ${zone.fromNumber ? 'their time' : zone.zone}): sends at ${quiet.localTime(release, message.to_address, new Date(now))} ${zone.fromNumber ? 'their time' : zone.zone}.`, now)
    return release.toISOString()
  }

  /** Records the provider's answer for a message this worker marked `sending`. */
  private async recordOutcome (unit: UnitExecutor, row: OutboxRow, message: Message, outcome: SendOutcome, done: string): Promise<void> {
    const { channel, status, log, config } = this.deps
    if (outcome.ok) {
      const sent = await status.transition(unit, message, { status: 'sent', statusAt: done, reason: null, errorCode: null, provider: channel.provider, providerMessageId: outcome.providerMessageId }, done)
      // A report that arrived while the request was in flight has moved it on already.
      if (sent === null) await recordProviderMessageId(unit, message.id, outcome.providerMessageId, done)
      await deleteOutbox(unit, row.id)
      return
    }
    if (outcome.failure === 'transient' && row.attempts + 1 < config.outbox.maxAttempts) {
      // The model's one move back (status.ts): the provider did not take it, so it waits again.
      // Listeners are not told; for them the message never stopped waiting.
      const requeued = await transitionMessage(unit, message.id, 'queued', { statusAt: done, reason: `Retrying: ${outcome.reason}`, errorCode: outcome.code }, done)
      if (requeued === undefined) {
        await deleteOutbox(unit, row.id)
        return
      }
      const retryAt = this.retryAt(row.attempts + 1)
      await rescheduleOutbox(unit, row.id, retryAt, outcome.reason)
      log.warn({ messageId: message.id, attempt: row.attempts + 1, retryAt }, 'send failed transiently; retrying')
      return
    }
    if (outcome.failure === 'ambiguous') {
      await this.markUnknown(unit, message, outcome.reason, done)
      await deleteOutbox(unit, row.id)
      return
    }
    const reason = outcome.failure === 'transient'
      ? `Gave up after ${row.attempts + 1} attempts: ${outcome.reason}`
      : outcome.reason
    await status.transition(unit, message, { status: 'failed', statusAt: done, reason, errorCode: outcome.code }, done)
    await deleteOutbox(unit, row.id)
    log.warn({ messageId: message.id, code: outcome.code }, 'send failed')
  }

  /**
   * Through the status service, so listeners see it: a failover step's expiry starts here too (the
   * provider may have the message). A report that already arrived during the send wins.
   */
  private async markUnknown (trx: TxExecutor, message: Message, reason: string, now: string): Promise<void> {
    const moved = await this.deps.status.transition(trx, message, { status: 'unknown', statusAt: now, reason, errorCode: null }, now)
    if (moved === null) return
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
