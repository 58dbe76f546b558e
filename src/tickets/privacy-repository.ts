import { sql } from 'kysely'
import type { Executor } from '../db/database.js'
import type { AuditAction } from '../db/schema.js'

// SQL for data and privacy: the export of one contact, erasing a contact, retention of message
// texts, the keyed hashes of erased numbers and the audit log. The same statements on both engines.

/** What replaces an erased text, everywhere. */
export const ERASED = '[erased]'

/** The HMAC key of erased numbers (made by migration 20261217T1300-privacy). */
export async function privacyKey (db: Executor): Promise<string> {
  const row = await db.selectFrom('privacy_keys').select('hmac_key').where('id', '=', 1).executeTakeFirstOrThrow()
  return row.hmac_key
}

/** The latest erasure of a number decides its consent: a number erased twice keeps the later state. */
export async function upsertErasedNumber (db: Executor, numberHash: string, optedOutAt: string | null, now: string): Promise<void> {
  await db.insertInto('erased_numbers').values({ number_hash: numberHash, opted_out_at: optedOutAt, erased_at: now })
    .onConflict((oc) => oc.column('number_hash').doUpdateSet({ opted_out_at: optedOutAt, erased_at: now })).execute()
}

export function findContactForExport (db: Executor, id: number) {
  return db.selectFrom('contacts')
    .select(['id', 'phone', 'name', 'notes', 'notes_updated_at', 'opted_out_at', 'created_at', 'updated_at', 'erased_at'])
    .where('id', '=', id).executeTakeFirst()
}

export function listContactNumbers (db: Executor, contactId: number) {
  return db.selectFrom('contact_numbers').select(['number', 'created_at']).where('contact_id', '=', contactId).orderBy('created_at').orderBy('number').execute()
}

export function listAllContactChanges (db: Executor, contactId: number) {
  return db.selectFrom('contact_changes').leftJoin('agents', 'agents.id', 'contact_changes.agent_id')
    .select(['contact_changes.field', 'contact_changes.value', 'contact_changes.created_at', 'agents.name as agent_name'])
    .where('contact_changes.contact_id', '=', contactId).orderBy('contact_changes.id').execute()
}

export function listTicketsForExport (db: Executor, contactId: number) {
  return db.selectFrom('tickets').leftJoin('agents', 'agents.id', 'tickets.assignee_id')
    .select(['tickets.id', 'tickets.status', 'tickets.created_at', 'tickets.closed_at', 'tickets.message_count', 'tickets.texts_erased_at', 'agents.name as assignee_name'])
    .where('tickets.contact_id', '=', contactId).orderBy('tickets.id').execute()
}

export function listMessagesOfContact (db: Executor, contactId: number) {
  return db.selectFrom('messages').innerJoin('tickets', 'tickets.id', 'messages.ticket_id')
    .select(['messages.id', 'messages.ticket_id', 'messages.direction', 'messages.kind', 'messages.channel', 'messages.from_address', 'messages.to_address',
      'messages.body', 'messages.status', 'messages.status_at', 'messages.status_reason', 'messages.price_amount', 'messages.price_currency',
      'messages.segments', 'messages.created_at'])
    // A text and its confirmation share a moment: the customer's text first ('inbound' < 'outbound').
    .where('tickets.contact_id', '=', contactId).orderBy('messages.created_at').orderBy('messages.direction').orderBy('messages.id').execute()
}

export function listNotesOfContact (db: Executor, contactId: number) {
  return db.selectFrom('notes').innerJoin('tickets', 'tickets.id', 'notes.ticket_id').leftJoin('agents', 'agents.id', 'notes.agent_id')
    .select(['notes.id', 'notes.ticket_id', 'notes.body', 'notes.created_at', 'agents.name as agent_name'])
    .where('tickets.contact_id', '=', contactId).orderBy('notes.id').execute()
}

export function listEventsOfContact (db: Executor, contactId: number) {
  return db.selectFrom('ticket_events').innerJoin('tickets', 'tickets.id', 'ticket_events.ticket_id')
    .leftJoin('agents as a', 'a.id', 'ticket_events.agent_id').leftJoin('agents as target', 'target.id', 'ticket_events.target_agent_id')
    .select(['ticket_events.id', 'ticket_events.ticket_id', 'ticket_events.kind', 'ticket_events.from_status', 'ticket_events.to_status',
      'ticket_events.created_at', 'a.name as agent_name', 'target.name as target_agent_name'])
    .where('tickets.contact_id', '=', contactId).orderBy('ticket_events.id').execute()
}

/** True when this API key sent a message to one of the contact's tickets (the API's export scope). */
export async function apiKeyMessagedContact (db: Executor, apiKeyId: number, contactId: number): Promise<boolean> {
  const row = await db.selectFrom('api_messages').innerJoin('messages', 'messages.id', 'api_messages.message_id')
    .innerJoin('tickets', 'tickets.id', 'messages.ticket_id')
    .select('api_messages.message_id')
    .where('api_messages.api_key_id', '=', apiKeyId).where('tickets.contact_id', '=', contactId).limit(1).executeTakeFirst()
  return row !== undefined
}

/**
 * Replaces the contact's personal data in place: the number by `erasedPhone` (a keyed hash), the
 * name, notes and every text of their tickets by ERASED. Counts, statuses, prices and the rows
 * themselves stay. Their extra addresses go. Returns how many tickets and messages were touched.
 */
