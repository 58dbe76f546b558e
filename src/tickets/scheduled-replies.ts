import { DateTime, IANAZone } from 'luxon'
import type { Clock } from '../clock.js'
import type { Db, Executor } from '../db/database.js'
import type { Message } from '../db/schema.js'
import { conflict, invalid, notFound, UserError } from '../errors.js'
import { editScheduled, findMessage, insertMessageEvent } from '../messaging/message-repository.js'
import type { OutboundQueue } from '../messaging/outbound.js'
import { deleteOutboxFor, rescheduleSend } from '../messaging/outbox-repository.js'
import type { QuietHours } from '../messaging/quiet-hours.js'
import { MAX_PARTS_WITHOUT_CONFIRM, normaliseLineBreaks, smsParts } from '../messaging/sms-parts.js'
import type { StatusService } from '../messaging/status-service.js'
import { statusLabel } from '../messaging/status.js'
import { findTicket } from './ticket-repository.js'
import { MAX_REPLY_LENGTH, PartsToConfirm, ticketRef } from './ticket-service.js'
import { replyTarget } from './reply-target.js'

/** How far ahead a reply may be scheduled. */
export const MAX_SCHEDULE_DAYS = 365

/** What the agent typed: a wall-clock time (`<input type="datetime-local">`) and the zone it is in. */
export interface ScheduleInput {
  body: string
  /** `2026-12-01T08:00` (seconds allowed). */
  sendAt: string
  /** `their` (the customer's zone, as quiet hours judge it) or an IANA zone (the agent's browser's). */
  zone: string
  confirmParts?: boolean
}

const CANCELLED_CODE = 'CANCELLED'

/**
 * "Send later": an agent's reply queued now, in the outbox, to go out at a chosen time. It is an
 * ordinary outbound message (`queued`, with `send_at`) whose outbox row is due at that time, so it
 * survives restarts, is sent by the same worker, and is blocked by the same opt-out rules at the
 * moment of sending. Quiet hours hold it (messages.quiet_hours = 'hold'). Until the worker claims
 * it, it can be edited (text and time) or cancelled (it becomes `blocked`, "Not sent", with who
 * cancelled it); after that both answer 409.
 */
export class ScheduledReplies {
  constructor (private readonly deps: {
    db: Db
    clock: Clock
    outbound: OutboundQueue
    status: StatusService
    quietHours: QuietHours
    /** After commit: live updates for open pages, and the worker (a due time may have moved). */
    changed: (ticketId: number) => Promise<void>
  }) {}

  async schedule (ticketId: number, agentId: number, input: ScheduleInput): Promise<{ messageId: string, sendAt: string }> {
    const text = checkedText(input.body, input.confirmParts === true)
    const result = await this.deps.db.transaction().execute(async (trx) => {
      const ticket = await findTicket(trx, ticketId)
      if (ticket === undefined) throw notFound(`Ticket ${ticketRef(ticketId)}`)
      if (ticket.status === 'closed') throw conflict(`Ticket ${ticketRef(ticketId)} is closed; reopen it to schedule a reply.`)
      if (ticket.opted_out_at !== null) throw invalid('This customer texted STOP: nothing is sent to them until they text START. Nothing was scheduled.', [{ field: 'send_at', message: 'the customer opted out' }])
      const now = this.deps.clock.now()
      const sendAt = this.when(input.sendAt, input.zone, ticket.phone, now)
      const to = await replyTarget(trx, ticket)
      const queued = await this.deps.outbound.queue(trx, { ticketId, kind: 'reply', channel: to.channel, to: to.address, body: text, agentId, sendAt, quietHours: 'hold' }, now.toISOString())
      return { messageId: queued.messageId, sendAt }
    })
    await this.deps.changed(ticketId)
    return result
  }

  async edit (ticketId: number, messageId: string, input: ScheduleInput): Promise<{ sendAt: string }> {
    const text = checkedText(input.body, input.confirmParts === true)
    const result = await this.deps.db.transaction().execute(async (trx) => {
      const message = await this.scheduled(trx, ticketId, messageId)
      const now = this.deps.clock.now()
      const sendAt = this.when(input.sendAt, input.zone, message.to_address, now)
      if (!await editScheduled(trx, message.id, text, sendAt, now.toISOString())) throw tooLate(message.status === 'queued' ? await findMessage(trx, message.id) ?? message : message)
      await rescheduleSend(trx, message.id, sendAt, now.toISOString())
      return { sendAt }
    })
    await this.deps.changed(ticketId)
    return result
  }

