import { insertMedia, listMediaOfMessages, listMessageMedia, listTicketMedia, type MediaItem } from '../media/media-repository.js'
import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import { isUniqueViolation, type Db, type Executor, type UnitExecutor } from '../db/database.js'
import { groupCommitter } from '../db/group-commit.js'
import { uuidv7 } from '../db/ids.js'
import type { Channel, MessageStatus, TicketStatus } from '../db/schema.js'
import { invalid, conflict, notFound, UserError } from '../errors.js'
import type { EventBus, TicketChange } from '../events/bus.js'
import { addressLabel, isMessengerAddress, primaryChannel } from '../messaging/address.js'
import { CHANNEL_LABELS, textChannelFor } from '../messaging/channel.js'
import { listTicketSteps } from '../messaging/dispatch-repository.js'
import type { FailoverService } from '../messaging/failover.js'
import * as messageRepo from '../messaging/message-repository.js'
import { OPTED_OUT_REASON, optOutBlock, preview, type OutboundQueue } from '../messaging/outbound.js'
import { isFailure, statusLabel } from '../messaging/status.js'
import { plainReason } from '../messaging/status-wording.js'
import { MAX_PARTS_WITHOUT_CONFIRM, MAX_SMS_TEXT_LENGTH, normaliseLineBreaks, smsParts } from '../messaging/sms-parts.js'
import * as inbox from './inbox-repository.js'
import { AutoReplies } from './auto-replies.js'
import { Csat } from './csat.js'
import { contactAddresses, failoverSteps, setAsideAddresses } from './contact-service.js'
import { findConversation, findOrOpenTicket, ticketRef, type Conversation } from './conversations.js'
import { parseTicketRef } from './ticket-refs.js'
import { replyTarget } from './reply-target.js'
import { mmsTarget, replyImage } from './reply-image.js'
import { detectKeyword, OPT_IN_CONFIRMATION, OPT_OUT_CONFIRMATION, type Keyword } from './keywords.js'
import { customerMessage } from './inbound-message.js'
import { InvalidPhoneNumber, maskPhone, toE164, typedNumberToE164 } from './phone.js'
import * as profiles from './profile-repository.js'
import { assertTextFits, assertWindowOpen, chooseTarget, parseTarget } from './whatsapp-window.js'
import * as repo from './ticket-repository.js'
import { scheduleView, sendLaterView } from './schedule-view.js'
import type { QuietHours } from '../messaging/quiet-hours.js'

/** The open ticket a text's unit read was merged into another before the text was stored: run the unit again. */
class TicketMergedMeanwhile extends Error {
  constructor (ticketId: number) {
    super(`ticket ${ticketId} was merged while a text for it was being stored`)
    this.name = 'TicketMergedMeanwhile'
  }
}

export interface InboundSms {
  provider: string
  /** The provider's id for this inbound message; the idempotency key for webhook retries. */
  providerMessageId: string | null
  /** E.164, or `messenger:<page-scoped id>` (messaging/address.ts) */
  from: string
  to: string | null
  text: string
  channel: Channel
  /** The sender's name as the platform tells it (Messenger); kept on a contact that has none yet. */
  name?: string | null
  /** Photos, videos, voice notes, files that came with it (stored beside the text line). */
  media?: readonly MediaItem[]
}

interface KeywordAnswer { kind: 'opt_out' | 'opt_in' | 'help', body: string, blockedReason?: string }

export interface InboundResult {
  duplicate: boolean
  ticketId: number
  messageId: string
  newTicket: boolean
}

export const MAX_REPLY_LENGTH = MAX_SMS_TEXT_LENGTH
export const MAX_NOTE_LENGTH = 4000

/** 409 on a reply: a colleague replied after what the agent had on screen. */
export class ReplyCollision extends UserError {
  constructor (readonly colleague: string, readonly secondsAgo: number, readonly body: string) {
    super(409, `${colleague} replied ${secondsAgo} s ago: “${preview(body)}”`, 'REPLY_COLLISION')
  }
}

/** 422 on a reply of more SMS parts than an agent may send without confirming. */
export class PartsToConfirm extends UserError {
  constructor (readonly parts: number, readonly encoding: string) {
    super(422, `This reply is ${parts} SMS parts (${encoding}), billed as ${parts} messages. Confirm to send it anyway, or shorten it.`, 'CONFIRM_PARTS')
  }
}

export { ticketRef }

/** 409 on a change to a merged ticket (a page opened before the merge): the work goes on in the other one. */
const mergedAway = (ticketId: number, into: number): UserError =>
  conflict(`Ticket #${ticketRef(ticketId)} was merged into #${ticketRef(into)}; nothing was changed here. Continue on #${ticketRef(into)}.`)

/**
 * Ticket rules and transaction boundaries. Every method that queues outbound work does so in the
 * same transaction as the state change that caused it, then wakes the outbox worker after commit.
 */
export class TicketService {
  private wakeOutbox: () => void = () => {}
  private readonly autoReplies: AutoReplies
  private readonly csat: Csat
  private autoCloseTimer: NodeJS.Timeout | null = null
  private inboundStored: (channel: Channel) => void = () => {}

