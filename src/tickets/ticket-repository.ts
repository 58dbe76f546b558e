import { sql } from 'kysely'
import type { Executor } from '../db/database.js'
import { param, prepared } from '../db/prepared.js'
import type { Channel, Ticket, TicketStatus } from '../db/schema.js'
import type { LastMessage } from '../messaging/ports.js'

// All SQL for contacts and tickets (messages belong to messaging/message-repository.ts). Every
// function takes the database or a transaction first; the service decides where transactions begin and end.

/**
 * A new contact for a number, or undefined when a contact already has that phone (a concurrent
 * writer's, say): ON CONFLICT DO NOTHING never raises, so the caller's transaction stays usable on
 * Postgres too. The number must be claimed (contact-repository claimNumber) in the same
 * transaction: the deferred foreign key to contact_numbers is checked at commit.
 */
export async function insertContact (db: Executor, phone: string, now: string): Promise<number | undefined> {
  const row = await db.insertInto('contacts')
    .values({ phone, created_at: now, updated_at: now })
    .onConflict((oc) => oc.column('phone').doNothing())
    .returning('id')
    .executeTakeFirst()
  return row?.id
}

/**
 * insertContact for a number that may have belonged to an erased contact: the new contact starts
 * with the opt-out stored under the number's keyed hash (erased_numbers), read by the insert itself.
 */
export async function insertContactWithConsent (db: Executor, phone: string, numberHash: string, now: string): Promise<{ id: number, opted_out_at: string | null } | undefined> {
  return await db.insertInto('contacts')
    .values((eb) => ({
      phone,
      created_at: now,
      updated_at: now,
      opted_out_at: eb.selectFrom('erased_numbers').select('opted_out_at').where('number_hash', '=', numberHash)
    }))
    .onConflict((oc) => oc.column('phone').doNothing())
    .returning(['id', 'opted_out_at'])
    .executeTakeFirst()
}

/** Undoes insertContact in the same transaction, when the number turned out to be taken; nothing refers to the row yet. */
export async function deleteNewContact (db: Executor, id: number): Promise<void> {
  await db.deleteFrom('contacts').where('id', '=', id).execute()
}

export function findContactById (db: Executor, id: number) {
  return db.selectFrom('contacts').selectAll().where('id', '=', id).executeTakeFirst()
}

/** Gives a contact the name their platform reports (Messenger), unless they have one: an agent's edit wins. */
export async function nameContactIfUnnamed (db: Executor, contactId: number, name: string, now: string): Promise<void> {
  await db.updateTable('contacts').set({ name, updated_at: now }).where('id', '=', contactId).where('name', 'is', null).execute()
}

export async function setContactOptOut (db: Executor, contactId: number, optedOutAt: string | null, now: string): Promise<void> {
  await db.updateTable('contacts').set({ opted_out_at: optedOutAt, updated_at: now }).where('id', '=', contactId).execute()
}

const qOpenTicketForContact = prepared<{ contactId: number }, { id: number, status: TicketStatus, assignee_id: number | null }>((db) =>
  db.selectFrom('tickets').select(['id', 'status', 'assignee_id'])
    // A literal, so SQLite can match the partial index tickets_one_open_per_contact.
    .where('contact_id', '=', param<number>('contactId')).where('status', '<>', sql.lit('closed')))

export async function findOpenTicketForContact (db: Executor, contactId: number) {
  return (await qOpenTicketForContact(db, { contactId })).rows[0]
}

/**
 * A ticket a customer's text named with `#<ref>`, when it is theirs: by primary key, and only
 * together with its owner, so another customer's ticket reads the same as one that does not exist.
 * A merged ticket's number finds the ticket it was merged into.
 */
export function findOwnTicket (db: Executor, ticketId: number, contactId: number) {
  return db.selectFrom('tickets as named')
    .innerJoin('tickets as t', (join) => join.on(sql<boolean>`t.id = coalesce(named.merged_into, named.id)`))
    .select(['t.id', 't.status', 't.closed_at', 't.assignee_id'])
    .where('named.id', '=', ticketId).where('named.contact_id', '=', contactId).executeTakeFirst()
}

