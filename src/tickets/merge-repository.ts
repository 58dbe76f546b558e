import { sql } from 'kysely'
import { engineOf, type Executor } from '../db/database.js'
import type { TicketStatus } from '../db/schema.js'
import { primaryChannel } from '../messaging/address.js'

// All SQL for merging tickets and customers. Every function takes the transaction the merge runs
// in; merge-service.ts decides its boundaries.

/**
 * Locks tickets (or contacts) for the rest of the transaction, lowest id first, so two merges
 * that name the same rows in opposite roles queue instead of deadlocking, and each reads the
 * other's result. PostgreSQL: SELECT … FOR UPDATE. SQLite: the transaction already holds the one
 * writer's lock, so there is nothing to take.
 */
export async function lockRows (db: Executor, table: 'tickets' | 'contacts', ids: number[]): Promise<void> {
  if (engineOf(db) !== 'postgres') return
  await db.selectFrom(table).select('id').where('id', 'in', ids).orderBy('id').forUpdate().execute()
}

export function findMergeTicket (db: Executor, id: number) {
  return db.selectFrom('tickets')
    .select(['id', 'contact_id', 'status', 'assignee_id', 'merged_into', 'message_count', 'last_message_at', 'last_message_preview',
      'last_message_direction', 'last_sender', 'last_sender_agent_id', 'last_customer_message_at', 'awaiting_reply_since'])
    .where('id', '=', id).executeTakeFirst()
}

export type MergeTicket = NonNullable<Awaited<ReturnType<typeof findMergeTicket>>>

/**
 * Closes `sourceId` as merged into `targetId` if it is still in `expected` and not merged (a
 * guarded UPDATE: false when a concurrent change or merge got there first, and nothing changed).
 */
export async function markMerged (db: Executor, sourceId: number, targetId: number, expected: { status: TicketStatus, assigneeId: number | null }, by: number, now: string): Promise<boolean> {
  const res = await db.updateTable('tickets')
    .set({
      merged_into: targetId,
      status: 'closed',
      updated_at: now,
      ...(expected.status !== 'closed' ? { status_at: now, closed_at: now, closed_by: by } : {})
    })
    .where('id', '=', sourceId)
    .where('merged_into', 'is', null)
    .where('status', '=', expected.status)
    .where('assignee_id', expected.assigneeId === null ? 'is' : '=', expected.assigneeId)
    .executeTakeFirst()
  return res.numUpdatedRows > 0n
}

/**
 * Moves everything a ticket holds to another one: its messages (and the `#ref` tags that named
 * it), notes, timeline events, failover dispatches and "New message" tokens; tickets merged into
 * it before now name the new one. Read marks of the merged ticket are dropped (it is shown nowhere).
 */
export async function moveTicketContents (db: Executor, fromId: number, toId: number): Promise<void> {
  await db.updateTable('messages').set({ ticket_id: toId }).where('ticket_id', '=', fromId).execute()
  await db.updateTable('messages').set({ ref_ticket_id: toId }).where('ref_ticket_id', '=', fromId).execute()
  await db.updateTable('notes').set({ ticket_id: toId }).where('ticket_id', '=', fromId).execute()
  await db.updateTable('ticket_events').set({ ticket_id: toId }).where('ticket_id', '=', fromId).execute()
  await db.updateTable('dispatches').set({ ticket_id: toId }).where('ticket_id', '=', fromId).execute()
  await db.updateTable('conversation_tokens').set({ ticket_id: toId }).where('ticket_id', '=', fromId).execute()
  await db.updateTable('tickets').set({ merged_into: toId }).where('merged_into', '=', fromId).execute()
  await db.deleteFrom('agent_ticket_reads').where('ticket_id', '=', fromId).execute()
}

/** The merged ticket's list columns (its latest message, counts, waiting time), set on the one that stays. */
export async function setMergedListColumns (db: Executor, ticketId: number, cols: Pick<MergeTicket, 'message_count' | 'last_message_at' | 'last_message_preview' | 'last_message_direction' | 'last_sender' | 'last_sender_agent_id' | 'last_customer_message_at' | 'awaiting_reply_since'>, now: string): Promise<void> {
  await db.updateTable('tickets').set({ ...cols, updated_at: now }).where('id', '=', ticketId).execute()
}

export async function insertMergeEvent (db: Executor, e: { ticketId: number, kind: 'merged_into' | 'merged_from', agentId: number, otherTicketId: number }, now: string): Promise<void> {
  await db.insertInto('ticket_events').values({ ticket_id: e.ticketId, kind: e.kind, agent_id: e.agentId, other_ticket_id: e.otherTicketId, created_at: now }).execute()
}

/** The ticket a reference leads to: itself, or the ticket it was merged into. */
export async function resolveTicketId (db: Executor, id: number): Promise<number | undefined> {
  const row = await db.selectFrom('tickets').select(['id', 'merged_into']).where('id', '=', id).executeTakeFirst()
  return row === undefined ? undefined : row.merged_into ?? row.id
}

