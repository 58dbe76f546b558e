import type { Config } from '../config.js'
import type { Executor, UnitExecutor } from '../db/database.js'
import type { Channel } from '../db/schema.js'
import * as messageRepo from '../messaging/message-repository.js'
import { optOutBlock, type OutboundQueue } from '../messaging/outbound.js'
import { textChannelFor } from '../messaging/channel.js'
import type { AutoReplies } from './auto-replies.js'
import type { Conversation } from './conversations.js'
import { customerMessage } from './inbound-message.js'
import * as repo from './csat-repository.js'
import { findTicket, touchTicket } from './ticket-repository.js'
import { primaryChannel } from '../messaging/address.js'

// GSM-7 on purpose (a plain hyphen, not an en dash): one cheap SMS part everywhere.
export const CSAT_SURVEY_TEXT = 'How did we do? Reply 1-5 (5 = great).'
export const CSAT_THANKS_TEXT = 'Thank you for your rating!'

/** A reply that is a rating: one digit 1 to 5, nothing else but spaces around it. */
const RATING = /^\s*([1-5])\s*$/

/**
 * Satisfaction over plain SMS (CSAT=on). Closing a ticket texts the customer the survey through
 * the outbox, in the close's transaction. A reply that is just a digit 1 to 5 within
 * CSAT_WINDOW_HOURS, from a customer with no open ticket, is that ticket's rating: it is stored
 * on the closed ticket (the text too), opens nothing, and is thanked within the automatic-answer
 * limits. Anything else is an ordinary text.
 */
export class Csat {
  constructor (private readonly deps: { config: Pick<Config, 'csat'>, outbound: OutboundQueue, autoReplies: AutoReplies }) {}

  /**
   * Called in the transaction that closes a ticket. Queues the survey unless CSAT is off, the
   * ticket was asked already (one survey per ticket), the customer never wrote on it (a
   * notification nobody answered), or the customer texted STOP. Says whether it queued one.
   */
  async afterClose (trx: Executor, ticketId: number, agentId: number | null, now: string): Promise<boolean> {
    if (!this.deps.config.csat.enabled) return false
    const ticket = await findTicket(trx, ticketId)
    if (ticket === undefined || ticket.opted_out_at !== null || ticket.last_customer_message_at === null) return false
    if (await repo.hasSurvey(trx, ticketId)) return false
    const { messageId } = await this.deps.outbound.queue(trx, { ticketId, kind: 'csat_survey', channel: primaryChannel(ticket.phone), to: ticket.phone, body: CSAT_SURVEY_TEXT }, now)
    const expiresAt = new Date(Date.parse(now) + this.deps.config.csat.windowHours * 3600_000).toISOString()
    await repo.insertSurvey(trx, { ticketId, contactId: ticket.contact_id, agentId, messageId, sentAt: now, expiresAt })
    return true
  }

  /**
   * An inbound text that may be a rating. Costs nothing unless CSAT is on, the text is one digit
   * and the sender has no open ticket; then one indexed read. Null when it is not a rating (the
   * caller goes on as for any text); otherwise the text is stored on the rated ticket.
   */
  async rate (trx: UnitExecutor, sms: { from: string, to: string | null, text: string, channel: Channel, provider: string, providerMessageId: string | null }, seen: Conversation | undefined, messageId: string, now: string): Promise<{ ticketId: number, queuedOutbound: boolean } | null> {
    if (!this.deps.config.csat.enabled || seen === undefined || seen.openTicketId !== null) return null
    const digit = RATING.exec(sms.text)
    if (digit === null) return null
    const survey = await repo.findWaitingSurvey(trx, seen.contactId, now)
    if (survey === undefined) return null
    const rating = Number(digit[1])
    const ticketId = survey.ticket_id
    if (!await repo.recordRating(trx, ticketId, rating, messageId, now)) return null
    const limited = await this.deps.autoReplies.take(trx, seen.contactId, 'csat', now)
    await messageRepo.insertMessage(trx, customerMessage(sms, {
      id: messageId,
      ticketId,
      body: sms.text.trim(),
      statusReason: `Satisfaction rating: ${rating} of 5.${limited === null ? '' : ` ${limited}`}`,
      now
    }))
    // Counted, but neither previewed nor unread: the ticket stays closed and nobody owes an answer.
    await touchTicket(trx, ticketId, now, null)
    if (limited !== null) return { ticketId, queuedOutbound: false }
    const blockedReason = optOutBlock(seen.optedOutAt)
    await this.deps.outbound.queue(trx, { ticketId, kind: 'csat_thanks', channel: textChannelFor(sms.channel), to: sms.from, body: CSAT_THANKS_TEXT, blockedReason }, now)
    return { ticketId, queuedOutbound: blockedReason === null }
  }

  /** What the ticket page shows: asked when, rated what; null when the ticket was never asked. */
  async forTicket (db: Executor, ticketId: number) {
    const s = await repo.findSurvey(db, ticketId)
    return s === undefined ? null : { sentAt: s.sent_at, expiresAt: s.expires_at, rating: s.rating, ratedAt: s.rated_at }
  }
}
