import { sql } from 'kysely'
import type { Executor } from '../db/database.js'
import { param, prepared } from '../db/prepared.js'
import type { Channel, Contact, Direction, Ticket } from '../db/schema.js'

// All SQL for contacts and tickets (messages belong to messaging/message-repository.ts). Every
// function takes the database or a transaction first; the service decides where transactions begin and end.

const qContactByPhone = prepared<{ phone: string }, Pick<Contact, 'id' | 'phone' | 'name' | 'opted_out_at'>>((db) =>
  db.selectFrom('contacts').select(['id', 'phone', 'name', 'opted_out_at']).where('phone', '=', param<string>('phone')))

/** The contact for a number, created on first contact. An existing contact is read, not rewritten. */
export async function upsertContact (db: Executor, phone: string, now: string) {
  const existing = (await qContactByPhone(db, { phone })).rows[0]
  if (existing !== undefined) return existing
  return await db.insertInto('contacts')
    .values({ phone, created_at: now, updated_at: now })
    .onConflict((oc) => oc.column('phone').doUpdateSet({ updated_at: now }))
    .returning(['id', 'phone', 'name', 'opted_out_at'])
    .executeTakeFirstOrThrow()
}

export function findContactByPhone (db: Executor, phone: string) {
  return db.selectFrom('contacts').selectAll().where('phone', '=', phone).executeTakeFirst()
}

export function findContactById (db: Executor, id: number) {
  return db.selectFrom('contacts').selectAll().where('id', '=', id).executeTakeFirst()
}

export async function setContactOptOut (db: Executor, contactId: number, optedOutAt: string | null, now: string): Promise<void> {
  await db.updateTable('contacts').set({ opted_out_at: optedOutAt, updated_at: now }).where('id', '=', contactId).execute()
}

const qOpenTicketForContact = prepared<{ contactId: number }, { id: number }>((db) =>
  db.selectFrom('tickets').select(['id'])
    .where('contact_id', '=', param<number>('contactId')).where('status', '<>', sql.lit('closed')))

export async function findOpenTicketForContact (db: Executor, contactId: number) {
  return (await qOpenTicketForContact(db, { contactId })).rows[0]
}

const qInboundConversation = prepared<{ channel: Channel, address: string }, { id: number, opted_out_at: string | null, open_ticket_id: number | null }>((db) =>
  db.selectFrom('contacts as c')
    .leftJoin('tickets as t', (join) => join.onRef('t.contact_id', '=', 'c.id').on('t.status', '<>', sql.lit('closed')))
    .select(['c.id', 'c.opted_out_at', 't.id as open_ticket_id'])
    .where('c.id', '=', (eb) => eb.fn.coalesce(
      // One of a contact's extra addresses (a second phone, a WhatsApp number) first, then their phone.
      eb.selectFrom('contact_addresses').select('contact_id')
        .where('channel', '=', param<Channel>('channel')).where('address', '=', param<string>('address')),
      eb.selectFrom('contacts').select('id').where('phone', '=', param<string>('address'))
    )))

/**
 * Who an inbound address belongs to and their open ticket, in one statement (every inbound SMS
 * runs it): the contact that has it as an extra address, else the contact whose phone it is.
 */
export async function findInboundConversation (db: Executor, channel: Channel, address: string) {
  return (await qInboundConversation(db, { channel, address })).rows[0]
}

export async function insertTicket (db: Executor, contactId: number, now: string, first: { preview: string, direction: Direction }): Promise<number> {
  const row = await db.insertInto('tickets').values({
    contact_id: contactId,
    status: 'open',
    created_at: now,
    updated_at: now,
    last_message_at: now,
    last_message_preview: first.preview,
    last_message_direction: first.direction,
    message_count: 0
  }).returning('id').executeTakeFirstOrThrow()
  return row.id
}

/**
 * Keeps the ticket's denormalised list columns in step with its messages. Automatic messages
 * (confirmations, keyword answers) count, but do not replace the preview an agent scans for.
 */
export async function touchTicket (db: Executor, ticketId: number, at: string, last: { preview: string, direction: Direction } | null): Promise<void> {
  if (last === null) await qCountMessage(db, { at, ticketId })
  else await qTouchTicket(db, { at, ticketId, preview: last.preview, direction: last.direction })
}

const qTouchTicket = prepared<{ at: string, ticketId: number, preview: string, direction: Direction }, never>((db) =>
  db.updateTable('tickets')
    .set((eb) => ({
      last_message_at: param<string>('at'),
      last_message_preview: param<string>('preview'),
      last_message_direction: param<Direction>('direction'),
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
    .selectAll('tickets')
    .select(['contacts.phone', 'contacts.name as contact_name', 'contacts.opted_out_at'])
    .where('tickets.id', '=', id)
    .executeTakeFirst()
}

/** The consent fact messaging asks for before it queues or sends anything on a ticket. */
export async function findOptedOutAtForTicket (db: Executor, ticketId: number): Promise<string | null> {
  const row = await db.selectFrom('tickets').innerJoin('contacts', 'contacts.id', 'tickets.contact_id')
    .select('contacts.opted_out_at').where('tickets.id', '=', ticketId).executeTakeFirst()
  return row?.opted_out_at ?? null
}

export type TicketWithContact = NonNullable<Awaited<ReturnType<typeof findTicket>>>

export async function closeTicket (db: Executor, id: number, agentId: number | null, now: string): Promise<boolean> {
  const res = await db.updateTable('tickets')
    .set({ status: 'closed', closed_at: now, closed_by: agentId, updated_at: now })
    .where('id', '=', id).where('status', '<>', 'closed')
    .executeTakeFirst()
  return res.numUpdatedRows > 0n
}

export interface OpenTicketCursor { at: string, id: number }

/** One page of open tickets, newest activity first, by keyset so page 1,000 costs what page 1 does. */
export function listOpenTickets (db: Executor, limit: number, before: OpenTicketCursor | null) {
  let q = db.selectFrom('tickets')
    .innerJoin('contacts', 'contacts.id', 'tickets.contact_id')
    .select([
      'tickets.id', 'tickets.status', 'tickets.created_at', 'tickets.last_message_at',
      'tickets.last_message_preview', 'tickets.last_message_direction', 'tickets.message_count',
      'contacts.phone', 'contacts.name as contact_name', 'contacts.opted_out_at'
    ])
    // A literal, so SQLite can match the partial index tickets_open_by_activity.
    .where('tickets.status', '<>', sql.lit('closed'))
  if (before !== null) {
    q = q.where((eb) => eb(eb.refTuple('tickets.last_message_at', 'tickets.id'), '<', eb.tuple(before.at, before.id)))
  }
  return q.orderBy('tickets.last_message_at', 'desc').orderBy('tickets.id', 'desc').limit(limit).execute()
}

/**
 * Open tickets, counted up to `cap` (then the inbox says "cap+"): an exact count of 100,000 open
 * tickets would cost more than the rest of the page.
 */
export async function countOpenTickets (db: Executor, cap: number): Promise<number> {
  const row = await db.selectFrom((eb) => eb.selectFrom('tickets').select(sql.lit(1).as('one')).where('status', '<>', sql.lit('closed')).limit(cap + 1).as('open'))
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

export type { Ticket, Channel }
