import type { Executor, TxExecutor } from '../db/database.js'
import { uuidv7 } from '../db/ids.js'
import type { Channel, MessageKind, MessageStatus, QuietHoursPolicy } from '../db/schema.js'
import type { NewMessage } from '../db/schema.js'
import { findRetryOf, insertMessage, insertRetryMessage } from './message-repository.js'
import { insertOutbox } from './outbox-repository.js'
import type { HsmTemplate } from './channel.js'
import type { LastMessage, TicketPort } from './ports.js'
import type { StatusService } from './status-service.js'

export interface OutboundInput {
  ticketId: number
  kind: MessageKind
  channel: Channel
  to: string
  body: string
  /** The sender chosen for it (messages.from_address); null or absent: the default sender. */
  from?: string | null
  agentId?: number | null
  dispatchId?: string | null
  /** When set, the message is recorded as `blocked` with this reason and nothing is sent. */
  blockedReason?: string | null
  /** "Send later": the outbox row is due at this time instead of now. */
  sendAt?: string | null
  /** Whether quiet hours hold it (schema.ts QuietHoursPolicy); null: sent at once. */
  quietHours?: QuietHoursPolicy | null
  /** WhatsApp: an approved template sent instead of free text (`body` then describes it for people). */
  template?: HsmTemplate | null
}

export const OPTED_OUT_REASON = 'Not sent: the customer opted out by texting STOP. They can opt back in by texting START.'

/** The reason to record instead of sending, when the contact has opted out; null otherwise. */
export function optOutBlock (optedOutAt: string | null | undefined): string | null {
  return optedOutAt != null ? OPTED_OUT_REASON : null
}

export const PREVIEW_LENGTH = 140

/**
 * Who the list names as the sender of an outbound message. The confirmation of a new ticket is
 * counted but never previewed: the customer's text it answers is what an agent scans for.
 */
function previewed (input: OutboundInput): LastMessage | null {
  const base = { preview: preview(input.body), direction: 'outbound' as const }
  switch (input.kind) {
    case 'confirmation': return null
    case 'reply': return { ...base, sender: 'agent', agentId: input.agentId ?? null }
    case 'notification': return { ...base, sender: 'api' }
    default: return { ...base, sender: 'automatic' }
  }
}

export function preview (text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim()
  return oneLine.length > PREVIEW_LENGTH ? oneLine.slice(0, PREVIEW_LENGTH - 1) + '…' : oneLine
}

/**
 * Records an outbound message and, unless it is blocked, the outbox row that will send it, in the
 * caller's transaction (architecture invariant 3): if that transaction commits, the send will
 * happen even if the process dies a moment later; if it rolls back, nothing is sent.
 */
export class OutboundQueue {
  constructor (private readonly tickets: TicketPort, private readonly status: StatusService) {}

  async queue (trx: Executor, input: OutboundInput, now: string): Promise<{ messageId: string, status: MessageStatus }> {
    const row = this.row(input, now)
    await insertMessage(trx, row)
    return await this.queued(trx, input, row, now)
  }

  /**
   * Queues a retry of the failed message `retryOf` exactly like any other message, unless that
   * message already has a retry: then nothing is written or sent, and the existing retry is
   * returned (`created: false`). The unique index on `retry_of` decides, so two concurrent
   * retries of one message (a double click) send once, on either engine.
   */
  async queueRetry (trx: Executor, input: OutboundInput, retryOf: string, now: string): Promise<{ messageId: string, status: MessageStatus, created: boolean }> {
    const row = this.row(input, now)
    if (await insertRetryMessage(trx, { ...row, retry_of: retryOf })) return { ...await this.queued(trx, input, row, now), created: true }
    const existing = await findRetryOf(trx, retryOf)
    if (existing === undefined) throw new Error(`the retry of message ${retryOf} vanished`)
    return { messageId: existing.id, status: row.status as MessageStatus, created: false }
  }

  private async queued (trx: Executor, input: OutboundInput, row: NewMessage, now: string): Promise<{ messageId: string, status: MessageStatus }> {
    if (row.status !== 'blocked') await insertOutbox(trx, { kind: 'send', messageId: row.id, runAt: input.sendAt ?? now }, now)
    await this.tickets.touch(trx, input.ticketId, now, previewed(input))
    return { messageId: row.id, status: row.status }
  }

  private row (input: OutboundInput, now: string): NewMessage {
    const id = uuidv7(Date.parse(now))
    const blocked = input.blockedReason != null
    const status: MessageStatus = blocked ? 'blocked' : 'queued'
    return {
      id,
      ticket_id: input.ticketId,
      direction: 'outbound',
      kind: input.kind,
      channel: input.channel,
      from_address: input.from ?? null,
      to_address: input.to,
      body: input.body,
      provider: null,
      provider_message_id: null,
      status,
      status_at: now,
      status_reason: blocked ? input.blockedReason ?? null : null,
      error_code: blocked ? 'OPTED_OUT' : null,
      price_amount: null,
      price_currency: null,
      segments: null,
      attempts: 0,
      agent_id: input.agentId ?? null,
      dispatch_id: input.dispatchId ?? null,
      send_at: input.sendAt ?? null,
      quiet_hours: input.quietHours ?? null,
      template: input.template == null ? null : JSON.stringify(input.template),
      created_at: now,
      updated_at: now
    }
  }

  /**
   * The opt-out's side of the queue: every message to the contact that is still waiting is
   * blocked and its send removed, in the STOP's transaction, through the same guarded status
   * transition as everything else, so failover steps end too. Returns the blocked message ids.
   */
  async blockQueued (trx: TxExecutor, contactId: number, now: string): Promise<string[]> {
    return await this.status.blockQueued(trx, contactId, OPTED_OUT_REASON, now)
  }
}