/** The ticket that stands for a contact in messages to agents: their open one, else their latest. */
export async function findTicketOfContact (db: Executor, contactId: number): Promise<number | undefined> {
  const row = await db.selectFrom('tickets').select('id')
    .where('contact_id', '=', contactId)
    .orderBy(sql`case when status <> 'closed' then 0 else 1 end`).orderBy('created_at', 'desc').orderBy('id', 'desc')
    .limit(1).executeTakeFirst()
  return row?.id
}

/** Exported for the test that reads its query plan. */
export const conversationQuery = (db: Executor) =>
  db.selectFrom('contact_numbers as n')
    .innerJoin('contacts as c', 'c.id', 'n.contact_id')
    .leftJoin('tickets as t', (join) => join.onRef('t.contact_id', '=', 'c.id').on('t.status', '<>', sql.lit('closed')))
    .select(['c.id as contact_id', 'c.opted_out_at', 't.id as open_ticket_id', 't.status as open_ticket_status', 't.assignee_id as open_ticket_assignee_id'])
    .where('n.number', '=', param<string>('number'))

const qConversation = prepared<{ number: string }, { contact_id: number, opted_out_at: string | null, open_ticket_id: number | null, open_ticket_status: TicketStatus | null, open_ticket_assignee_id: number | null }>(conversationQuery)

/**
 * Who a number belongs to (their own phone or an extra address, on any channel) and their open
 * ticket, in one statement through three unique indexes: every inbound SMS runs it.
 */
export async function findConversation (db: Executor, number: string) {
  return (await qConversation(db, { number })).rows[0]
}

/**
 * Opens a ticket for a contact (`open`, or `pending` when it starts with a message to the
 * customer), or returns undefined when they already have a ticket that is not closed (a
 * concurrent writer's). The conflict target repeats the predicate of the partial unique index
 * tickets_one_open_per_contact as a literal, which is how SQLite and Postgres match it; DO NOTHING
 * never raises, so the caller's transaction stays usable on Postgres too.
 */
export async function insertOpenTicket (db: Executor, contactId: number, now: string, first: LastMessage, status: 'open' | 'pending' = 'open'): Promise<number | undefined> {
  const row = await db.insertInto('tickets').values({
    contact_id: contactId,
    status,
    status_at: now,
    created_at: now,
    updated_at: now,
    last_message_at: now,
    last_message_preview: first.preview,
    last_message_direction: first.direction,
    last_sender: first.sender,
    last_sender_agent_id: first.agentId ?? null,
    message_count: 0
  }).onConflict((oc) => oc.column('contact_id').where('status', '<>', sql.lit('closed')).doNothing())
    .returning('id').executeTakeFirst()
  return row?.id
}

/**
 * Keeps the ticket's denormalised list columns in step with its messages. The confirmation of a
 * new ticket (`null`) counts, but does not replace the preview an agent scans for. A customer's
 * text makes the ticket unread for agents who read it before, and starts its waiting time unless
 * one is running; an agent's reply ends it.
 */
export async function touchTicket (db: Executor, ticketId: number, at: string, last: LastMessage | null): Promise<void> {
  if (last === null) await qCountMessage(db, { at, ticketId })
  else if (last.direction === 'inbound') await touchForInbound(db, ticketId, at, last.preview)
  else await qTouchOutbound(db, { at, ticketId, preview: last.preview, sender: last.sender, agentId: last.agentId ?? null, answered: last.sender === 'agent' ? 1 : 0 })
}

/**
 * A customer's text on its ticket; false when that ticket has been merged into another since the
 * text's transaction read it (no row changed): the caller must run its unit again, to find the
 * ticket it was merged into.
 */
export async function touchForInbound (db: Executor, ticketId: number, at: string, preview: string): Promise<boolean> {
  const res = await qTouchInbound(db, { at, ticketId, preview })
  return (res.numAffectedRows ?? 0n) > 0n
}