  constructor (private readonly deps: {
    db: Db
    clock: Clock
    config: Pick<Config, 'confirmationTemplate' | 'helpText' | 'autoReply' | 'inbox' | 'unconfirmedAfterSeconds' | 'failover' | 'teamInbox' | 'csat'>
    log: FastifyBaseLogger
    outbound: OutboundQueue
    events: EventBus
    /** Sends with failover across the contact's addresses; without it every send is a single message. */
    failover?: FailoverService
    /** Send later: what a scheduled reply's bubble and the composer say about times and quiet hours. */
    quietHours?: QuietHours
    /** Whether the channel adapter sends this channel (a reply with an image needs `mms`). */
    supports?: (channel: Channel) => boolean
  }) {
    this.autoReplies = new AutoReplies(deps.config)
    this.csat = new Csat({ config: deps.config, outbound: deps.outbound, autoReplies: this.autoReplies })
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
          const stored = await this.ingest(trx, sms)
          if (!stored.duplicate && sms.media !== undefined) await insertMedia(trx, stored.messageId, sms.media, this.deps.clock.now().toISOString())
          // Announced with the commit itself (a NOTIFY in the unit on PostgreSQL, delivered in
          // commit order), not by a round trip of its own after it: under load those queued
          // one behind another and held up every webhook's answer.
          if (!stored.duplicate) await this.deps.events.publishInTransaction(trx, { ticketId: stored.ticketId, change: stored.change })
          return stored
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
        // Likewise when the ticket it read was merged into another before the text was stored
        // (invariant: a text is never left on a ticket no view shows).
        if (!(isUniqueViolation(err) || err instanceof TicketMergedMeanwhile) || attempt >= 3) throw err
      }
    }
  }

  /**
   * How ingest reads who wrote and their open ticket. A property so that a test can replay a read
   * that a concurrent writer has since overtaken: the interleaving Postgres allows under READ
   * COMMITTED, and SQLite's single writer cannot produce.
   */
  lookUpSender: (trx: Executor, number: string) => Promise<Conversation | undefined> = findConversation

  private async ingest (trx: UnitExecutor, sms: InboundSms): Promise<InboundResult & { queuedOutbound: boolean, change: TicketChange }> {
    const now = this.deps.clock.now().toISOString()
    if (sms.providerMessageId !== null) {
      const existing = await messageRepo.findMessageByProviderId(trx, sms.provider, sms.providerMessageId)
      if (existing !== undefined) return { duplicate: true, ticketId: existing.ticket_id, messageId: existing.id, newTicket: false, queuedOutbound: false, change: 'message' }
    }
    const { reopenWindowHours, autoAssign, autoAssignMaxOpen, refReopenDays } = this.deps.config.teamInbox
    const reopenSince = reopenWindowHours > 0 ? new Date(Date.parse(now) - reopenWindowHours * 3600_000).toISOString() : null
    const messageId = uuidv7(Date.parse(now))
    const seen = await this.lookUpSender(trx, sms.from)
    const rated = await this.csat.rate(trx, sms, seen, messageId, now)
    if (rated !== null) return { duplicate: false, ticketId: rated.ticketId, messageId, newTicket: false, queuedOutbound: rated.queuedOutbound, change: 'message' }
    // `#42 still broken`: a reference counts only when ticket 42 is the sender's own; any other
    // `#…` is text like the rest, and the text goes where it would have gone anyway.
    const ref = parseTicketRef(sms.text)
    const refTicket = ref === null || seen === undefined ? undefined : await repo.findOwnTicket(trx, ref.ticketId, seen.contactId)
    const body = ref !== null && refTicket !== undefined ? ref.rest : sms.text
    // Their own closed ticket, closed within REF_REOPEN_DAYS, and no other ticket open: reopened.
    const reopenRef = refTicket?.status === 'closed' && seen?.openTicketId === null && refReopenDays > 0 && refTicket.closed_at !== null &&
      Date.parse(refTicket.closed_at) >= Date.parse(now) - refReopenDays * 86_400_000
      ? { ticketId: refTicket.id, closedSince: new Date(Date.parse(now) - refReopenDays * 86_400_000).toISOString(), messageId }
      : null
    const first = { preview: preview(body === '' ? sms.text : body), direction: 'inbound' as const, sender: 'customer' as const }
    const opened = await findOrOpenTicket(trx, sms.from, seen, now, first, { reopenSince, reopenRef })
    const { contactId, optedOutAt, ticketId, newTicket } = opened
    if (sms.name != null && sms.name !== '') await repo.nameContactIfUnnamed(trx, contactId, sms.name, now)
    let change: TicketChange = newTicket ? 'created' : opened.reopened ? 'status' : 'message'
    if (!newTicket && opened.status === 'pending') {
      // The customer answered while the ticket waited on them: it is work again.
      await this.moveTicket(trx, ticketId, { status: 'pending', assigneeId: opened.assigneeId }, { status: 'open', assigneeId: opened.assigneeId }, null, now)
      change = 'status'
    }
    if (newTicket && autoAssign === 'round-robin') {
      const agentId = await inbox.nextAgentForAutoAssign(trx, autoAssignMaxOpen)
      if (agentId !== undefined) {
        await this.moveTicket(trx, ticketId, { status: 'open', assigneeId: null }, { status: 'open', assigneeId: agentId }, null, now)
        await inbox.markAutoAssigned(trx, agentId, now)
      }
    }

    const keyword = detectKeyword(sms.text)
    const { answer, note } = await this.applyKeyword(trx, keyword, { contactId, optedOutAt, ticketId }, now)

    await messageRepo.insertMessage(trx, customerMessage(sms, {
      id: messageId,
      ticketId,
      body,
      statusReason: note,
      now,
      ...(refTicket === undefined ? {} : { ref: { ticketId: refTicket.id, originalBody: sms.text } })
    }))
    if (!await repo.touchForInbound(trx, ticketId, now, first.preview)) throw new TicketMergedMeanwhile(ticketId)

    const base = { ticketId, channel: textChannelFor(sms.channel), to: sms.from }
    let queuedOutbound = false
    if (answer !== null) {
      await this.deps.outbound.queue(trx, { ...base, ...answer }, now)
      queuedOutbound = answer.blockedReason === undefined
    } else if (keyword === null && newTicket) {
      // A keyword gets its answer (or none), never the confirmation of a new ticket.
      const body = this.confirmationText(ticketId)
      const { failover, config } = this.deps
      const addresses = optedOutAt === null && config.failover.confirmationWithFailover && failover !== undefined
        ? await this.failoverOrder(trx, contactId, { channel: textChannelFor(sms.channel), address: sms.from })
        : []
      if (failover !== undefined && addresses.length > 1) {
        await failover.start(trx, { ticketId, kind: 'confirmation', steps: failoverSteps(addresses, body, config.failover.defaultExpirySeconds) }, now)
      } else {
        await this.deps.outbound.queue(trx, { ...base, kind: 'confirmation', body, blockedReason: optOutBlock(optedOutAt) }, now)
      }
      queuedOutbound = true
    }
    return { duplicate: false, ticketId, messageId, newTicket, queuedOutbound, change }
  }

  /**
   * Moves a ticket between statuses or assignees with a guarded UPDATE, keeps the view counters
   * exact and records the change in the timeline, all in `trx`. False when the ticket was no longer
   * in `from` (a concurrent change won; nothing was written).
   */
  private async moveTicket (trx: Executor, ticketId: number, from: inbox.TicketState, to: inbox.TicketState, by: number | null, now: string): Promise<boolean> {
    if (!await inbox.updateTicketState(trx, ticketId, from, to, by, now)) return false
    await inbox.adjustCounts(trx, from, to)
    if (from.status !== to.status) {
      // A close remembers the assignee, so that its undo restores them.
      await inbox.insertTicketEvent(trx, { ticketId, kind: 'status', agentId: by, fromStatus: from.status, toStatus: to.status, targetAgentId: to.status === 'closed' ? from.assigneeId : null }, now)
    }
    if (from.assigneeId !== to.assigneeId) {
      await inbox.insertTicketEvent(trx, { ticketId, kind: 'assigned', agentId: by, targetAgentId: to.assigneeId }, now)
    }
    if (to.status === 'closed' && from.status !== 'closed') await this.csat.afterClose(trx, ticketId, from.assigneeId, now)
    return true
  }

  /**
   * A keyword's consequences (opt-out, opt-in), and its automatic answer unless a limit holds it
   * back; then `note` says, on the stored text, why no answer went out.
   */
  private async applyKeyword (trx: UnitExecutor, keyword: Keyword | null, contact: { contactId: number, optedOutAt: string | null, ticketId: number }, now: string): Promise<{ answer: KeywordAnswer | null, note: string | null }> {
    const { contactId, optedOutAt, ticketId } = contact
    const answered = async (kind: KeywordAnswer['kind'], body: string): Promise<{ answer: KeywordAnswer | null, note: string | null }> => {
      const note = await this.autoReplies.take(trx, contactId, kind, now)
      return note === null ? { answer: { kind, body }, note } : { answer: null, note }
    }
    if (keyword === 'opt_out') {
      if (optedOutAt !== null) return { answer: null, note: 'No automatic answer: this number had already opted out, and an opt-out is confirmed once.' }
      await repo.setContactOptOut(trx, contactId, now, now)
      await inbox.insertTicketEvent(trx, { ticketId, kind: 'opt_out', agentId: null }, now)
      // Replies still waiting in the outbox (say, backing off after a provider outage) would
      // otherwise go out after the STOP.
      await this.deps.outbound.blockQueued(trx, contactId, now)
      // The one message an opted-out number still gets: the confirmation of the opt-out.
      return await answered('opt_out', OPT_OUT_CONFIRMATION)
    }
    if (keyword === 'opt_in') {
      if (optedOutAt === null) return { answer: null, note: 'No automatic answer: START changed nothing, as this number had not opted out.' }
      await repo.setContactOptOut(trx, contactId, null, now)
      await inbox.insertTicketEvent(trx, { ticketId, kind: 'opt_in', agentId: null }, now)
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
   *
   * `seen` is the newest timeline item the agent had on screen: a colleague's reply written after
   * it refuses the send (409) unless `confirmCollision`. More than MAX_PARTS_WITHOUT_CONFIRM SMS
   * parts refuse it (422) unless `confirmParts`. Text over the limit is refused, never cut.
   * `mediaUrl` (the composer's image) makes it an MMS to the same phone number, text optional,
   * its media row stored in the same transaction (reply-image.ts says what is refused).
   */
  async reply (ticketId: number, body: string, agentId: number | null, opts: { failover?: boolean, seen?: string, confirmCollision?: boolean, confirmParts?: boolean, to?: string, asSms?: boolean, mediaUrl?: string } = {}): Promise<{ messageId: string, status: MessageStatus, dispatchId?: string }> {
    const text = normaliseLineBreaks(body).trim()
    // "Send as SMS instead": the customer's own number by SMS, whatever "Send to" says.
    const to = opts.asSms === true ? undefined : opts.to
    const image = replyImage(opts.mediaUrl, opts)
    if (text === '' && image === null) throw invalid('The reply is empty. Write a message before sending.', [{ field: 'body', message: 'must not be empty' }])
    // `to`: the composer's "Send to" (whatsapp-window.ts), checked against the contact's addresses below.
    const picked = to === undefined || to === '' ? null : parseTarget(to)
    const fits = (channel: Channel): void => {
      if (channel !== 'sms') return assertTextFits({ channel, address: '' }, text)
      if (text.length > MAX_REPLY_LENGTH) throw invalid(`The reply is ${text.length} characters long; the limit is ${MAX_REPLY_LENGTH} (about 10 SMS). Shorten it; nothing was sent.`, [{ field: 'body', message: `at most ${MAX_REPLY_LENGTH} characters` }])
      const parts = smsParts(text)
      if (parts.parts > MAX_PARTS_WITHOUT_CONFIRM && opts.confirmParts !== true) throw new PartsToConfirm(parts.parts, parts.encoding)
    }
    // The channel is known before the transaction when the agent chose it (or SMS, or failover,
    // which starts on their number); otherwise it is where the customer last wrote from, below.
    const channelKnown = picked !== null || opts.asSms === true || opts.failover === true
    if (channelKnown) fits(image !== null ? 'mms' : picked?.channel ?? 'sms')
    const result = await this.deps.db.transaction().execute(async (trx) => {
      const ticket = await repo.findTicket(trx, ticketId)
      if (ticket === undefined) throw notFound(`Ticket ${ticketRef(ticketId)}`)
      if (ticket.merged_into !== null) throw mergedAway(ticketId, ticket.merged_into)
      if (ticket.status === 'closed') throw conflict(`Ticket ${ticketRef(ticketId)} is closed; a reply cannot be sent on a closed ticket. Reopen it first.`)
      const now = this.deps.clock.now().toISOString()
      if (opts.seen !== undefined && opts.seen !== '' && opts.confirmCollision !== true && agentId !== null) {
        const seenAt = await inbox.timelineItemTime(trx, ticketId, opts.seen)
        if (seenAt !== undefined) {
          const newer = await inbox.latestReplyByOthers(trx, ticketId, agentId, seenAt)
          if (newer !== undefined) {
            const secondsAgo = Math.max(0, Math.round((Date.parse(now) - Date.parse(newer.created_at)) / 1000))
            throw new ReplyCollision(newer.agent_name ?? 'A colleague', secondsAgo, newer.body)
          }
        }
      }
      const { failover, config } = this.deps
      if (opts.failover === true && failover !== undefined && ticket.opted_out_at === null) {
        const addresses = await contactAddresses(trx, ticket.contact_id)
        if (addresses.length > 1) {
          const started = await failover.start(trx, { ticketId, kind: 'reply', agentId, steps: failoverSteps(addresses, text, config.failover.defaultExpirySeconds) }, now)
          return { messageId: started.messageId, status: 'queued' as const, dispatchId: started.dispatchId }
        }
      }
      // "Send as SMS instead" goes to the customer's number; a "Send to" choice is checked against
      // their addresses; otherwise the reply follows the channel the customer last wrote from.
      if (opts.asSms === true && isMessengerAddress(ticket.phone)) throw invalid('This customer has no phone number, only Messenger: there is nothing to send an SMS to.', [{ field: 'send_as_sms', message: 'the customer has no phone number' }])
      const chosen = opts.asSms === true
        ? { channel: 'sms' as const, address: ticket.phone }
        : to === undefined || to === '' ? await replyTarget(trx, ticket) : await chooseTarget(trx, ticket.contact_id, to)
      const target = image === null ? chosen : mmsTarget(chosen, this.deps.supports?.('mms') === true)
      if (!channelKnown) fits(target.channel)
      if (ticket.opted_out_at === null) await assertWindowOpen(trx, ticket.contact_id, target, new Date(now))
      const queued = await this.deps.outbound.queue(trx, {
        ticketId,
        kind: 'reply',
        channel: target.channel,
        to: target.address,
        body: text,
        agentId,
        blockedReason: optOutBlock(ticket.opted_out_at)
      }, now)
      if (image !== null) await insertMedia(trx, queued.messageId, [{ kind: 'image', url: image, caption: null, contentType: null }], now)
      return queued
    })
    await this.deps.events.publish({ ticketId, change: 'message' })
    this.wakeOutbox()
    return result
  }

  /**
   * Sends a failed outbound message again, from its bubble: a new message linked to it
   * (`retry_of`), to the address it went to or to another of the contact's addresses (`to` is
   * `sms:+31…` or `whatsapp:+31…`), queued through the outbox in one transaction like a reply, and
   * recorded in the timeline. Idempotent: a message has at most one retry (the unique index on
   * `retry_of` decides, even for two requests at the same moment); asking again returns the
   * existing retry with `created: false` and sends nothing. Refused with 404 for a message that is
   * not on this ticket, and 422 for an inbound message, a message that has not failed, an address
   * that is not the customer's, or a customer who texted STOP (the outbox checks consent again
   * when it sends).
   */
  async retry (ticketId: number, messageId: string, agentId: number, to?: string): Promise<{ messageId: string, created: boolean }> {
    const result = await this.deps.db.transaction().execute(async (trx) => {
      const ticket = await repo.findTicket(trx, ticketId)
      if (ticket === undefined) throw notFound(`Ticket ${ticketRef(ticketId)}`)
      const original = await messageRepo.findMessage(trx, messageId)
      if (original === undefined || original.ticket_id !== ticketId) throw notFound(`That message on ticket #${ticketRef(ticketId)}`)
      if (original.direction !== 'outbound') throw invalid('Only a message to the customer can be retried; this one is the customer\'s own text.', [{ field: 'message', message: 'must be outbound' }])
      if (!isFailure(original.status)) throw invalid(`Only a failed message can be retried; this one is ${statusLabel(original.status).toLowerCase()}. Nothing was sent.`, [{ field: 'message', message: 'must have failed' }])
      if (ticket.status === 'closed') throw conflict(`Ticket ${ticketRef(ticketId)} is closed; reopen it to retry a message.`)
      const target = to === undefined || to === '' ? { channel: original.channel, address: original.to_address } : parseAddressChoice(to)
      const addresses = await contactAddresses(trx, ticket.contact_id)
      // An MMS goes to the customer's phone number, which their addresses list under SMS.
      const listedAs = (channel: Channel): Channel => channel === 'mms' ? 'sms' : channel
      if (target === null || !addresses.some((a) => a.channel === listedAs(target.channel) && a.address === target.address)) {
        throw invalid(`${target === null ? `"${(to ?? '').slice(0, 40)}"` : target.address} is not one of this customer's addresses; choose one from the list. Nothing was sent.`, [{ field: 'to', message: 'must be one of the contact\'s addresses' }])
      }
      if (ticket.opted_out_at !== null) throw invalid('This customer texted STOP: nothing is sent to them until they text START. Nothing was sent.', [{ field: 'to', message: 'the customer opted out' }])
      const now = this.deps.clock.now().toISOString()
      // A retry on the same channel goes out from the sender the original chose (a dispatch step's
      // `from`), unless that sender is why it failed (it is no longer configured).
      const from = target.channel === original.channel && original.error_code !== 'SENDER_NOT_CONFIGURED' ? original.from_address : null
      // A retried MMS sends its image again; another channel would silently drop it.
      const media = original.channel === 'mms' ? await listMessageMedia(trx, original.id) : []
      if (media.length > 0 && target.channel !== 'mms') {
        throw invalid(`This MMS carries an image, which ${CHANNEL_LABELS[target.channel]} cannot send: retry it as MMS to ${original.to_address}. Nothing was sent.`, [{ field: 'to', message: 'must be the MMS number' }])
      }
      const queued = await this.deps.outbound.queueRetry(trx, { ticketId, kind: original.kind, channel: target.channel, to: target.address, body: original.body, from, agentId }, original.id, now)
      if (queued.created && media.length > 0) await insertMedia(trx, queued.messageId, media.map((m) => ({ kind: m.kind, url: m.url, caption: m.caption, contentType: m.content_type })), now)
      if (queued.created) await inbox.insertTicketEvent(trx, { ticketId, kind: 'retry', agentId, messageId: queued.messageId }, now)
      return { messageId: queued.messageId, created: queued.created }
    })
    if (result.created) {
      await this.deps.events.publish({ ticketId, change: 'message' })
      this.wakeOutbox()
    }
    return result
  }

  /**
   * An agent starts a conversation: to a number they typed (normalised like every number an agent
   * types) or to an existing contact. The message joins the customer's ticket that is not closed,
   * or opens a new one (pending: waiting on the customer, and assigned to the agent), through the
   * same find-or-open as inbound texts, and is queued through the outbox like a reply, in one
   * transaction. No confirmation is sent. An opted-out number is refused (422) and nothing is
   * stored. `token` is the form's one-time token: spent in the same transaction, so a second
   * submit of the same form sends nothing and answers with the first one's ticket.
   */
  async startConversation (agentId: number, input: { number?: string, contactId?: number, body: string, token: string, confirmParts?: boolean }): Promise<{ ticketId: number, duplicate: boolean, newTicket: boolean }> {
    const token = input.token.trim()
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(token)) throw invalid('This form has lost its one-time token; reload the page and send again. Nothing was sent.', [{ field: 'token', message: 'missing or malformed' }])
    const text = normaliseLineBreaks(input.body).trim()
    if (text === '') throw invalid('The message is empty. Write a message before sending.', [{ field: 'body', message: 'must not be empty' }])
    if (text.length > MAX_REPLY_LENGTH) throw invalid(`The message is ${text.length} characters long; the limit is ${MAX_REPLY_LENGTH} (about 10 SMS). Shorten it; nothing was sent.`, [{ field: 'body', message: `at most ${MAX_REPLY_LENGTH} characters` }])
    let number: string | null = null
    if (input.contactId === undefined) {
      const typed = (input.number ?? '').trim()
      if (typed === '') throw invalid('Enter the customer\'s phone number, or pick one of your customers.', [{ field: 'number', message: 'must not be empty' }])
      try {
        // As the addresses form does: agents write numbers down with the international prefix 00
        // too; and with DEFAULT_COUNTRY set, a national number (0612345678) reads as that country's.
        const national = /^[\s().-]*0[\s().-]*[1-9]/.test(typed) ? typedNumberToE164(typed, this.deps.config.inbox.defaultCountry) : null
        number = toE164(national ?? typed.replace(/^00/, '+'))
      } catch (err) {
        if (err instanceof InvalidPhoneNumber) throw invalid(err.message, [{ field: 'number', message: 'must be a phone number in international format' }])
        throw err
      }
    }
    const parts = smsParts(text)
    if (parts.parts > MAX_PARTS_WITHOUT_CONFIRM && input.confirmParts !== true) throw new PartsToConfirm(parts.parts, parts.encoding)
    const result = await this.deps.db.transaction().execute(async (trx) => {
      const now = this.deps.clock.now().toISOString()
      if (!await profiles.spendConversationToken(trx, token, agentId, now)) {
        const spent = await profiles.findConversationToken(trx, token)
        if (spent?.ticket_id == null || spent.agent_id !== agentId) throw conflict('This form was already sent. Open the inbox to find the conversation.')
        return { ticketId: spent.ticket_id, duplicate: true, newTicket: false, queued: false }
      }
      await profiles.pruneConversationTokens(trx, new Date(Date.parse(now) - 24 * 3600_000).toISOString())
      if (number === null) {
        const contact = await repo.findContactById(trx, input.contactId as number)
        if (contact === undefined) throw invalid(`There is no customer ${input.contactId ?? ''} to message; pick one from the list or type a number.`, [{ field: 'contact', message: 'no such customer' }])
        number = contact.phone
      }
      const to = number
      const refuseOptedOut = (optedOutAt: string | null): void => {
        if (optedOutAt !== null) {
          throw invalid(`This number replied STOP on ${optedOutAt.slice(0, 16).replace('T', ' ')} UTC; it can't be messaged until it texts START. Nothing was sent.`, [{ field: 'number', message: 'opted out' }])
        }
      }
      // Consent first: nothing is created for a number that has opted out.
      const seen = await findConversation(trx, to)
      refuseOptedOut(seen?.optedOutAt ?? null)
      const first = { preview: preview(text), direction: 'outbound' as const, sender: 'agent' as const, agentId }
      const opened = await findOrOpenTicket(trx, to, seen, now, first)
      refuseOptedOut(opened.optedOutAt)
      if (opened.newTicket) {
        // Whoever starts a conversation gets the answer to it.
        await this.moveTicket(trx, opened.ticketId, { status: opened.status, assigneeId: null }, { status: opened.status, assigneeId: agentId }, agentId, now)
      }
      await this.deps.outbound.queue(trx, { ticketId: opened.ticketId, kind: 'reply', channel: primaryChannel(to), to, body: text, agentId, blockedReason: null }, now)
      await profiles.recordConversationTicket(trx, token, opened.ticketId)
      return { ticketId: opened.ticketId, duplicate: false, newTicket: opened.newTicket, queued: true }
    })
    if (result.queued) {
      await this.deps.events.publish({ ticketId: result.ticketId, change: result.newTicket ? 'created' : 'message' })
      this.wakeOutbox()
    }
    return { ticketId: result.ticketId, duplicate: result.duplicate, newTicket: result.newTicket }
  }

  /**
   * Moves a ticket to `status` (open, pending, closed) for an agent. Reopening a closed ticket
   * fails with 409 while the customer has another ticket that is not closed (one per contact).
   * With `undo`, a reopen within CLOSE_UNDO_SECONDS of the close restores the status and assignee
   * the ticket had before it; after that it is a plain reopen.
   */
  async setStatus (ticketId: number, status: string, agentId: number | null, opts: { undo?: boolean } = {}): Promise<{ changed: boolean }> {
    if (!isStatus(status)) throw invalid(`"${status.slice(0, 40)}" is not a ticket status; choose open, pending or closed.`, [{ field: 'status', message: 'must be open, pending or closed' }])
    const changed = await this.deps.db.transaction().execute(async (trx) => {
      const now = this.deps.clock.now().toISOString()
      for (let round = 0; round < 3; round++) {
        const t = await inbox.findTicketState(trx, ticketId)
        if (t === undefined) throw notFound(`Ticket ${ticketRef(ticketId)}`)
        if (t.merged_into !== null) throw mergedAway(ticketId, t.merged_into)
        if (t.status === status) return false
        const from = { status: t.status, assigneeId: t.assignee_id }
        let to: inbox.TicketState = { status, assigneeId: t.assignee_id }
        if (t.status === 'closed') {
          const other = await repo.findOpenTicketForContact(trx, t.contact_id)
          if (other !== undefined) throw conflict(`This customer has a newer ticket #${ticketRef(other.id)} that is not closed; a customer has one open ticket at a time. Continue there.`)
          if (opts.undo === true && status === 'open') {
            const close = await inbox.latestStatusEvent(trx, ticketId)
            const undoUntil = close === undefined ? 0 : Date.parse(close.created_at) + this.deps.config.teamInbox.closeUndoSeconds * 1000
            if (close?.to_status === 'closed' && close.from_status !== null && close.from_status !== 'closed' && Date.parse(now) <= undoUntil) {
              to = { status: close.from_status, assigneeId: close.target_agent_id }
            }
          }
        }
        if (await this.moveTicket(trx, ticketId, from, to, agentId, now)) return true
      }
      throw conflict(`Ticket ${ticketRef(ticketId)} kept changing while its status was being set; reload and try again.`)
    })
    if (changed) await this.deps.events.publish({ ticketId, change: 'status' })
    // A close may have queued the satisfaction survey.
    if (changed && status === 'closed') this.wakeOutbox()
    return { changed }
  }

  /**
   * PENDING_AUTO_CLOSE_HOURS: closes the tickets that have waited on the customer that long, oldest
   * first, each in its own transaction with a guarded update (a customer's answer that got there
   * first wins). The state is the tickets' `status_at`, so a restart loses nothing: the next run
   * closes what is due. Returns how many it closed.
   */
  async autoClosePending (limit = 500): Promise<number> {
    const hours = this.deps.config.teamInbox.pendingAutoCloseHours
    if (hours === 0) return 0
    const nowMs = this.deps.clock.now().getTime()
    const cutoff = new Date(nowMs - hours * 3600_000).toISOString()
    const due = await inbox.listPendingSince(this.deps.db, cutoff, limit)
    let closed = 0
    for (const t of due) {
      const from = { status: 'pending' as const, assigneeId: t.assignee_id }
      const moved = await this.deps.db.transaction().execute(async (trx) =>
        await this.moveTicket(trx, t.id, from, { status: 'closed', assigneeId: t.assignee_id }, null, this.deps.clock.now().toISOString()))
      if (moved) {
        closed++
        await this.deps.events.publish({ ticketId: t.id, change: 'status' })
        this.wakeOutbox()
      }
    }
    return closed
  }

  /** Runs autoClosePending every `everyMs` (server.ts starts it with the outbox worker). */
  startAutoClose (everyMs = 60_000): void {
    if (this.deps.config.teamInbox.pendingAutoCloseHours === 0 || this.autoCloseTimer !== null) return
    this.autoCloseTimer = setInterval(() => {
      this.autoClosePending().catch((err: unknown) => { this.deps.log.error({ err }, 'auto-close of pending tickets failed') })
    }, everyMs)
    this.autoCloseTimer.unref()
  }

  stopAutoClose (): void {
    if (this.autoCloseTimer !== null) clearInterval(this.autoCloseTimer)
    this.autoCloseTimer = null
  }

  /** Closes a ticket (kept for callers that only close). */
  async close (ticketId: number, agentId: number | null): Promise<void> {
    await this.setStatus(ticketId, 'closed', agentId)
  }

  /** Assigns a ticket to `me`, `none` or an active agent's id. */
  async assign (ticketId: number, assignee: string, agentId: number): Promise<{ changed: boolean }> {
    let target: number | null
    if (assignee === 'me') target = agentId
    else if (assignee === 'none' || assignee === '') target = null
    else if (/^\d{1,9}$/.test(assignee)) target = Number(assignee)
    else throw invalid(`"${assignee.slice(0, 40)}" is not someone to assign to; choose me, nobody or an agent.`, [{ field: 'assignee', message: 'must be me, none or an agent id' }])
    const changed = await this.deps.db.transaction().execute(async (trx) => {
      if (target !== null && await inbox.findActiveAgent(trx, target) === undefined) {
        throw invalid(`There is no active agent with id ${target} to assign to.`, [{ field: 'assignee', message: 'no such active agent' }])
      }
      const now = this.deps.clock.now().toISOString()
      for (let round = 0; round < 3; round++) {
        const t = await inbox.findTicketState(trx, ticketId)
        if (t === undefined) throw notFound(`Ticket ${ticketRef(ticketId)}`)
        if (t.merged_into !== null) throw mergedAway(ticketId, t.merged_into)
        if (t.assignee_id === target) return false
        if (await this.moveTicket(trx, ticketId, { status: t.status, assigneeId: t.assignee_id }, { status: t.status, assigneeId: target }, agentId, now)) return true
      }
      throw conflict(`Ticket ${ticketRef(ticketId)} kept changing while it was being assigned; reload and try again.`)
    })
    if (changed) await this.deps.events.publish({ ticketId, change: 'assigned' })
    return { changed }
  }

  /** A private note: stored in `notes` only, never a message, never queued. */
  async addNote (ticketId: number, agentId: number, body: string): Promise<{ noteId: number }> {
    const text = normaliseLineBreaks(body).trim()
    if (text === '') throw invalid('The note is empty. Write something before saving it.', [{ field: 'body', message: 'must not be empty' }])
    if (text.length > MAX_NOTE_LENGTH) throw invalid(`The note is ${text.length} characters long; the limit is ${MAX_NOTE_LENGTH}. Shorten it; nothing was saved.`, [{ field: 'body', message: `at most ${MAX_NOTE_LENGTH} characters` }])
    const noteId = await this.deps.db.transaction().execute(async (trx) => {
      const t = await inbox.findTicketState(trx, ticketId)
      if (t === undefined) throw notFound(`Ticket ${ticketRef(ticketId)}`)
      if (t.merged_into !== null) throw mergedAway(ticketId, t.merged_into)
      return await inbox.insertNote(trx, ticketId, agentId, text, this.deps.clock.now().toISOString())
    })
    await this.deps.events.publish({ ticketId, change: 'note' })
    return { noteId }
  }

  /** The agent opened the ticket: it is read for them until the customer's next message. */
  async markRead (ticketId: number, agentId: number): Promise<void> {
    await inbox.markRead(this.deps.db, agentId, ticketId, this.deps.clock.now().toISOString())
    await this.deps.events.publish({ ticketId, change: 'read' }, { audience: agentId })
  }

  async markUnread (ticketId: number, agentId: number): Promise<void> {
    if (await inbox.findTicketState(this.deps.db, ticketId) === undefined) throw notFound(`Ticket ${ticketRef(ticketId)}`)
    await inbox.markUnread(this.deps.db, agentId, ticketId)
    await this.deps.events.publish({ ticketId, change: 'read' }, { audience: agentId })
  }

  async setAvailability (agentId: number, available: string): Promise<void> {
    if (available !== '1' && available !== '0') throw invalid('Availability is 1 (available for new tickets) or 0 (not available).', [{ field: 'available', message: 'must be 1 or 0' }])
    await inbox.setAvailability(this.deps.db, agentId, available === '1', this.deps.clock.now().toISOString())
  }

  async isAvailable (agentId: number): Promise<boolean> {
    return await inbox.isAvailable(this.deps.db, agentId)
  }

  async activeAgents () {
    return await inbox.listActiveAgents(this.deps.db)
  }

  /** The view an agent lands on: Mine when they have open work, else Unassigned when any, else Open. */
  async defaultView (agentId: number): Promise<inbox.View> {
    const c = await inbox.readCounts(this.deps.db, agentId)
    return c.mine > 0 ? 'mine' : c.unassigned > 0 ? 'unassigned' : 'open'
  }

  async counts (agentId: number): Promise<Record<inbox.View | 'unread', number>> {
    const [c, unread] = await Promise.all([inbox.readCounts(this.deps.db, agentId), inbox.countUnread(this.deps.db, agentId)])
    return { ...c, unread }
  }

  /** One page of a view for an agent, with the list's columns worded. */
  async listView (view: string, agentId: number, cursor: string | null) {
    if (!isView(view)) throw invalid(`There is no inbox view "${view.slice(0, 40)}"; the views are ${inbox.VIEWS.join(', ')}.`)
    const before = parseCursor(cursor)
    const limit = this.deps.config.inbox.pageSize
    const rows = await inbox.listView(this.deps.db, view, agentId, limit + 1, before)
    const nowMs = this.deps.clock.now().getTime()
    const page = rows.slice(0, limit)
    const last = page[page.length - 1]
    const lastAt = last === undefined ? null : view === 'closed' ? last.closed_at : last.last_message_at
    return {
      view,
      tickets: page.map((t) => ({
        ...t,
        ref: ticketRef(t.id),
        customer: t.contact_name ?? addressLabel(t.phone),
        senderLabel: senderLabel(t.last_sender, t.last_sender_agent_id, t.sender_name, agentId),
        unread: t.last_customer_message_at !== null && (t.read_at === null || t.read_at < t.last_customer_message_at),
        waitingSeconds: t.awaiting_reply_since === null ? null : Math.max(0, (nowMs - Date.parse(t.awaiting_reply_since)) / 1000)
      })),
      nextCursor: rows.length > limit && last !== undefined && lastAt !== null ? `${lastAt}_${last.id}` : null
    }
  }

  async getTicket (id: number) {
    const ticket = await repo.findTicket(this.deps.db, id)
    if (ticket === undefined) throw notFound(`Ticket ${ticketRef(id)}`)
    const [messages, steps, addresses, setAside, notes, events, earlier, csat, replyTo, media] = await Promise.all([
      messageRepo.listTicketMessages(this.deps.db, id),
      listTicketSteps(this.deps.db, id),
      contactAddresses(this.deps.db, ticket.contact_id),
      setAsideAddresses(this.deps.db, ticket.contact_id),
      inbox.listNotes(this.deps.db, id),
      inbox.listTicketEvents(this.deps.db, id),
      inbox.listOtherTickets(this.deps.db, ticket.contact_id, id),
      this.csat.forTicket(this.deps.db, id),
      replyTarget(this.deps.db, ticket),
      listTicketMedia(this.deps.db, id)
    ])
    const mediaOf = new Map<string, typeof media>()
    for (const x of media) mediaOf.set(x.message_id, [...(mediaOf.get(x.message_id) ?? []), x])
    const stepOf = new Map(steps.map((s) => [s.message_id, s]))
    const nowMs = this.deps.clock.now().getTime()
    const unconfirmedBefore = nowMs - this.deps.config.unconfirmedAfterSeconds * 1000
    const byId = new Map(messages.map((m) => [m.id, m]))
    const retryOfOriginal = new Map(messages.filter((m) => m.retry_of !== null).map((m) => [m.retry_of, m]))
    const mayRetry = ticket.status !== 'closed' && ticket.opted_out_at === null
    const link = (m: { id: string, created_at: string } | undefined) => m === undefined ? null : { id: m.id, created_at: m.created_at }
    const messageItems = messages.map((m) => ({
      ...m,
      retriedAs: link(retryOfOriginal.get(m.id)),
      retryOf: m.retry_of === null ? null : link(byId.get(m.retry_of)),
      // The Retry form: a failed message not retried yet, on a ticket a message may go out from.
      // An MMS is retried as MMS only (retry() refuses a channel that would drop its image).
      retry: mayRetry && m.direction === 'outbound' && isFailure(m.status) && !retryOfOriginal.has(m.id)
        ? m.channel === 'mms'
          ? { options: [{ value: `mms:${m.to_address}`, label: `MMS ${m.to_address}`, selected: true }], several: false }
          : { options: addresses.map((a) => ({ value: `${a.channel}:${a.address}`, label: `${CHANNEL_LABELS[a.channel]} ${addressLabel(a.address).replace(/^Messenger /, '')}`, selected: a.channel === m.channel && a.address === m.to_address })), several: addresses.length > 1 }
        : null,
      // Served by GET /media/:id: the agent's browser never loads the provider's URL.
      media: (mediaOf.get(m.id) ?? []).map((x) => ({ id: x.id, kind: x.kind, caption: x.caption, isImage: x.kind === 'image' })),
      refTag: m.ref_ticket_id === null ? null : ticketRef(m.ref_ticket_id),
      refersElsewhere: m.ref_ticket_id !== null && m.ref_ticket_id !== id,
      statusLabel: statusLabel(m.status),
      reasonText: plainReason(m),
      recipient: m.direction === 'outbound' && m.to_address !== replyTo.address ? `${CHANNEL_LABELS[m.channel]} ${addressLabel(m.to_address).replace(/^Messenger /, '')}` : null,
      channelLabel: CHANNEL_LABELS[m.channel],
      failover: stepView(stepOf.get(m.id)),
      scheduled: this.deps.quietHours === undefined ? null : scheduleView(m, this.deps.quietHours, new Date(nowMs)),
      unconfirmed: m.direction === 'outbound' && (m.status === 'sent' || m.status === 'buffered') && Date.parse(m.status_at) < unconfirmedBefore
    }))
    // One chronological thread; at the same instant messages come first, then notes, then events.
    const timeline: TimelineItem[] = [
      ...messageItems.map((m, i) => ({ itemId: m.id, kind: m.direction, at: m.created_at, order: i, message: m })),
      ...notes.map((n, i) => ({ itemId: `note-${n.id}`, kind: 'note' as const, at: n.created_at, order: messages.length + i, note: n })),
      ...events.map((e, i) => ({ itemId: `event-${e.id}`, kind: 'event' as const, at: e.created_at, order: messages.length + notes.length + i, event: { ...e, text: eventText(e, this.deps.config.teamInbox.pendingAutoCloseHours) } }))
    ].sort((a, b) => a.at < b.at ? -1 : a.at > b.at ? 1 : a.order - b.order)
    const lastClose = ticket.status === 'closed' ? events.filter((e) => e.kind === 'status' && e.to_status === 'closed').at(-1) : undefined
    const undoUntil = lastClose === undefined ? null : Date.parse(lastClose.created_at) + this.deps.config.teamInbox.closeUndoSeconds * 1000
    return {
      ticket: { ...ticket, ref: ticketRef(ticket.id), customer: ticket.contact_name ?? addressLabel(ticket.phone), address: addressLabel(ticket.phone) },
      replyTo,
      addresses,
      setAside,
      unconfirmedAfterMinutes: Math.max(1, Math.round(this.deps.config.unconfirmedAfterSeconds / 60)),
      messages: messageItems,
      timeline,
      newestItemId: timeline.at(-1)?.itemId ?? '',
      earlierTickets: earlier.map((t) => ({ ...t, ref: ticketRef(t.id) })),
      sendLater: this.deps.quietHours === undefined ? null : sendLaterView(ticket.phone, this.deps.quietHours),
      csat,
      canUndoClose: undoUntil !== null && lastClose?.from_status !== 'closed' && nowMs <= undoUntil
    }
  }

  async conversationWith (address: string, limit = 50) {
    const rows = await messageRepo.listMessagesForAddress(this.deps.db, address, limit)
    const media = await listMediaOfMessages(this.deps.db, rows.filter((m) => m.channel === 'mms').map((m) => m.id))
    return rows.reverse().map((m) => ({
      ...m,
      statusLabel: statusLabel(m.status),
      media: media.filter((x) => x.message_id === m.id).map((x) => ({ id: x.id, kind: x.kind, isImage: x.kind === 'image' }))
    }))
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

/** A choice of the retry form's address list: `sms:+31612345678`, `whatsapp:+31612345678` or `messenger:messenger:<id>`. */
function parseAddressChoice (raw: string): { channel: Channel, address: string } | null {
  const m = /^(sms|whatsapp|mms):(\+\d{6,15})$/.exec(raw) ?? /^(messenger):(messenger:\d{5,32})$/.exec(raw)
  return m === null ? null : { channel: m[1] as Channel, address: m[2] }
}

function parseCursor (cursor: string | null): inbox.ListCursor | null {
  if (cursor === null || cursor === '') return null
  const m = /^(\d{4}-\d{2}-\d{2}T[\d:.]+Z)_(\d+)$/.exec(cursor)
  if (m === null) throw invalid('The page link is malformed; go back to the first page of the inbox.')
  return { at: m[1], id: Number(m[2]) }
}

function isStatus (s: string): s is TicketStatus {
  return s === 'open' || s === 'pending' || s === 'closed'
}

function isView (v: string): v is inbox.View {
  return (inbox.VIEWS as readonly string[]).includes(v)
}

/** "You:" for the agent's own reply, the colleague's first name for theirs, "API:", "Automatic:"; null for the customer. */
export function senderLabel (sender: string | null, senderAgentId: number | null, senderName: string | null, viewerId: number): string | null {
  if (sender === 'agent') return senderAgentId === viewerId ? 'You' : (senderName ?? 'Agent').split(' ')[0]
  if (sender === 'api') return 'API'
  if (sender === 'automatic') return 'Automatic'
  return null
}

export type TimelineItem =
  | { itemId: string, kind: 'inbound' | 'outbound', at: string, order: number, message: Record<string, unknown> }
  | { itemId: string, kind: 'note', at: string, order: number, note: Record<string, unknown> }
  | { itemId: string, kind: 'event', at: string, order: number, event: Record<string, unknown> }

type EventRow = Awaited<ReturnType<typeof inbox.listTicketEvents>>[number]

/** How the timeline words a ticket event: "Ada assigned this to Bo", "Ada took this", … */
export function eventText (e: EventRow, autoCloseHours: number): string {
  const actor = e.actor_name ?? null
  if (e.kind === 'assigned') {
    if (actor === null) return e.target_name === null ? 'Unassigned automatically' : `Assigned automatically to ${e.target_name}`
    if (e.target_agent_id === null) return `${actor} unassigned this`
    if (e.target_agent_id === e.agent_id) return `${actor} took this`
    return `${actor} assigned this to ${e.target_name ?? 'another agent'}`
  }
  if (e.kind === 'status') {
    const from = e.from_status
    const to = e.to_status
    if (actor === null) {
      if (from === 'pending' && to === 'open') return 'The customer answered: open again'
      if (from === 'closed' && to === 'open') return e.message_id !== null ? 'The customer\'s text named this ticket: reopened' : 'The customer texted within the reopen window: reopened'
      if (to === 'closed') return `Closed automatically after ${autoCloseHours} h waiting on the customer`
      return `Status changed from ${from ?? '?'} to ${to ?? '?'}`
    }
    if (to === 'closed') return `${actor} closed this`
    if (to === 'pending') return `${actor} set this to pending (waiting on the customer)`
    if (from === 'closed') return `${actor} reopened this`
    return `${actor} set this to open`
  }
  if (e.kind === 'retry') return `${actor ?? 'Someone'} retried a failed message`
  if (e.kind === 'merged_into') return `${actor ?? 'Someone'} merged this ticket into #${ticketRef(e.other_ticket_id ?? 0)}`
  if (e.kind === 'merged_from') return `${actor ?? 'Someone'} merged #${ticketRef(e.other_ticket_id ?? 0)} into this ticket: its messages, notes and timeline are here`
  if (e.kind === 'opt_out') return 'The customer texted STOP: no messages go to them until they text START'
  return 'The customer texted START: messages may go to them again'
}
