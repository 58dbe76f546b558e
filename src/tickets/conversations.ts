import type { Executor } from '../db/database.js'
import type { TicketStatus } from '../db/schema.js'
import type { LastMessage } from '../messaging/ports.js'
import { claimNumber } from './contact-repository.js'
import { erasedNumberHash } from './erased-numbers.js'
import { adjustCounts, findClosedSince, findClosedTicket, insertTicketEvent, updateTicketState } from './inbox-repository.js'
import * as repo from './ticket-repository.js'

// "Find or open the customer's ticket": the one implementation, used by inbound texts and by the
// notifications API. Safe under concurrent writers by construction (invariant 1): every insert
// that another transaction may race is ON CONFLICT DO NOTHING against the unique index that
// decides the race, followed by a read of the winner. Nothing raises on a lost race, so the same
// code holds on Postgres (READ COMMITTED, where an error would abort the whole transaction) as on
// SQLite.

export interface Conversation {
  contactId: number
  optedOutAt: string | null
  /** Their ticket that is not closed (open or pending), or null when they have none. */
  openTicketId: number | null
  openTicketStatus: TicketStatus | null
  openTicketAssigneeId: number | null
}

export interface OpenTicket {
  contactId: number
  optedOutAt: string | null
  ticketId: number
  /** True when this call opened the ticket (and so decides about its confirmation). */
  newTicket: boolean
  /** The ticket's status and assignee before this message. */
  status: TicketStatus
  assigneeId: number | null
  /** True when this call reopened a ticket closed within the reopen window. */
  reopened: boolean
}

/** A lost race is followed by a read of the winner; only a winner that vanished again needs another round. */
const ROUNDS = 3

/** Who a number belongs to (their phone or an extra address, on any channel) and their open ticket. */
export async function findConversation (trx: Executor, number: string): Promise<Conversation | undefined> {
  const row = await repo.findConversation(trx, number)
  return row === undefined
    ? undefined
    : { contactId: row.contact_id, optedOutAt: row.opted_out_at, openTicketId: row.open_ticket_id, openTicketStatus: row.open_ticket_status, openTicketAssigneeId: row.open_ticket_assignee_id }
}

/**
 * The customer who owns `number` and their open ticket, creating the contact and the ticket when
 * missing. `seen` is what findConversation returned earlier in this transaction: when it shows an
 * open ticket nothing more is read (the path of most inbound texts). When it does not, and a
 * concurrent writer has since created the contact, claimed the number for another contact, or
 * opened the ticket, the insert does nothing and the winner's row is used: one open ticket, and
 * `newTicket` is false, so no second confirmation.
 *
 * A ticket that starts with a message to the customer (a notification) opens as `pending`: it is
 * not work until they answer. With `reopenSince`, the contact's ticket closed at or after that
 * time is reopened instead of a new one. That UPDATE can meet a ticket a concurrent writer has
 * just opened: SQLite's single writer rules it out; on Postgres the unique index refuses it and
 * the caller runs its whole unit again (as for a duplicate provider id), finding that ticket.
 * `reopenRef` does the same for the one closed ticket a customer's `#<ref>` named, when it was
 * closed at or after `closedSince`; it is tried before `reopenSince`.
 */
export async function findOrOpenTicket (trx: Executor, number: string, seen: Conversation | undefined, now: string, first: LastMessage, opts: { reopenSince?: string | null, reopenRef?: { ticketId: number, closedSince: string, messageId: string } | null } = {}): Promise<OpenTicket> {
  let conversation = seen
  for (let round = 0; conversation === undefined; round++) {
    if (round === ROUNDS) throw new Error('The contact for a number kept disappearing while it was being created')
    const inserted = await repo.insertContactWithConsent(trx, number, await erasedNumberHash(trx, number), now)
    if (inserted !== undefined) {
      const contactId = inserted.id
      if (await claimNumber(trx, number, contactId, now) === contactId) {
        // Ours, and new: no one else can see it before this transaction commits, so it has no
        // ticket, and no opt-out but the one an erased owner of the number left (README "Data
        // and privacy"), which the insert read; there is nothing to read back.
        conversation = { contactId, optedOutAt: inserted.opted_out_at, openTicketId: null, openTicketStatus: null, openTicketAssigneeId: null }
        break
      }
      // Another contact took the number (as an extra address) after our read: theirs it is.
      await repo.deleteNewContact(trx, contactId)
    }
    conversation = await findConversation(trx, number)
  }
  const { contactId, optedOutAt } = conversation
  const found = (ticketId: number, status: TicketStatus, assigneeId: number | null): OpenTicket => ({ contactId, optedOutAt, ticketId, newTicket: false, status, assigneeId, reopened: false })
  if (conversation.openTicketId !== null) return found(conversation.openTicketId, conversation.openTicketStatus ?? 'open', conversation.openTicketAssigneeId)
  if (opts.reopenRef != null) {
    // The customer's text named this closed ticket of theirs (`#<ref>`): the same guarded reopen as
    // the reopen window's, of that ticket, recorded with the text that asked for it.
    const { ticketId, closedSince, messageId } = opts.reopenRef
    const closed = await findClosedTicket(trx, contactId, ticketId, closedSince)
    const state = { status: 'closed' as const, assigneeId: closed?.assignee_id ?? null }
    if (closed !== undefined && await updateTicketState(trx, closed.id, state, { status: 'open', assigneeId: state.assigneeId }, null, now)) {
      await adjustCounts(trx, state, { status: 'open', assigneeId: state.assigneeId })
      await insertTicketEvent(trx, { ticketId: closed.id, kind: 'status', agentId: null, fromStatus: 'closed', toStatus: 'open', messageId }, now)
      return { ...found(closed.id, 'closed', state.assigneeId), reopened: true }
    }
  }
  if (opts.reopenSince != null) {
    const closed = await findClosedSince(trx, contactId, opts.reopenSince)
    const state = { status: 'closed' as const, assigneeId: closed?.assignee_id ?? null }
    if (closed !== undefined && await updateTicketState(trx, closed.id, state, { status: 'open', assigneeId: state.assigneeId }, null, now)) {
      await adjustCounts(trx, state, { status: 'open', assigneeId: state.assigneeId })
      await insertTicketEvent(trx, { ticketId: closed.id, kind: 'status', agentId: null, fromStatus: 'closed', toStatus: 'open' }, now)
      return { ...found(closed.id, 'closed', state.assigneeId), reopened: true }
    }
  }
  const status = first.direction === 'outbound' ? 'pending' : 'open'
  for (let round = 0; round < ROUNDS; round++) {
    const opened = await repo.insertOpenTicket(trx, contactId, now, first, status)
    if (opened !== undefined) {
      await adjustCounts(trx, null, { status, assigneeId: null })
      return { contactId, optedOutAt, ticketId: opened, newTicket: true, status, assigneeId: null, reopened: false }
    }
    const open = await repo.findOpenTicketForContact(trx, contactId)
    if (open !== undefined) return found(open.id, open.status, open.assignee_id)
  }
  throw new Error('The open ticket of a contact kept closing while a new one was being opened')
}

/** How agents see a ticket's id. */
export function ticketRef (id: number): string {
  return String(id)
}

/** "the customer of ticket #12": how agents know a contact, for messages about a number they have. */
export async function describeOwner (trx: Executor, contactId: number): Promise<string> {
  const ticketId = await repo.findTicketOfContact(trx, contactId)
  return ticketId === undefined ? 'another customer' : `the customer of ticket #${ticketRef(ticketId)}`
}
