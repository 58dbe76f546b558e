import { sql } from 'kysely'
import type { Executor } from '../db/database.js'
import { param, prepared } from '../db/prepared.js'
import type { Message, MessageStatus, NewMessage } from '../db/schema.js'
import { PREDECESSORS } from './status.js'

// All SQL for messages and their status events. Messaging owns these tables: other rooms call
// these functions (tickets store inbound texts and read a conversation), never the other way round.

// The queries every inbound SMS runs are compiled once (see db/prepared.ts).
const qMessageByProviderId = prepared<{ provider: string, pid: string }, { id: string, ticket_id: number }>((db) =>
  db.selectFrom('messages').select(['id', 'ticket_id'])
    .where('provider', '=', param<string>('provider')).where('provider_message_id', '=', param<string>('pid')))

export async function findMessageByProviderId (db: Executor, provider: string, providerMessageId: string) {
  return (await qMessageByProviderId(db, { provider, pid: providerMessageId })).rows[0]
}

const MESSAGE_COLUMNS = [
  'id', 'ticket_id', 'direction', 'kind', 'channel', 'from_address', 'to_address', 'body', 'provider',
  'provider_message_id', 'status', 'status_at', 'status_reason', 'error_code', 'price_amount', 'price_currency',
  'segments', 'attempts', 'agent_id', 'dispatch_id', 'created_at', 'updated_at', 'ref_ticket_id', 'original_body',
  'send_at', 'quiet_hours', 'template'
] as const satisfies ReadonlyArray<keyof NewMessage>

const qInsertMessage = prepared<Required<NewMessage>, never>((db) =>
  db.insertInto('messages').values(Object.fromEntries(MESSAGE_COLUMNS.map((c) => [c, param(c)])) as unknown as NewMessage))

export async function insertMessage (db: Executor, message: NewMessage): Promise<void> {
  await qInsertMessage(db, { ref_ticket_id: null, original_body: null, send_at: null, quiet_hours: null, template: null, ...message } as Required<NewMessage>)
}

/**
 * Inserts a retry of `message.retry_of`, or nothing when that message already has one (a double
 * click, two agents): the unique index messages_retry_of decides, and DO NOTHING never raises, so
 * the caller's transaction stays usable on PostgreSQL too. Returns whether this call inserted it.
 */
export async function insertRetryMessage (db: Executor, message: NewMessage & { retry_of: string }): Promise<boolean> {
  const row = await db.insertInto('messages').values(message)
    .onConflict((oc) => oc.column('retry_of').doNothing())
    .returning('id').executeTakeFirst()
  return row !== undefined
}

