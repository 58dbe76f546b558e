import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { Db, TxExecutor, UnitExecutor } from '../db/database.js'
import { groupCommitter } from '../db/group-commit.js'
import type { Message, MessageStatus } from '../db/schema.js'
import type { StatusReport } from './channel.js'
import {
  blockQueuedOutbound, findMessage, findOutboundByProviderId, insertMessageEvent, transitionMessage,
  type StatusFields
} from './message-repository.js'
import { deleteOutboxFor } from './outbox-repository.js'
import { fromProviderStatus } from './status.js'

/**
 * Called inside the transaction that moved a message to a new status, so that whatever it
 * queues (the next failover step, a status callback) commits together with the status. Called
 * only when the guarded UPDATE changed the row; `message` is the row as it now is.
 */
export type StatusListener = (trx: TxExecutor, message: Message, status: MessageStatus, now: string) => Promise<void>

export type StatusUpdate = StatusFields & { status: MessageStatus }

export type ReportResult =
  | { matched: false }
  | { matched: true, messageId: string, applied: boolean, status: MessageStatus }

/** Where a block came from, in `message_events.source`. */
const OPT_OUT_SOURCE = 'opt_out'

export class StatusService {
  private readonly listeners: StatusListener[] = []

  constructor (private readonly deps: { db: Db, clock: Clock, log: FastifyBaseLogger }) {}

  addListener (fn: StatusListener): void {
    this.listeners.push(fn)
  }

  /**
   * Applies a provider report. Every matched report is kept in `message_events`; only a report that
   * moves the status forward changes the message, price and parts included. `alsoInUnit` runs
   * first in the same unit of work (the webhook signature's jti).
   */
  async applyReport (report: StatusReport, opts: { alsoInUnit?: (unit: UnitExecutor) => Promise<void> } = {}): Promise<ReportResult> {
    const now = this.deps.clock.now().toISOString()
    // Reports arrive in bursts (a broadcast, the simulator): they share commits (db/group-commit.ts).
    return await groupCommitter(this.deps.db).run(async (unit) => {
      await opts.alsoInUnit?.(unit)
      let message = report.reference !== null ? await findMessage(unit, report.reference) : undefined
      if (message !== undefined && message.direction !== 'outbound') message = undefined
      if (message === undefined && report.providerMessageId !== null) {
        message = await findOutboundByProviderId(unit, report.provider, report.providerMessageId)
      }
      if (message === undefined) return { matched: false as const }

      await insertMessageEvent(unit, {
        messageId: message.id,
        status: report.rawStatus,
        occurredAt: report.statusAt,
        receivedAt: now,
        source: report.provider,
        raw: report.raw
      })
      const next = fromProviderStatus(report.rawStatus)
      const moved = next === null
        ? null
        : await this.transition(unit, message, {
          status: next,
          statusAt: report.statusAt,
          reason: report.reason,
          errorCode: report.errorCode,
          priceAmount: report.priceAmount,
          priceCurrency: report.priceCurrency,
          segments: report.segments,
          provider: report.provider,
          providerMessageId: report.providerMessageId
        }, now)
      if (moved === null) return { matched: true as const, messageId: message.id, applied: false, status: message.status }
      return { matched: true as const, messageId: message.id, applied: true, status: moved.status }
    })
  }

  /**
   * Moves a message forward with one guarded UPDATE (messaging/status.ts) and, only if that changed
   * the row, clears its pending settle check and tells the listeners, all in `trx`. `message` is
   * the row as the caller read it in `trx`. Returns the row as it now is, or null if nothing moved.
   */
  async transition (trx: TxExecutor, message: Pick<Message, 'id' | 'status'>, update: StatusUpdate, now: string): Promise<Message | null> {
    const moved = await transitionMessage(trx, message.id, update.status, update, now)
    if (moved === undefined) return null
    await this.changed(trx, message.status, moved, now)
    return moved
  }

  /** Blocks one message that has not been handed to the provider yet, with the reason, as the opt-out does. */
  async block (trx: TxExecutor, message: Pick<Message, 'id' | 'status'>, reason: string, now: string): Promise<Message | null> {
    const moved = await this.transition(trx, message, { status: 'blocked', statusAt: now, reason, errorCode: 'OPTED_OUT' }, now)
    if (moved !== null) await insertMessageEvent(trx, { messageId: moved.id, status: 'blocked', occurredAt: now, receivedAt: now, source: OPT_OUT_SOURCE, raw: null })
    return moved
  }

  /**
   * The opt-out: blocks every outbound message of the contact that has not been handed to the
   * provider, with one guarded UPDATE, and for each row it changed removes its send and tells the
   * listeners (a failover step ends), in the STOP's transaction. Returns the blocked message ids.
   */
  async blockQueued (trx: TxExecutor, contactId: number, reason: string, now: string): Promise<string[]> {
    const rows = await blockQueuedOutbound(trx, contactId, reason, now)
    for (const row of rows) {
      await deleteOutboxFor(trx, 'send', { messageId: row.id })
      await insertMessageEvent(trx, { messageId: row.id, status: 'blocked', occurredAt: now, receivedAt: now, source: OPT_OUT_SOURCE, raw: null })
      await this.changed(trx, 'queued', row, now)
    }
    return rows.map((r) => r.id)
  }

  private async changed (trx: TxExecutor, previous: MessageStatus, row: Message, now: string): Promise<void> {
    if (previous === 'unknown') await deleteOutboxFor(trx, 'settle_unknown', { messageId: row.id })
    for (const listener of this.listeners) await listener(trx, row, row.status, now)
  }
}
