import { sql } from 'kysely'
import type { Executor } from '../db/database.js'
import type { ContactField } from '../db/schema.js'

// SQL for customer profiles: the contact with who wrote their notes, the history of their name and
// notes, their consent history (the STOP/START events of all their tickets) and all their tickets.

export function findProfileContact (db: Executor, id: number) {
  return db.selectFrom('contacts').leftJoin('agents', 'agents.id', 'contacts.notes_updated_by')
    .select(['contacts.id', 'contacts.phone', 'contacts.name', 'contacts.opted_out_at', 'contacts.created_at', 'contacts.notes', 'contacts.notes_updated_at', 'contacts.erased_at', 'agents.name as notes_updated_by_name'])
    .where('contacts.id', '=', id).executeTakeFirst()
}

export async function updateContactName (db: Executor, id: number, name: string | null, now: string): Promise<void> {
  await db.updateTable('contacts').set({ name, updated_at: now }).where('id', '=', id).execute()
}

export async function updateContactNotes (db: Executor, id: number, notes: string | null, agentId: number, now: string): Promise<void> {
  await db.updateTable('contacts').set({ notes, notes_updated_by: agentId, notes_updated_at: now, updated_at: now }).where('id', '=', id).execute()
}

export async function insertContactChange (db: Executor, c: { contactId: number, field: ContactField, value: string | null, agentId: number }, now: string): Promise<void> {
  await db.insertInto('contact_changes').values({ contact_id: c.contactId, field: c.field, value: c.value, agent_id: c.agentId, created_at: now }).execute()
}

/** The latest changes of a contact's name and notes, newest first. */
export function listContactChanges (db: Executor, contactId: number, limit = 50) {
  return db.selectFrom('contact_changes').innerJoin('agents', 'agents.id', 'contact_changes.agent_id')
    .select(['contact_changes.id', 'contact_changes.field', 'contact_changes.value', 'contact_changes.created_at', 'agents.name as agent_name'])
    .where('contact_changes.contact_id', '=', contactId).orderBy('contact_changes.id', 'desc').limit(limit).execute()
}

/** Every STOP and START the contact sent, on any of their tickets, newest first. */
export function listConsentEvents (db: Executor, contactId: number) {
  return db.selectFrom('ticket_events').innerJoin('tickets', 'tickets.id', 'ticket_events.ticket_id')
    .select(['ticket_events.id', 'ticket_events.kind', 'ticket_events.created_at', 'ticket_events.ticket_id'])
    .where('tickets.contact_id', '=', contactId).where('ticket_events.kind', 'in', ['opt_out', 'opt_in'])
    .orderBy('ticket_events.created_at', 'desc').orderBy('ticket_events.id', 'desc').execute()
}

/** All the contact's tickets, latest activity first. */
export function listContactTickets (db: Executor, contactId: number) {
  return db.selectFrom('tickets').leftJoin('agents', 'agents.id', 'tickets.assignee_id')
    .select(['tickets.id', 'tickets.status', 'tickets.created_at', 'tickets.last_message_at', 'tickets.last_message_preview', 'tickets.merged_into', 'agents.name as assignee_name'])
    .where('tickets.contact_id', '=', contactId)
    .orderBy('tickets.last_message_at', 'desc').orderBy('tickets.id', 'desc').execute()
}

/** Contacts for the "New message" picker: named ones first, by name, then by number. */
export function listContactsForPicker (db: Executor, limit = 500) {
  return db.selectFrom('contacts').select(['id', 'phone', 'name', 'opted_out_at'])
    // Both engines alike: SQLite sorts NULLs first, PostgreSQL last.
    .orderBy(sql`case when name is null then 1 else 0 end`).orderBy('name').orderBy('phone').limit(limit).execute()
}

/**
 * Spends a "New message" form's one-time token for `agentId`: true when this call spent it, false
 * when it was spent before (a double click, a resubmitted page). The primary key decides a race;
 * ON CONFLICT DO NOTHING keeps the transaction usable on Postgres, where the second insert waits
 * for the first transaction and then does nothing.
 */
export async function spendConversationToken (db: Executor, token: string, agentId: number, now: string): Promise<boolean> {
  const row = await db.insertInto('conversation_tokens').values({ token, agent_id: agentId, ticket_id: null, created_at: now })
    .onConflict((oc) => oc.column('token').doNothing()).returning('token').executeTakeFirst()
  return row !== undefined
}

export async function recordConversationTicket (db: Executor, token: string, ticketId: number): Promise<void> {
  await db.updateTable('conversation_tokens').set({ ticket_id: ticketId }).where('token', '=', token).execute()
}

export function findConversationToken (db: Executor, token: string) {
  return db.selectFrom('conversation_tokens').select(['agent_id', 'ticket_id']).where('token', '=', token).executeTakeFirst()
}

/** Tokens older than `before` can no longer be resubmitted by anyone's double click. */
export async function pruneConversationTokens (db: Executor, before: string): Promise<void> {
  await db.deleteFrom('conversation_tokens').where('created_at', '<', before).execute()
}
