import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { Db, Executor } from '../db/database.js'
import { groupCommitter } from '../db/group-commit.js'
import type { Message, MessageStatus } from '../db/schema.js'
import type { StatusReport } from './channel.js'
import {
  findMessage, findMessageByProviderMessageId, insertMessageEvent, updateMessageBilling, updateMessageStatus,
  type StatusUpdate
} from './message-repository.js'
import { deleteOutboxFor } from './outbox-repository.js'
import { canAdvance, fromProviderStatus } from './status.js'

/**
 * Called inside the transaction that moved a message to a new status, so that whatever it
 * queues (the next failover step, a status callback) commits together with the status.
 */
export type StatusListener = (trx: Executor, message: Message, status: MessageStatus, now: string) => Promise<void>

export type ReportResult =
  | { matched: false }
  | { matched: true, messageId: string, applied: boolean, status: MessageStatus }

export class StatusService {
  private readonly listeners: StatusListener[] = []

  constructor (private readonly deps: { db: Db, clock: Clock, log: FastifyBaseLogger }) {}

  addListener (fn: StatusListener): void {
    this.listeners.push(fn)
  }

  /**
   * Applies a provider report. Late, duplicate and out-of-order reports are recorded but never move
   * a status backwards. `alsoInUnit` runs first in the same unit of work (the webhook signature's jti).
   */
  async applyReport (report: StatusReport, opts: { alsoInUnit?: (trx: Executor) => Promise<void> } = {}): Promise<ReportResult> {
    const now = this.deps.clock.now().toISOString()
    // Reports arrive in bursts (a broadcast, the simulator): they share commits (db/group-commit.ts).
    return await groupCommitter(this.deps.db).run(async (trx) => {
      await opts.alsoInUnit?.(trx)
      let message = report.reference !== null ? await findMessage(trx, report.reference) : undefined
      if (message !== undefined && message.direction !== 'outbound') message = undefined
      if (message === undefined && report.providerMessageId !== null) {
        message = await findMessageByProviderMessageId(trx, report.providerMessageId)
      }
      if (message === undefined) return { matched: false as const }

      await insertMessageEvent(trx, {
        messageId: message.id,
        status: report.rawStatus,
        occurredAt: report.statusAt,
        receivedAt: now,
        source: report.provider,
        raw: report.raw
      })
      const next = fromProviderStatus(report.rawStatus)
      const billing = { priceAmount: report.priceAmount, priceCurrency: report.priceCurrency, segments: report.segments }
      if (next === null || !canAdvance(message.status, next)) {
        await updateMessageBilling(trx, message.id, billing, now)
        return { matched: true as const, messageId: message.id, applied: false, status: message.status }
      }
      await this.transition(trx, message, {
        status: next,
        statusAt: report.statusAt,
        reason: report.reason,
        errorCode: report.errorCode,
        ...billing,
        provider: message.provider ?? report.provider,
        providerMessageId: message.provider_message_id ?? report.providerMessageId
      }, now)
      return { matched: true as const, messageId: message.id, applied: true, status: next }
    })
  }

  /** Moves a message forward (the caller checked canAdvance) and tells the listeners, in `trx`. */
  async transition (trx: Executor, message: Message, update: StatusUpdate, now: string): Promise<void> {
    await updateMessageStatus(trx, message.id, update, now)
    if (message.status === 'unknown') await deleteOutboxFor(trx, 'settle_unknown', { messageId: message.id })
    const updated: Message = { ...message, status: update.status, status_at: update.statusAt }
    for (const listener of this.listeners) await listener(trx, updated, update.status, now)
  }
}