// Every inbound SMS runs this one: compiled once.
const qTouchInbound = prepared<{ at: string, ticketId: number, preview: string }, never>((db) =>
  db.updateTable('tickets')
    .set((eb) => ({
      last_message_at: param<string>('at'),
      last_message_preview: param<string>('preview'),
      last_message_direction: 'inbound',
      last_sender: 'customer',
      last_sender_agent_id: null,
      last_customer_message_at: param<string>('at'),
      awaiting_reply_since: eb.fn.coalesce(eb.ref('awaiting_reply_since'), eb.val(param<string>('at'))),
      message_count: eb('message_count', '+', 1),
      updated_at: param<string>('at')
    }))
    .where('id', '=', param<number>('ticketId'))
    // On PostgreSQL this UPDATE waits for a merge holding the row, then sees its merged_into.
    .where('merged_into', 'is', null))

const qTouchOutbound = prepared<{ at: string, ticketId: number, preview: string, sender: string, agentId: number | null, answered: number }, never>((db) =>
  db.updateTable('tickets')
    .set((eb) => ({
      last_message_at: param<string>('at'),
      last_message_preview: param<string>('preview'),
      last_message_direction: 'outbound',
      last_sender: param<LastMessage['sender']>('sender'),
      last_sender_agent_id: param<number | null>('agentId'),
      awaiting_reply_since: sql<string | null>`case when ${param<number>('answered')} = 1 then null else awaiting_reply_since end`,
      // The first reply that answers a waiting customer, for the reports' first-response times.
      // Every SET expression reads the row as it was before this update, on both engines.
      first_reply_at: sql<string | null>`case when ${param<number>('answered')} = 1 and first_reply_at is null and awaiting_reply_since is not null then ${param<string>('at')} else first_reply_at end`,
      first_reply_agent_id: sql<number | null>`case when ${param<number>('answered')} = 1 and first_reply_at is null and awaiting_reply_since is not null then ${param<number | null>('agentId')} else first_reply_agent_id end`,
      first_reply_waited_from: sql<string | null>`case when ${param<number>('answered')} = 1 and first_reply_at is null and awaiting_reply_since is not null then awaiting_reply_since else first_reply_waited_from end`,
      message_count: eb('message_count', '+', 1),
      updated_at: param<string>('at')
    }))
    .where('id', '=', param<number>('ticketId')))

const qCountMessage = prepared<{ at: string, ticketId: number }, never>((db) =>
  db.updateTable('tickets')
    .set((eb) => ({ message_count: eb('message_count', '+', 1), updated_at: param<string>('at') }))
    .where('id', '=', param<number>('ticketId')))

export function findTicket (db: Executor, id: number) {
  return db.selectFrom('tickets')
    .innerJoin('contacts', 'contacts.id', 'tickets.contact_id')
    .leftJoin('agents as assignee', 'assignee.id', 'tickets.assignee_id')
    .selectAll('tickets')
    // An erased contact has no number left to message: treated as opted out from the moment of erasure.
    .select(['contacts.phone', 'contacts.name as contact_name', sql<string | null>`coalesce(contacts.opted_out_at, contacts.erased_at)`.as('opted_out_at'), 'contacts.erased_at', 'assignee.name as assignee_name'])
    .where('tickets.id', '=', id)
    .executeTakeFirst()
}

/** The consent fact messaging asks for before it queues or sends anything on a ticket. */
// Read for every send, in the transaction that marks it `sending`: compiled once.
const qOptedOutAtForTicket = prepared<{ ticketId: number }, { opted_out_at: string | null }>((db) =>
  db.selectFrom('tickets').innerJoin('contacts', 'contacts.id', 'tickets.contact_id')
    .select(sql<string | null>`coalesce(contacts.opted_out_at, contacts.erased_at)`.as('opted_out_at')).where('tickets.id', '=', param<number>('ticketId')))

export async function findOptedOutAtForTicket (db: Executor, ticketId: number): Promise<string | null> {
  return (await qOptedOutAtForTicket(db, { ticketId })).rows[0]?.opted_out_at ?? null
}

export type TicketWithContact = NonNullable<Awaited<ReturnType<typeof findTicket>>>

export type { Ticket, Channel }