  async cancel (ticketId: number, messageId: string, agent: { id: number, name: string }): Promise<void> {
    await this.deps.db.transaction().execute(async (trx) => {
      const message = await this.scheduled(trx, ticketId, messageId)
      const now = this.deps.clock.now().toISOString()
      const moved = await this.deps.status.transition(trx, message, { status: 'blocked', statusAt: now, reason: `Cancelled by ${agent.name} before it was sent.`, errorCode: CANCELLED_CODE }, now)
      if (moved === null) throw tooLate(await findMessage(trx, message.id) ?? message)
      await deleteOutboxFor(trx, 'send', { messageId: message.id })
      await insertMessageEvent(trx, { messageId: message.id, status: 'blocked', occurredAt: now, receivedAt: now, source: `agent:${agent.id}`, raw: null })
    })
    await this.deps.changed(ticketId)
  }

  /** A scheduled reply on this ticket that has not gone out yet; 404 when it is not one, 409 when it went. */
  private async scheduled (trx: Executor, ticketId: number, messageId: string): Promise<Message> {
    const message = await findMessage(trx, messageId)
    if (message === undefined || message.ticket_id !== ticketId || message.direction !== 'outbound' || message.send_at === null) {
      throw notFound(`A scheduled reply ${messageId.slice(0, 40)} on ticket #${ticketRef(ticketId)}`)
    }
    if (message.status !== 'queued') throw tooLate(message)
    return message
  }

  /** The instant the agent meant, checked: a real date and time, in a known zone, ahead of now. */
  private when (raw: string, zoneChoice: string, recipient: string, now: Date): string {
    const value = raw.trim()
    const zone = zoneChoice === 'their' || zoneChoice === '' ? this.deps.quietHours.zoneOf(recipient).zone : zoneChoice
    if (!IANAZone.isValidZone(zone)) throw invalid(`"${zoneChoice.slice(0, 60)}" is not a time zone; choose "their time" or a zone such as Europe/Amsterdam. Nothing was scheduled.`, [{ field: 'zone', message: 'unknown time zone' }])
    if (value === '') throw invalid('Choose the date and time to send it at. Nothing was scheduled.', [{ field: 'send_at', message: 'required' }])
    const at = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value) ? DateTime.fromISO(value, { zone }) : null
    if (at === null || !at.isValid) throw invalid(`"${value.slice(0, 40)}" is not a date and time; use the picker, or write it as 2026-12-01T08:00. Nothing was scheduled.`, [{ field: 'send_at', message: 'not a date and time' }])
    const nowThere = DateTime.fromJSDate(now, { zone })
    if (at.toMillis() <= now.getTime()) {
      throw invalid(`${at.toFormat('yyyy-MM-dd HH:mm')} (${zone}) has already passed: it is now ${nowThere.toFormat('yyyy-MM-dd HH:mm')} there. Choose a later time, or send it now. Nothing was scheduled.`, [{ field: 'send_at', message: 'in the past' }])
    }
    if (at.toMillis() > nowThere.plus({ days: MAX_SCHEDULE_DAYS }).toMillis()) {
      throw invalid(`A reply can be scheduled at most ${MAX_SCHEDULE_DAYS} days ahead. Nothing was scheduled.`, [{ field: 'send_at', message: 'too far ahead' }])
    }
    return at.toUTC().toISO({ suppressMilliseconds: false }) ?? new Date(at.toMillis()).toISOString()
  }
}

function checkedText (body: string, confirmParts: boolean): string {
  const text = normaliseLineBreaks(body).trim()
  if (text === '') throw invalid('The reply is empty. Write a message before scheduling it.', [{ field: 'body', message: 'must not be empty' }])
  if (text.length > MAX_REPLY_LENGTH) throw invalid(`The reply is ${text.length} characters long; the limit is ${MAX_REPLY_LENGTH} (about 10 SMS). Shorten it; nothing was scheduled.`, [{ field: 'body', message: `at most ${MAX_REPLY_LENGTH} characters` }])
  const parts = smsParts(text)
  if (parts.parts > MAX_PARTS_WITHOUT_CONFIRM && !confirmParts) throw new PartsToConfirm(parts.parts, parts.encoding)
  return text
}

function tooLate (message: Pick<Message, 'status' | 'error_code'>): UserError {
  if (message.error_code === CANCELLED_CODE) return conflict('This scheduled reply was already cancelled; nothing will be sent.')
  return conflict(`This reply has already left the queue (${statusLabel(message.status).toLowerCase()}), so it can no longer be changed or cancelled.`)
}
