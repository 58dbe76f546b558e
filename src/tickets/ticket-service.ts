import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import { isUniqueViolation, type Db, type Executor, type UnitExecutor } from '../db/database.js'
import { groupCommitter } from '../db/group-commit.js'
import { uuidv7 } from '../db/ids.js'
import type { Channel, MessageStatus } from '../db/schema.js'
import { invalid, conflict, notFound } from '../errors.js'
import { listTicketSteps } from '../messaging/dispatch-repository.js'
import type { FailoverService } from '../messaging/failover.js'
import * as messageRepo from '../messaging/message-repository.js'
import { OPTED_OUT_REASON, optOutBlock, preview, type OutboundQueue } from '../messaging/outbound.js'
import { statusLabel } from '../messaging/status.js'
import { plainReason } from '../messaging/status-wording.js'
import { AutoReplies } from './auto-replies.js'
import { contactAddresses, failoverSteps, setAsideAddresses } from './contact-service.js'
import { findConversation, findOrOpenTicket, ticketRef, type Conversation } from './conversations.js'
import { detectKeyword, OPT_IN_CONFIRMATION, OPT_OUT_CONFIRMATION, type Keyword } from './keywords.js'
import { maskPhone } from './phone.js'
import * as repo from './ticket-repository.js'

export interface InboundSms {
  provider: string
  /** The provider's id for this inbound message; the idempotency key for webhook retries. */
  providerMessageId: string | null
  /** E.164 */
  from: string
  to: string | null
  text: string
  channel: Channel
}

interface KeywordAnswer { kind: 'opt_out' | 'opt_in' | 'help', body: string, blockedReason?: string }

export interface InboundResult {
  duplicate: boolean
  ticketId: number
  messageId: string
  newTicket: boolean
}

export const MAX_REPLY_LENGTH = 1600
/** The inbox counts open tickets exactly up to this many. */
export const OPEN_COUNT_CAP = 999

export { ticketRef }

/**
 * Ticket rules and transaction boundaries. Every method that queues outbound work does so in the
 * same transaction as the state change that caused it, then wakes the outbox worker after commit.
 */
export class TicketService {
  private wakeOutbox: () => void = () => {}
  private readonly autoReplies: AutoReplies
  private inboundStored: (channel: Channel) => void = () => {}

  constructor (private readonly deps: {
    db: Db
    clock: Clock
    config: Pick<Config, 'confirmationTemplate' | 'helpText' | 'autoReply' | 'inbox' | 'unconfirmedAfterSeconds' | 'failover'>
    log: FastifyBaseLogger
    outbound: OutboundQueue
    /** Sends with failover across the contact's addresses; without it every send is a single message. */
    failover?: FailoverService
  }) {
    this.autoReplies = new AutoReplies(deps.config)
  }

  onOutboxWork (fn: () => void): void {
    this.wakeOutbox = fn
  }

  /** Told of each new inbound message after its commit; not of provider retries (metrics). */
  onInbound (fn: (channel: Channel) => void): void {
    this.inboundStored = fn
  }

  confirmationText (ticketId: number): string {
    return this.deps.config.confirmationTemplate.replaceAll('{ref}', ticketRef(ticketId))
  }