// Customers

export function findMergeContact (db: Executor, id: number) {
  return db.selectFrom('contacts').select(['id', 'phone', 'name', 'notes', 'opted_out_at', 'erased_at']).where('id', '=', id).executeTakeFirst()
}

export type MergeContact = NonNullable<Awaited<ReturnType<typeof findMergeContact>>>

/** The contact a merged contact went into, when `id` was merged (the latest such merge). */
export async function findContactMergedInto (db: Executor, id: number): Promise<number | undefined> {
  const row = await db.selectFrom('contact_merges').select('into_contact_id').where('from_contact_id', '=', id).orderBy('id', 'desc').limit(1).executeTakeFirst()
  return row?.into_contact_id
}

/**
 * Gives every number, address, ticket and history row of `fromId` to `intoId`, and `fromId`'s own
 * phone becomes an SMS address of `intoId` after its addresses (then the merged contact's, in
 * their order). The numbers move by updating the registry rows, so a number is never held by two
 * contacts, not even inside the transaction; their addresses follow through the foreign key's ON
 * UPDATE CASCADE. The merged contact's row is deleted: its own phone's foreign key is deferred to
 * commit, when the row is gone.
 */
export async function moveContact (db: Executor, from: { id: number, phone: string }, intoId: number, now: string): Promise<void> {
  const last = await db.selectFrom('contact_addresses').select((eb) => eb.fn.max('position').as('p')).where('contact_id', '=', intoId).executeTakeFirst()
  const base = last?.p === null || last?.p === undefined ? 1 : Number(last.p) + 1
  await db.updateTable('contact_addresses').set((eb) => ({ position: eb('position', '+', base + 1) })).where('contact_id', '=', from.id).execute()
  await db.updateTable('contact_numbers').set({ contact_id: intoId }).where('contact_id', '=', from.id).execute()
  await db.insertInto('contact_addresses').values({ contact_id: intoId, channel: primaryChannel(from.phone), address: from.phone, position: base, created_at: now }).execute()
  await db.updateTable('tickets').set({ contact_id: intoId }).where('contact_id', '=', from.id).execute()
  await db.updateTable('contact_changes').set({ contact_id: intoId }).where('contact_id', '=', from.id).execute()
  await db.updateTable('contact_address_conflicts').set({ contact_id: intoId }).where('contact_id', '=', from.id).execute()
  await db.updateTable('contact_address_conflicts').set({ owner_contact_id: intoId }).where('owner_contact_id', '=', from.id).execute()
  await db.updateTable('contact_merges').set({ into_contact_id: intoId }).where('into_contact_id', '=', from.id).execute()
  // The limits on automatic answers are the contact's that stays.
  await db.deleteFrom('auto_replies').where('contact_id', '=', from.id).execute()
  await db.deleteFrom('contacts').where('id', '=', from.id).execute()
}

export async function updateMergedContact (db: Executor, id: number, set: { name: string | null, notes: string | null, opted_out_at: string | null }, now: string): Promise<void> {
  await db.updateTable('contacts').set({ ...set, updated_at: now }).where('id', '=', id).execute()
}

export async function insertContactMerge (db: Executor, m: { from: { id: number, phone: string, name: string | null }, intoId: number, agentId: number }, now: string): Promise<void> {
  await db.insertInto('contact_merges').values({ from_contact_id: m.from.id, from_phone: m.from.phone, from_name: m.from.name, into_contact_id: m.intoId, agent_id: m.agentId, created_at: now }).execute()
}

/** The customers merged into a contact, newest first, with who merged them. */
export function listContactMerges (db: Executor, intoId: number) {
  return db.selectFrom('contact_merges').innerJoin('agents', 'agents.id', 'contact_merges.agent_id')
    .select(['contact_merges.id', 'contact_merges.from_contact_id', 'contact_merges.from_phone', 'contact_merges.from_name', 'contact_merges.created_at', 'agents.name as agent_name'])
    .where('contact_merges.into_contact_id', '=', intoId).orderBy('contact_merges.id', 'desc').execute()
}

/** Other customers an agent may merge into this one, for the profile's picker: named ones first. */
export function listMergeCandidates (db: Executor, exceptId: number, limit = 500) {
  return db.selectFrom('contacts').select(['id', 'phone', 'name']).where('id', '<>', exceptId)
    .orderBy(sql`case when name is null then 1 else 0 end`).orderBy('name').orderBy('phone').limit(limit).execute()
}

/** The contact's other tickets that are not merged, for the ticket page's merge picker. */
export function listMergeTargets (db: Executor, contactId: number, exceptId: number, limit = 50) {
  return db.selectFrom('tickets').select(['id', 'status', 'created_at', 'last_message_preview'])
    .where('contact_id', '=', contactId).where('id', '<>', exceptId).where('merged_into', 'is', null)
    .orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute()
}
