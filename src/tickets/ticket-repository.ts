import { sql } from 'kysely'
import type { Executor } from '../db/database.js'
import { param, prepared } from '../db/prepared.js'
import type { Channel, Contact, Direction, Message, MessageStatus, NewMessage, Ticket } from '../db/schema.js'

// All SQL for contacts, tickets and messages. Every function takes the database or a transaction
// first; the service decides where transactions begin and end.

// The queries every inbound SMS runs are compiled once (see db/prepared.ts).
const qMessageByProviderId = prepared<{ provider: string, pid: string }, { id: string, ticket_id: number }>((db) =>
  db.selectFrom('messages').select(['id', 'ticket_id'])
    .where('provider', '=', param<string>('provider')).where('provider_message_id', '=', param<string>('pid')))

export async function findMessageByProviderId (db: Executor, provider: string, providerMessageId: string) {
  return (await qMessageByProviderId(db, { provider, pid: providerMessageId })).rows[0]
}

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

const MESSAGE_COLUMNS = [
  'id', 'ticket_id', 'direction', 'kind', 'channel', 'from_address', 'to_address', 'body', 'provider',
  'provider_message_id', 'status', 'status_at', 'status_reason', 'error_code', 'price_amount', 'price_currency',
  'segments', 'attempts', 'agent_id', 'dispatch_id', 'created_at', 'updated_at'
] as const satisfies ReadonlyArray<keyof NewMessage>

const qInsertMessage = prepared<Required<NewMessage>, never>((db) =>
  db.insertInto('messages').values(Object.fromEntries(MESSAGE_COLUMNS.map((c) => [c, param(c)])) as unknown as NewMessage))

export async function insertMessage (db: Executor, message: NewMessage): Promise<void> {
  await qInsertMessage(db, message as Required<NewMessage>)
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

// A customer's text and the confirmation it caused share a timestamp; the text comes first.
const inboundFirst = sql<number>`case when messages.direction = 'inbound' then 0 else 1 end`

export function listTicketMessages (db: Executor, ticketId: number) {
  return db.selectFrom('messages')
    .leftJoin('agents', 'agents.id', 'messages.agent_id')
    .selectAll('messages')
    .select(['agents.name as agent_name'])
    .where('messages.ticket_id', '=', ticketId)
    .orderBy('messages.created_at').orderBy(inboundFirst).orderBy('messages.id')
    .execute()
}

// Read three times for every message sent, so compiled once.
const qMessage = prepared<{ id: string }, Message>((db) => db.selectFrom('messages').selectAll().where('id', '=', param<string>('id')))

export async function findMessage (db: Executor, id: string): Promise<Message | undefined> {
  return (await qMessage(db, { id })).rows[0]
}

export function findMessageByProviderMessageId (db: Executor, providerMessageId: string): Promise<Message | undefined> {
  return db.selectFrom('messages').selectAll().where('provider_message_id', '=', providerMessageId)
    .where('direction', '=', 'outbound').executeTakeFirst()
}

export interface StatusUpdate {
  status: MessageStatus
  statusAt: string
  reason?: string | null
  errorCode?: string | null
  priceAmount?: string | null
  priceCurrency?: string | null
  segments?: number | null
  provider?: string | null
  providerMessageId?: string | null
}

/** Writes a status that the caller has already checked may advance (see messaging/status.ts). */
export async function updateMessageStatus (db: Executor, id: string, u: StatusUpdate, now: string): Promise<void> {
  await db.updateTable('messages').set({
    status: u.status,
    status_at: u.statusAt,
    updated_at: now,
    ...(u.reason !== undefined ? { status_reason: u.reason } : {}),
    ...(u.errorCode !== undefined ? { error_code: u.errorCode } : {}),
    ...(u.priceAmount != null ? { price_amount: u.priceAmount } : {}),
    ...(u.priceCurrency != null ? { price_currency: u.priceCurrency } : {}),
    ...(u.segments != null ? { segments: u.segments } : {}),
    ...(u.provider != null ? { provider: u.provider } : {}),
    ...(u.providerMessageId != null ? { provider_message_id: u.providerMessageId } : {})
  }).where('id', '=', id).execute()
}

/** Price and part count may arrive on any report, including one whose status changes nothing. */
export async function updateMessageBilling (db: Executor, id: string, u: Pick<StatusUpdate, 'priceAmount' | 'priceCurrency' | 'segments'>, now: string): Promise<void> {
  const set = {
    ...(u.priceAmount != null ? { price_amount: u.priceAmount } : {}),
    ...(u.priceCurrency != null ? { price_currency: u.priceCurrency } : {}),
    ...(u.segments != null ? { segments: u.segments } : {})
  }
  if (Object.keys(set).length === 0) return
  await db.updateTable('messages').set({ ...set, updated_at: now }).where('id', '=', id).execute()
}

export async function incrementMessageAttempts (db: Executor, id: string, now: string): Promise<void> {
  await db.updateTable('messages').set((eb) => ({ attempts: eb('attempts', '+', 1), updated_at: now })).where('id', '=', id).execute()
}

export async function insertMessageEvent (db: Executor, e: { messageId: string, status: string, occurredAt: string, receivedAt: string, source: string, raw: unknown }): Promise<void> {
  await db.insertInto('message_events').values({
    message_id: e.messageId,
    status: e.status,
    occurred_at: e.occurredAt,
    received_at: e.receivedAt,
    source: e.source,
    raw: e.raw === null || e.raw === undefined ? null : JSON.stringify(e.raw)
  }).execute()
}

/**
 * What the simulator phone shows: messages to and from one number, newest last. Read through the
 * tickets of the contacts that own the number (their phone or an extra address), so `messages`
 * needs no address index.
 */
export function listMessagesForAddress (db: Executor, address: string, limit: number) {
  return db.selectFrom('messages')
    .innerJoin('tickets', 'tickets.id', 'messages.ticket_id')
    .select(['messages.id', 'messages.direction', 'messages.body', 'messages.status', 'messages.status_reason', 'messages.created_at', 'messages.ticket_id', 'messages.channel'])
    .where('tickets.contact_id', 'in', (eb) => eb.selectFrom('contacts').select('contacts.id').where('contacts.phone', '=', address)
      .union(eb.selectFrom('contact_addresses').select('contact_addresses.contact_id as id').where('contact_addresses.address', '=', address)))
    .where((eb) => eb.or([eb('messages.to_address', '=', address), eb('messages.from_address', '=', address)]))
    .orderBy('messages.created_at', 'desc').orderBy(inboundFirst, 'desc').orderBy('messages.id', 'desc')
    .limit(limit)
    .execute()
}

export type { Ticket, Channel }