  /**
   * Stores an inbound SMS on the customer's open ticket (or a new one) and queues what it causes.
   * Returns only after commit, so the webhook may acknowledge. A redelivery of the same provider
   * message id changes nothing and queues nothing. `alsoInUnit` runs first in the same unit of
   * work, so what it writes (the webhook signature's jti) commits with the text or not at all.
   */
  async receiveInbound (sms: InboundSms, opts: { alsoInUnit?: (trx: Executor) => Promise<void> } = {}): Promise<InboundResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        // Inbound webhooks share commits under load (see db/group-commit.ts).
        const result = await groupCommitter(this.deps.db).run(async (trx) => {
          await opts.alsoInUnit?.(trx)
          return await this.ingest(trx, sms)
        })
        // Most texts add to an open ticket and send nothing: only wake the worker for real work.
        if (result.queuedOutbound) this.wakeOutbox()
        if (!result.duplicate) this.inboundStored(sms.channel)
        // Only build the entry (and mask the number) when it will be written.
        if ((this.deps.log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('info') !== false) {
          this.deps.log.info({ ticketId: result.ticketId, messageId: result.messageId, from: maskPhone(sms.from), duplicate: result.duplicate, newTicket: result.newTicket }, 'inbound message')
        }
        return result
      } catch (err) {
        // Two deliveries of one provider message racing on a multi-writer database: the loser hits
        // the unique index on the provider id, and the whole unit runs again and finds the winner's
        // row. (Contacts and tickets never raise on a race: see conversations.ts.)
        if (!isUniqueViolation(err) || attempt >= 3) throw err
      }
    }
  }

  /**
   * How ingest reads who wrote and their open ticket. A property so that a test can replay a read
   * that a concurrent writer has since overtaken: the interleaving Postgres allows under READ
   * COMMITTED, and SQLite's single writer cannot produce.
   */
  lookUpSender: (trx: Executor, number: string) => Promise<Conversation | undefined> = findConversation

  private async ingest (trx: UnitExecutor, sms: InboundSms): Promise<InboundResult & { queuedOutbound: boolean }> {
    const now = this.deps.clock.now().toISOString()
    if (sms.providerMessageId !== null) {
      const existing = await messageRepo.findMessageByProviderId(trx, sms.provider, sms.providerMessageId)
      if (existing !== undefined) return { duplicate: true, ticketId: existing.ticket_id, messageId: existing.id, newTicket: false, queuedOutbound: false }
    }
    const first = { preview: preview(sms.text), direction: 'inbound' as const }
    const { contactId, optedOutAt, ticketId, newTicket } = await findOrOpenTicket(trx, sms.from, await this.lookUpSender(trx, sms.from), now, first)

    const keyword = detectKeyword(sms.text)
    const { answer, note } = await this.applyKeyword(trx, keyword, { contactId, optedOutAt }, now)

    const messageId = uuidv7(Date.parse(now))
    await messageRepo.insertMessage(trx, {
      id: messageId,
      ticket_id: ticketId,
      direction: 'inbound',
      kind: 'customer',
      channel: sms.channel,
      from_address: sms.from,
      to_address: sms.to ?? '',
      body: sms.text,
      provider: sms.provider,
      provider_message_id: sms.providerMessageId,
      status: 'received',
      status_at: now,
      status_reason: note,
      error_code: null,
      price_amount: null,
      price_currency: null,
      segments: null,
      attempts: 0,
      agent_id: null,
      dispatch_id: null,
      created_at: now,
      updated_at: now
    })
    await repo.touchTicket(trx, ticketId, now, first)

    const base = { ticketId, channel: sms.channel, to: sms.from }
    let queuedOutbound = false
    if (answer !== null) {
      await this.deps.outbound.queue(trx, { ...base, ...answer }, now)
      queuedOutbound = answer.blockedReason === undefined
    } else if (keyword === null && newTicket) {
      // A keyword gets its answer (or none), never the confirmation of a new ticket.
      const body = this.confirmationText(ticketId)
      const { failover, config } = this.deps
      const addresses = optedOutAt === null && config.failover.confirmationWithFailover && failover !== undefined
        ? await this.failoverOrder(trx, contactId, { channel: sms.channel, address: sms.from })
        : []
      if (failover !== undefined && addresses.length > 1) {
        await failover.start(trx, { ticketId, kind: 'confirmation', steps: failoverSteps(addresses, body, config.failover.defaultExpirySeconds) }, now)
      } else {
        await this.deps.outbound.queue(trx, { ...base, kind: 'confirmation', body, blockedReason: optOutBlock(optedOutAt) }, now)
      }
      queuedOutbound = true
    }
    return { duplicate: false, ticketId, messageId, newTicket, queuedOutbound }
  }

  /**
   * A keyword's consequences (opt-out, opt-in), and its automatic answer unless a limit holds it
   * back; then `note` says, on the stored text, why no answer went out.
   */
  private async applyKeyword (trx: UnitExecutor, keyword: Keyword | null, contact: { contactId: number, optedOutAt: string | null }, now: string): Promise<{ answer: KeywordAnswer | null, note: string | null }> {
    const { contactId, optedOutAt } = contact
    const answered = async (kind: KeywordAnswer['kind'], body: string): Promise<{ answer: KeywordAnswer | null, note: string | null }> => {
      const note = await this.autoReplies.take(trx, contactId, kind, now)
      return note === null ? { answer: { kind, body }, note } : { answer: null, note }
    }
    if (keyword === 'opt_out') {
      if (optedOutAt !== null) return { answer: null, note: 'No automatic answer: this number had already opted out, and an opt-out is confirmed once.' }
      await repo.setContactOptOut(trx, contactId, now, now)
      // Replies still waiting in the outbox (say, backing off after a provider outage) would
      // otherwise go out after the STOP.
      await this.deps.outbound.blockQueued(trx, contactId, now)
      // The one message an opted-out number still gets: the confirmation of the opt-out.
      return await answered('opt_out', OPT_OUT_CONFIRMATION)
    }
    if (keyword === 'opt_in') {
      if (optedOutAt === null) return { answer: null, note: 'No automatic answer: START changed nothing, as this number had not opted out.' }
      await repo.setContactOptOut(trx, contactId, null, now)
      return await answered('opt_in', OPT_IN_CONFIRMATION)
    }
    if (keyword === 'help') {
      // To an opted-out number it is recorded as blocked, like every message to them, and not counted.
      if (optedOutAt !== null) return { answer: { kind: 'help', body: this.deps.config.helpText, blockedReason: OPTED_OUT_REASON }, note: null }
      return await answered('help', this.deps.config.helpText)
    }
    return { answer: null, note: null }
  }

  /** The contact's addresses for a failover send, starting with `first` (where they wrote from). */
  private async failoverOrder (trx: Executor, contactId: number, first: { channel: Channel, address: string }) {
    const all = await contactAddresses(trx, contactId)
    const head = all.filter((a) => a.channel === first.channel && a.address === first.address)
    const rest = all.filter((a) => !(a.channel === first.channel && a.address === first.address))
    return [...(head.length > 0 ? head : [{ id: null, channel: first.channel, address: first.address, primary: false }]), ...rest]
  }

  /**
   * An agent's reply: validated, queued in one transaction with the ticket's activity update. With
   * `failover`, and when the contact has more than one address, it becomes a failover workflow over
   * them (their phone by SMS first) with the configured expiry per step.
   */
  async reply (ticketId: number, body: string, agentId: number | null, opts: { failover?: boolean } = {}): Promise<{ messageId: string, status: MessageStatus, dispatchId?: string }> {
    const text = body.replace(/\r\n/g, '\n').trim()
    if (text === '') throw invalid('The reply is empty. Write a message before sending.', [{ field: 'body', message: 'must not be empty' }])
    if (text.length > MAX_REPLY_LENGTH) throw invalid(`The reply is ${text.length} characters long; the limit is ${MAX_REPLY_LENGTH} (about 10 SMS).`, [{ field: 'body', message: `at most ${MAX_REPLY_LENGTH} characters` }])
    const result = await this.deps.db.transaction().execute(async (trx) => {
      const ticket = await repo.findTicket(trx, ticketId)
      if (ticket === undefined) throw notFound(`Ticket ${ticketRef(ticketId)}`)
      if (ticket.status === 'closed') throw conflict(`Ticket ${ticketRef(ticketId)} is closed; a reply cannot be sent on a closed ticket.`)
      const now = this.deps.clock.now().toISOString()
      const { failover, config } = this.deps
      if (opts.failover === true && failover !== undefined && ticket.opted_out_at === null) {
        const addresses = await contactAddresses(trx, ticket.contact_id)
        if (addresses.length > 1) {
          const started = await failover.start(trx, { ticketId, kind: 'reply', agentId, steps: failoverSteps(addresses, text, config.failover.defaultExpirySeconds) }, now)
          return { messageId: started.messageId, status: 'queued' as const, dispatchId: started.dispatchId }
        }
      }
      return await this.deps.outbound.queue(trx, {
        ticketId,
        kind: 'reply',
        channel: 'sms',
        to: ticket.phone,
        body: text,
        agentId,
        blockedReason: optOutBlock(ticket.opted_out_at)
      }, now)
    })
    this.wakeOutbox()
    return result
  }

  async close (ticketId: number, agentId: number | null): Promise<void> {
    const ticket = await repo.findTicket(this.deps.db, ticketId)
    if (ticket === undefined) throw notFound(`Ticket ${ticketRef(ticketId)}`)
    await repo.closeTicket(this.deps.db, ticketId, agentId, this.deps.clock.now().toISOString())
  }

  async listOpen (cursor: string | null) {
    const before = parseCursor(cursor)
    const limit = this.deps.config.inbox.pageSize
    const [rows, total] = await Promise.all([
      repo.listOpenTickets(this.deps.db, limit + 1, before),
      repo.countOpenTickets(this.deps.db, OPEN_COUNT_CAP)
    ])
    const page = rows.slice(0, limit)
    const last = page[page.length - 1]
    return {
      tickets: page.map((t) => ({ ...t, ref: ticketRef(t.id) })),
      total: total > OPEN_COUNT_CAP ? `${OPEN_COUNT_CAP}+` : String(total),
      nextCursor: rows.length > limit && last !== undefined ? `${last.last_message_at}_${last.id}` : null
    }
  }

  async getTicket (id: number) {
    const ticket = await repo.findTicket(this.deps.db, id)
    if (ticket === undefined) throw notFound(`Ticket ${ticketRef(id)}`)
    const [messages, steps, addresses, setAside] = await Promise.all([
      messageRepo.listTicketMessages(this.deps.db, id),
      listTicketSteps(this.deps.db, id),
      contactAddresses(this.deps.db, ticket.contact_id),
      setAsideAddresses(this.deps.db, ticket.contact_id)
    ])
    const stepOf = new Map(steps.map((s) => [s.message_id, s]))
    const unconfirmedBefore = this.deps.clock.now().getTime() - this.deps.config.unconfirmedAfterSeconds * 1000
    return {
      ticket: { ...ticket, ref: ticketRef(ticket.id) },
      addresses,
      setAside,
      unconfirmedAfterMinutes: Math.max(1, Math.round(this.deps.config.unconfirmedAfterSeconds / 60)),
      messages: messages.map((m) => ({
        ...m,
        statusLabel: statusLabel(m.status),
        reasonText: plainReason(m),
        recipient: m.direction === 'outbound' && (m.channel !== 'sms' || m.to_address !== ticket.phone) ? `${m.channel === 'whatsapp' ? 'WhatsApp' : 'SMS'} ${m.to_address}` : null,
        failover: stepView(stepOf.get(m.id)),
        unconfirmed: m.direction === 'outbound' && (m.status === 'sent' || m.status === 'buffered') && Date.parse(m.status_at) < unconfirmedBefore
      }))
    }
  }

  async conversationWith (address: string, limit = 50) {
    const rows = await messageRepo.listMessagesForAddress(this.deps.db, address, limit)
    return rows.reverse().map((m) => ({ ...m, statusLabel: statusLabel(m.status) }))
  }
}

