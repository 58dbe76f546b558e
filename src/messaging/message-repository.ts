import { sql } from 'kysely'
import type { Executor } from '../db/database.js'
import { param, prepared } from '../db/prepared.js'
import type { Message, MessageStatus, NewMessage } from '../db/schema.js'

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
  'segments', 'attempts', 'agent_id', 'dispatch_id', 'created_at', 'updated_at'
] as const satisfies ReadonlyArray<keyof NewMessage>

const qInsertMessage = prepared<Required<NewMessage>, never>((db) =>
  db.insertInto('messages').values(Object.fromEntries(MESSAGE_COLUMNS.map((c) => [c, param(c)])) as unknown as NewMessage))

export async function insertMessage (db: Executor, message: NewMessage): Promise<void> {
  await qInsertMessage(db, message as Required<NewMessage>)
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

/**
 * Marks a contact's outbound messages that are still waiting in the outbox as blocked and
 * removes their sends, in the caller's (the STOP's) transaction. Messages already handed to the
 * provider (`sending` and later) cannot be called back and are left alone.
 */
export async function blockQueuedOutbound (db: Executor, contactId: number, reason: string, now: string): Promise<string[]> {
  const rows = await db.updateTable('messages')
    .set({ status: 'blocked', status_at: now, status_reason: reason, error_code: 'OPTED_OUT', updated_at: now })
    .where('direction', '=', 'outbound')
    .where('status', '=', 'queued')
    .where('ticket_id', 'in', (eb) => eb.selectFrom('tickets').select('tickets.id').where('tickets.contact_id', '=', contactId))
    .returning('id')
    .execute()
  const ids = rows.map((r) => r.id)
  if (ids.length > 0) {
    await db.deleteFrom('outbox').where('kind', '=', 'send').where('message_id', 'in', ids).execute()
    await db.insertInto('message_events')
      .values(ids.map((id) => ({ message_id: id, status: 'blocked', occurred_at: now, received_at: now, source: 'opt_out', raw: null })))
      .execute()
  }
  return ids
}