export async function eraseContactData (db: Executor, contactId: number, erasedPhone: string, now: string): Promise<{ tickets: number, messages: number }> {
  // contacts.phone points at its contact_numbers row (deferred): the new number first, then the contact.
  await db.insertInto('contact_numbers').values({ number: erasedPhone, contact_id: contactId, created_at: now }).execute()
  await db.updateTable('contacts')
    .set({ phone: erasedPhone, name: ERASED, notes: null, notes_updated_by: null, notes_updated_at: null, erased_at: now, updated_at: now })
    .where('id', '=', contactId).execute()
  await db.deleteFrom('contact_addresses').where('contact_id', '=', contactId).execute()
  await db.deleteFrom('contact_address_conflicts').where('contact_id', '=', contactId).execute()
  await db.deleteFrom('contact_numbers').where('contact_id', '=', contactId).where('number', '<>', erasedPhone).execute()
  await db.updateTable('contact_changes').set({ value: ERASED }).where('contact_id', '=', contactId).where('value', 'is not', null).execute()

  const ticketIds = db.selectFrom('tickets').select('id').where('contact_id', '=', contactId)
  const messages = await db.updateTable('messages').set({
    body: ERASED,
    original_body: sql<string | null>`case when original_body is null then null else ${ERASED} end`,
    from_address: sql<string | null>`case when direction = 'inbound' then ${erasedPhone} else from_address end`,
    to_address: sql<string>`case when direction = 'outbound' then ${erasedPhone} else to_address end`
  }).where('ticket_id', 'in', ticketIds).executeTakeFirst()
  await db.updateTable('message_events').set({ raw: null })
    .where('message_id', 'in', db.selectFrom('messages').select('id').where('ticket_id', 'in', ticketIds)).execute()
  await db.updateTable('notes').set({ body: ERASED }).where('ticket_id', 'in', ticketIds).execute()
  // A photo and its caption are the customer's as much as their text.
  await db.deleteFrom('message_media')
    .where('message_id', 'in', db.selectFrom('messages').select('id').where('ticket_id', 'in', ticketIds)).execute()
  await db.updateTable('dispatch_steps').set({ body: ERASED, to_address: erasedPhone, media_url: null })
    .where('dispatch_id', 'in', db.selectFrom('dispatches').select('id').where('ticket_id', 'in', ticketIds)).execute()
  const tickets = await db.updateTable('tickets').set({ last_message_preview: ERASED }).where('contact_id', '=', contactId).executeTakeFirst()
  return { tickets: Number(tickets.numUpdatedRows), messages: Number(messages.numUpdatedRows) }
}

/** Closed tickets whose texts are due for retention: closed before `cutoff`, and not erased since they closed. */
export function listTicketsDueForRetention (db: Executor, cutoff: string, limit: number) {
  return db.selectFrom('tickets').select(['id', 'contact_id'])
    .where('status', '=', 'closed').where('closed_at', '<', cutoff)
    .where((eb) => eb.or([eb('texts_erased_at', 'is', null), eb('texts_erased_at', '<', eb.ref('closed_at'))]))
    .orderBy('closed_at').orderBy('id').limit(limit).execute()
}

/**
 * Erases the message texts of one closed ticket, guarded: a ticket reopened since it was listed
 * is left alone. Messages still on their way out keep their text (it is what will be sent).
 * Returns how many messages were erased, or null when the ticket was no longer due.
 */
export async function eraseTicketTexts (db: Executor, ticketId: number, cutoff: string, now: string): Promise<number | null> {
  const marked = await db.updateTable('tickets').set({ texts_erased_at: now, last_message_preview: ERASED })
    .where('id', '=', ticketId).where('status', '=', 'closed').where('closed_at', '<', cutoff)
    .returning('id').executeTakeFirst()
  if (marked === undefined) return null
  const erased = await db.updateTable('messages')
    .set({ body: ERASED, original_body: sql<string | null>`case when original_body is null then null else ${ERASED} end` })
    .where('ticket_id', '=', ticketId).where('body', '<>', ERASED).where('status', 'not in', ['queued', 'sending', 'unknown'])
    .executeTakeFirst()
  await db.updateTable('dispatch_steps').set({ body: ERASED, media_url: null })
    .where('dispatch_id', 'in', db.selectFrom('dispatches').select('id').where('ticket_id', '=', ticketId)).execute()
  await db.deleteFrom('message_media').where('message_id', 'in', db.selectFrom('messages').select('id')
    .where('ticket_id', '=', ticketId).where('status', 'not in', ['queued', 'sending', 'unknown'])).execute()
  return Number(erased.numUpdatedRows)
}

export async function insertAudit (db: Executor, a: { action: AuditAction, agentId: number | null, contactId: number | null, ticketId: number | null, detail: string | null }, now: string): Promise<void> {
  await db.insertInto('audit_log').values({ action: a.action, agent_id: a.agentId, contact_id: a.contactId, ticket_id: a.ticketId, detail: a.detail, created_at: now }).execute()
}

/** The audit log, newest first; of one contact when `contactId` is given. */
export function listAudit (db: Executor, opts: { contactId?: number, limit: number }) {
  let q = db.selectFrom('audit_log').leftJoin('agents', 'agents.id', 'audit_log.agent_id')
    .select(['audit_log.id', 'audit_log.action', 'audit_log.contact_id', 'audit_log.ticket_id', 'audit_log.detail', 'audit_log.created_at', 'agents.name as agent_name'])
  if (opts.contactId !== undefined) q = q.where('audit_log.contact_id', '=', opts.contactId)
  return q.orderBy('audit_log.id', 'desc').limit(opts.limit).execute()
}