const STEP_WORDS: Record<string, string> = {
  waiting: 'waiting',
  active: 'waiting for delivery',
  met: 'delivered in time; no further step',
  failed: 'failed; handed over to the next address',
  expired: 'not delivered in time; handed over to the next address'
}

function stepView (s: Awaited<ReturnType<typeof listTicketSteps>>[number] | undefined) {
  if (s === undefined) return null
  const count = Number(s.step_count)
  const last = s.position === count - 1
  let words = STEP_WORDS[s.status] ?? s.status
  if (last && (s.status === 'failed' || s.status === 'expired')) words = 'last address failed too'
  if (s.status === 'active' && s.condition_status === 'read') words = 'waiting until read'
  if (s.status === 'met' && s.condition_status === 'read') words = 'read in time; no further step'
  if (s.status === 'met' && s.condition_status === null) words = 'delivered'
  return { step: s.position + 1, of: count, words, deadlineAt: s.status === 'active' ? s.deadline_at : null, dispatchStatus: s.dispatch_status }
}

function parseCursor (cursor: string | null): repo.OpenTicketCursor | null {
  if (cursor === null || cursor === '') return null
  const m = /^(\d{4}-\d{2}-\d{2}T[\d:.]+Z)_(\d+)$/.exec(cursor)
  if (m === null) throw invalid('The page link is malformed; go back to the first page of the inbox.')
  return { at: m[1], id: Number(m[2]) }
}