/** The retry of a message, if it has one. */
export async function findRetryOf (db: Executor, messageId: string): Promise<{ id: string, ticket_id: number } | undefined> {
  return await db.selectFrom('messages').select(['id', 'ticket_id']).where('retry_of', '=', messageId).executeTakeFirst()
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

// Status reports are matched through the unique (provider, provider_message_id) index: a report
// always knows which provider sent it, and a lookup by the id alone would scan the table.
const qOutboundByProviderId = prepared<{ provider: string, pid: string }, Message>((db) =>
  db.selectFrom('messages').selectAll()
    .where('provider', '=', param<string>('provider')).where('provider_message_id', '=', param<string>('pid'))
    .where('direction', '=', 'outbound'))

export async function findOutboundByProviderId (db: Executor, provider: string, providerMessageId: string): Promise<Message | undefined> {
  return (await qOutboundByProviderId(db, { provider, pid: providerMessageId })).rows[0]
}

/** What a status change records besides the status itself. */
export interface StatusFields {
  statusAt: string
  reason: string | null
  errorCode: string | null
  /** Price and parts only arrive with reports; null keeps what is stored. */
  priceAmount?: string | null
  priceCurrency?: string | null
  segments?: number | null
  /** Kept once known: the first provider and provider id recorded win. */
  provider?: string | null
  providerMessageId?: string | null
}

type TransitionParams = { id: string, now: string, pid: string | null } & { [K in keyof Required<Omit<StatusFields, 'providerMessageId'>>]: StatusFields[K] | null }
const qTransition = new Map<MessageStatus, ReturnType<typeof transitionQuery>>()

// One compiled statement per target status: the guard is the constant list of statuses it may follow.
function transitionQuery (to: MessageStatus) {
  const from = PREDECESSORS[to]
  if (from.length === 0) throw new Error(`no status moves to ${to}`)
  return prepared<TransitionParams, Message>((db) => db.updateTable('messages').set({
    status: to,
    status_at: param('statusAt'),
    status_reason: param('reason'),
    error_code: param('errorCode'),
    price_amount: sql<string | null>`coalesce(${param('priceAmount')}, price_amount)`,
    price_currency: sql<string | null>`coalesce(${param('priceCurrency')}, price_currency)`,
    segments: sql<number | null>`coalesce(${param('segments')}, segments)`,
    provider: sql<string | null>`coalesce(provider, ${param('provider')})`,
    provider_message_id: sql<string | null>`coalesce(provider_message_id, ${param('pid')})`,
    updated_at: param('now')
  }).where('id', '=', param<string>('id')).where('status', 'in', from).returningAll())
}

/**
 * Moves a message to `to` if its current status may precede it (messaging/status.ts), in one
 * guarded UPDATE. Returns the row as it now is, or undefined when nothing changed (the message is
 * already there, further on, or final): the caller acts only on a returned row.
 */
export async function transitionMessage (db: Executor, id: string, to: MessageStatus, f: StatusFields, now: string): Promise<Message | undefined> {
  let q = qTransition.get(to)
  if (q === undefined) {
    q = transitionQuery(to)
    qTransition.set(to, q)
  }
  const { rows } = await q(db, {
    id,
    now,
    statusAt: f.statusAt,
    reason: f.reason,
    errorCode: f.errorCode,
    priceAmount: f.priceAmount ?? null,
    priceCurrency: f.priceCurrency ?? null,
    segments: f.segments ?? null,
    provider: f.provider ?? null,
    pid: f.providerMessageId ?? null
  })
  return rows[0]
}

// The worker's claim: `queued` → `sending`, the provider that will send it, and one more attempt.
const qMarkSending = prepared<{ id: string, now: string, provider: string }, Message>((db) =>
  db.updateTable('messages').set((eb) => ({
    status: 'sending',
    status_at: param('now'),
    provider: param('provider'),
    attempts: eb('attempts', '+', 1),
    updated_at: param('now')
  })).where('id', '=', param<string>('id')).where('status', 'in', PREDECESSORS.sending).returningAll())

export async function markSending (db: Executor, id: string, provider: string, now: string): Promise<Message | undefined> {
  return (await qMarkSending(db, { id, now, provider })).rows[0]
}

// A report can settle a message before the worker records the provider's answer: the id is kept.
const qRecordProviderId = prepared<{ id: string, pid: string, now: string }, never>((db) =>
  db.updateTable('messages').set({ provider_message_id: param('pid'), updated_at: param('now') })
    .where('id', '=', param<string>('id')).where('provider_message_id', 'is', null))

/** Stores the provider's id for a message whose status has already moved on; not a status write. */
export async function recordProviderMessageId (db: Executor, id: string, providerMessageId: string, now: string): Promise<void> {
  await qRecordProviderId(db, { id, pid: providerMessageId, now })
}

const qInsertMessageEvent = prepared<{ messageId: string, status: string, occurredAt: string, receivedAt: string, source: string, raw: string | null }, never>((db) =>
  db.insertInto('message_events').values({
    message_id: param('messageId'),
    status: param('status'),
    occurred_at: param('occurredAt'),
    received_at: param('receivedAt'),
    source: param('source'),
    raw: param('raw')
  }))

export async function insertMessageEvent (db: Executor, e: { messageId: string, status: string, occurredAt: string, receivedAt: string, source: string, raw: unknown }): Promise<void> {
  await qInsertMessageEvent(db, { ...e, raw: e.raw === null || e.raw === undefined ? null : JSON.stringify(e.raw) })
}

/**
 * What the simulator phone shows: messages to and from one number, newest last. Read through the
 * tickets of the contacts that own the number (their phone or an extra address), so `messages`
 * needs no address index.
 */
export function listMessagesForAddress (db: Executor, address: string, limit: number) {
  return db.selectFrom('messages')
    .innerJoin('tickets', 'tickets.id', 'messages.ticket_id')
    .select(['messages.id', 'messages.direction', 'messages.status', 'messages.status_reason', 'messages.created_at', 'messages.ticket_id', 'messages.channel'])
    // The customer's phone shows what they typed, a `#<ref>` prefix included.
    .select((eb) => eb.fn.coalesce('messages.original_body', 'messages.body').as('body'))
    .where('tickets.contact_id', 'in', (eb) => eb.selectFrom('contacts').select('contacts.id').where('contacts.phone', '=', address)
      .union(eb.selectFrom('contact_addresses').select('contact_addresses.contact_id as id').where('contact_addresses.address', '=', address)))
    .where((eb) => eb.or([eb('messages.to_address', '=', address), eb('messages.from_address', '=', address)]))
    .orderBy('messages.created_at', 'desc').orderBy(inboundFirst, 'desc').orderBy('messages.id', 'desc')
    .limit(limit)
    .execute()
}

// The opt-out's guarded transition: every outbound message of the contact that may still become
// `blocked` (by the table in status.ts: only `queued`), through the tickets of the contact.
const qBlockQueued = prepared<{ contactId: number, reason: string, now: string }, Message>((db) =>
  db.updateTable('messages')
    .set({ status: 'blocked', status_at: param('now'), status_reason: param('reason'), error_code: 'OPTED_OUT', updated_at: param('now') })
    .where('direction', '=', 'outbound')
    .where('status', 'in', PREDECESSORS.blocked)
    .where('ticket_id', 'in', (eb) => eb.selectFrom('tickets').select('tickets.id').where('tickets.contact_id', '=', param<number>('contactId')))
    .returningAll())

/**
 * Blocks a contact's outbound messages that have not been handed to the provider, and returns the
 * rows it changed. Messages already `sending` or later cannot be called back and are left alone.
 * Called by OutboundQueue.blockQueued, which removes their sends and tells the status listeners.
 */
export async function blockQueuedOutbound (db: Executor, contactId: number, reason: string, now: string): Promise<Message[]> {
  return (await qBlockQueued(db, { contactId, reason, now })).rows
}

/** Says on a waiting message why it waits (quiet hours), without moving its status. */
export async function noteWaiting (db: Executor, id: string, reason: string, now: string): Promise<void> {
  await db.updateTable('messages').set({ status_reason: reason, updated_at: now })
    .where('id', '=', id).where('status', '=', 'queued').execute()
}

/**
 * A scheduled reply's new text and time, only while it still waits (`queued`): whoever moves it on
 * first (the worker's claim, the opt-out, a cancel) wins. Returns whether it changed.
 */
export async function editScheduled (db: Executor, id: string, body: string, sendAt: string, now: string): Promise<boolean> {
  const res = await db.updateTable('messages').set({ body, send_at: sendAt, status_reason: null, updated_at: now })
    .where('id', '=', id).where('status', '=', 'queued').where('send_at', 'is not', null)
    .executeTakeFirst()
  return res.numUpdatedRows > 0n
}

/** The channel and address of the customer's newest message on a ticket (messages_ticket index). */
export async function latestInboundAddress (db: Executor, ticketId: number) {
  return await db.selectFrom('messages').select(['channel', 'from_address'])
    .where('ticket_id', '=', ticketId).where('direction', '=', 'inbound')
    .orderBy('created_at', 'desc').orderBy('id', 'desc').limit(1)
    .executeTakeFirst()
}
