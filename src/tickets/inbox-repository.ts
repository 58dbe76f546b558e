import { sql } from 'kysely'
import { randomInt } from 'node:crypto'
import { engineOf, type Executor } from '../db/database.js'
import type { TicketEventKind, TicketStatus } from '../db/schema.js'

// All SQL for the team inbox: views, their counters, unread marks, notes, the timeline's events,
// assignment and availability. Every view's page is a range scan of one index (see the migration
// 20261212T0900-team-inbox) and every count a primary-key read of `ticket_counts`.

export const VIEWS = ['mine', 'unassigned', 'open', 'pending', 'closed'] as const
export type View = typeof VIEWS[number]

export interface ListCursor { at: string, id: number }

/** One page of a view, newest first (closed: latest close first), by keyset. */
export function listView (db: Executor, view: View, agentId: number, limit: number, before: ListCursor | null) {
  let q = db.selectFrom('tickets as t')
    .innerJoin('contacts as c', 'c.id', 't.contact_id')
    .leftJoin('agents as assignee', 'assignee.id', 't.assignee_id')
    .leftJoin('agents as sender', 'sender.id', 't.last_sender_agent_id')
    .leftJoin('agent_ticket_reads as r', (join) => join.onRef('r.ticket_id', '=', 't.id').on('r.agent_id', '=', agentId))
    .select([
      't.id', 't.status', 't.created_at', 't.closed_at', 't.last_message_at', 't.last_message_preview', 't.last_message_direction',
      't.last_sender', 't.last_sender_agent_id', 'sender.name as sender_name', 't.assignee_id', 'assignee.name as assignee_name',
      't.awaiting_reply_since', 't.last_customer_message_at', 'r.read_at',
      't.contact_id', 'c.phone', 'c.name as contact_name', 'c.opted_out_at'
    ])
  const order = view === 'closed' ? 't.closed_at' : 't.last_message_at'
  // Literal statuses, so SQLite matches the partial indexes (Postgres plans them either way).
  if (view === 'mine') q = q.where('t.status', '=', sql.lit('open')).where('t.assignee_id', '=', agentId)
  else if (view === 'unassigned') q = q.where('t.status', '=', sql.lit('open')).where('t.assignee_id', 'is', null)
  else q = q.where('t.status', '=', sql.lit(view === 'closed' ? 'closed' : view))
  // A merged ticket is closed, but shown in no view: its messages are on the ticket it went into.
  if (view === 'closed') q = q.where('t.merged_into', 'is', null)
  if (before !== null) q = q.where((eb) => eb(eb.refTuple(order, 't.id'), '<', eb.tuple(before.at, before.id)))
  return q.orderBy(order, 'desc').orderBy('t.id', 'desc').limit(limit).execute()
}

export type ListRow = Awaited<ReturnType<typeof listView>>[number]

/** The counter buckets a ticket in this state is counted in. */
export function bucketsOf (status: TicketStatus, assigneeId: number | null): string[] {
  if (status !== 'open') return [status]
  return ['open', assigneeId === null ? 'unassigned' : `agent:${assigneeId}`]
}

/** Moves a ticket between counter buckets (or into them: `from` null), in the caller's transaction. */
export async function adjustCounts (db: Executor, from: { status: TicketStatus, assigneeId: number | null } | null, to: { status: TicketStatus, assigneeId: number | null } | null): Promise<void> {
  const delta = new Map<string, number>()
  for (const b of from === null ? [] : bucketsOf(from.status, from.assigneeId)) delta.set(b, (delta.get(b) ?? 0) - 1)
  for (const b of to === null ? [] : bucketsOf(to.status, to.assigneeId)) delta.set(b, (delta.get(b) ?? 0) + 1)
  // One shard per transaction, and buckets always in the same order: two transactions never wait
  // for each other's rows in opposite orders (no deadlock), and on PostgreSQL concurrent ones
  // mostly touch different rows instead of queueing on one (see the counter-shards migration).
  const shard = engineOf(db) === 'postgres' ? randomInt(COUNTER_SHARDS) : 0
  // One statement for all of them: both engines take the rows in the order of the VALUES list.
  const rows = [...delta].filter(([, n]) => n !== 0).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([bucket, n]) => ({ bucket, shard, n }))
  if (rows.length === 0) return
  await db.insertInto('ticket_counts').values(rows)
    .onConflict((oc) => oc.columns(['bucket', 'shard']).doUpdateSet((eb) => ({ n: eb('ticket_counts.n', '+', eb.ref('excluded.n')) })))
    .execute()
}

/** Rows per counter on PostgreSQL: enough that concurrent transactions rarely meet on one. */
const COUNTER_SHARDS = 16

export async function readCounts (db: Executor, agentId: number): Promise<Record<View, number>> {
  const mine = `agent:${agentId}`
  const rows = await db.selectFrom('ticket_counts').select(['bucket', (eb) => eb.fn.sum<number>('n').as('n')])
    .where('bucket', 'in', ['open', 'pending', 'closed', 'unassigned', mine]).groupBy('bucket').execute()
  const n = (bucket: string): number => Number(rows.find((r) => r.bucket === bucket)?.n ?? 0)
  return { mine: n(mine), unassigned: n('unassigned'), open: n('open'), pending: n('pending'), closed: n('closed') }
}

/** `unread` counts up to this many; the tab title shows "(99+)" from here on. */
export const UNREAD_CAP = 100

/**
 * Unread tickets in the agent's Mine and Unassigned views: those whose newest customer message is
 * newer than the agent's last opening. Two range scans of the open-by-assignee index that stop at
 * UNREAD_CAP unread rows: the cost is bounded by the open work in those two views (read tickets
 * are walked past), never by the table. Exact below the cap.
 */
export async function countUnread (db: Executor, agentId: number): Promise<number> {
  let total = 0
  for (const assignee of [agentId, null]) {
    const unread = db.selectFrom('tickets as t')
      .leftJoin('agent_ticket_reads as r', (join) => join.onRef('r.ticket_id', '=', 't.id').on('r.agent_id', '=', agentId))
      .select(sql.lit(1).as('one'))
      .where('t.status', '=', sql.lit('open'))
      .where('t.assignee_id', assignee === null ? 'is' : '=', assignee)
      .where('t.last_customer_message_at', 'is not', null)
      .where((eb) => eb.or([eb('r.read_at', 'is', null), eb('r.read_at', '<', eb.ref('t.last_customer_message_at'))]))
      .limit(UNREAD_CAP - total)
    const row = await db.selectFrom(unread.as('u')).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()
    total += Number(row.n)
    if (total >= UNREAD_CAP) break
  }
  return total
}

/** The fields of a ticket that decide its views. */
export interface TicketState { status: TicketStatus, assigneeId: number | null }

export function findTicketState (db: Executor, id: number) {
  return db.selectFrom('tickets').select(['id', 'status', 'assignee_id', 'contact_id', 'closed_at', 'merged_into']).where('id', '=', id).executeTakeFirst()
}

/**
 * Moves a ticket from `expected` to `next` if it is still in `expected` (a guarded UPDATE; true
 * when it changed the row). The caller adjusts the counters only then, so they stay exact under
 * concurrent changes.
 */
export async function updateTicketState (db: Executor, id: number, expected: TicketState, next: TicketState, by: number | null, now: string): Promise<boolean> {
  const statusChanged = expected.status !== next.status
  const res = await db.updateTable('tickets')
    .set({
      status: next.status,
      assignee_id: next.assigneeId,
      updated_at: now,
      ...(statusChanged ? { status_at: now } : {}),
      ...(statusChanged && next.status === 'closed' ? { closed_at: now, closed_by: by } : {}),
      ...(statusChanged && expected.status === 'closed' ? { closed_at: null, closed_by: null } : {})
    })
    .where('id', '=', id)
    // A merged ticket never moves again: it is counted in no view (merge-repository.ts).
    .where('merged_into', 'is', null)
    .where('status', '=', expected.status)
    .where('assignee_id', expected.assigneeId === null ? 'is' : '=', expected.assigneeId)
    .executeTakeFirst()
  return res.numUpdatedRows > 0n
}

export async function insertTicketEvent (db: Executor, e: { ticketId: number, kind: TicketEventKind, agentId: number | null, targetAgentId?: number | null, fromStatus?: TicketStatus | null, toStatus?: TicketStatus | null, messageId?: string | null }, now: string): Promise<void> {
  await db.insertInto('ticket_events').values({
    ticket_id: e.ticketId,
    kind: e.kind,
    agent_id: e.agentId,
    target_agent_id: e.targetAgentId ?? null,
    from_status: e.fromStatus ?? null,
    to_status: e.toStatus ?? null,
    message_id: e.messageId ?? null,
    created_at: now
  }).execute()
}

export function listTicketEvents (db: Executor, ticketId: number) {
  return db.selectFrom('ticket_events as e')
    .leftJoin('agents as actor', 'actor.id', 'e.agent_id')
    .leftJoin('agents as target', 'target.id', 'e.target_agent_id')
    .selectAll('e')
    .select(['actor.name as actor_name', 'target.name as target_name'])
    .where('e.ticket_id', '=', ticketId)
    .orderBy('e.id')
    .execute()
}

/** The latest status change of a ticket (undo of a close). */
export function latestStatusEvent (db: Executor, ticketId: number) {
  return db.selectFrom('ticket_events').selectAll()
    .where('ticket_id', '=', ticketId).where('kind', '=', 'status')
    .orderBy('id', 'desc').limit(1).executeTakeFirst()
}

export async function insertNote (db: Executor, ticketId: number, agentId: number, body: string, now: string): Promise<number> {
  const row = await db.insertInto('notes').values({ ticket_id: ticketId, agent_id: agentId, body, created_at: now }).returning('id').executeTakeFirstOrThrow()
  return row.id
}

export function listNotes (db: Executor, ticketId: number) {
  return db.selectFrom('notes').innerJoin('agents', 'agents.id', 'notes.agent_id')
    .selectAll('notes').select('agents.name as agent_name')
    .where('notes.ticket_id', '=', ticketId).orderBy('notes.id').execute()
}

export async function markRead (db: Executor, agentId: number, ticketId: number, now: string): Promise<void> {
  await db.insertInto('agent_ticket_reads').values({ agent_id: agentId, ticket_id: ticketId, read_at: now })
    .onConflict((oc) => oc.columns(['agent_id', 'ticket_id']).doUpdateSet((eb) => ({ read_at: eb.ref('excluded.read_at') })))
    .execute()
}

export async function markUnread (db: Executor, agentId: number, ticketId: number): Promise<void> {
  await db.deleteFrom('agent_ticket_reads').where('agent_id', '=', agentId).where('ticket_id', '=', ticketId).execute()
}

/** The contact's other tickets, newest first: "earlier tickets" of a returning customer. */
export function listOtherTickets (db: Executor, contactId: number, exceptId: number, limit = 10) {
  return db.selectFrom('tickets').select(['id', 'status', 'created_at', 'closed_at', 'last_message_preview', 'merged_into'])
    .where('contact_id', '=', contactId).where('id', '<>', exceptId)
    .orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute()
}

/** The contact's latest ticket closed at or after `since`, for the reopen window. */
export function findClosedSince (db: Executor, contactId: number, since: string) {
  return db.selectFrom('tickets').select(['id', 'assignee_id', 'closed_at'])
    .where('contact_id', '=', contactId).where('status', '=', sql.lit('closed')).where('closed_at', '>=', since)
    .where('merged_into', 'is', null)
    .orderBy('closed_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst()
}

/** One closed ticket of a contact, when it was closed at or after `since`. */
export function findClosedTicket (db: Executor, contactId: number, ticketId: number, since: string) {
  return db.selectFrom('tickets').select(['id', 'assignee_id', 'closed_at'])
    .where('id', '=', ticketId).where('contact_id', '=', contactId).where('status', '=', sql.lit('closed')).where('closed_at', '>=', since)
    .where('merged_into', 'is', null)
    .executeTakeFirst()
}

export function listActiveAgents (db: Executor) {
  return db.selectFrom('agents').select(['id', 'name', 'available']).where('disabled_at', 'is', null).orderBy('name').orderBy('id').execute()
}

export function findActiveAgent (db: Executor, id: number) {
  return db.selectFrom('agents').select(['id', 'name']).where('id', '=', id).where('disabled_at', 'is', null).executeTakeFirst()
}

export async function setAvailability (db: Executor, agentId: number, available: boolean, now: string): Promise<void> {
  await db.updateTable('agents').set({ available: available ? 1 : 0, updated_at: now }).where('id', '=', agentId).execute()
}

export async function isAvailable (db: Executor, agentId: number): Promise<boolean> {
  const row = await db.selectFrom('agents').select('available').where('id', '=', agentId).executeTakeFirst()
  return row?.available === 1
}

/**
 * Round robin: the available, enabled agent who was given a ticket longest ago (never first, then
 * by id), among those with fewer than `maxOpen` open tickets. Agents are few: this reads them all.
 */
export async function nextAgentForAutoAssign (db: Executor, maxOpen: number): Promise<number | undefined> {
  const agents = await db.selectFrom('agents as a')
    .select(['a.id', (eb) => eb.selectFrom('ticket_counts as k').select((k) => k.fn.sum<number>('k.n').as('n'))
      .where('k.bucket', '=', sql<string>`${sql.lit('agent:')} || cast(a.id as text)`).as('n')])
    .where('a.available', '=', 1).where('a.disabled_at', 'is', null)
    .orderBy(sql`coalesce(a.last_assigned_at, '')`).orderBy('a.id')
    .execute()
  return agents.find((a) => Number(a.n ?? 0) < maxOpen)?.id
}

export async function markAutoAssigned (db: Executor, agentId: number, now: string): Promise<void> {
  await db.updateTable('agents').set({ last_assigned_at: now }).where('id', '=', agentId).execute()
}

/** Pending tickets that have waited since `cutoff` or longer, oldest first. */
export function listPendingSince (db: Executor, cutoff: string, limit: number) {
  return db.selectFrom('tickets').select(['id', 'assignee_id'])
    .where('status', '=', sql.lit('pending')).where('status_at', '<=', cutoff)
    .orderBy('status_at').orderBy('id').limit(limit).execute()
}

/** The newest agent reply on a ticket by someone other than `agentId`, written after `after`. */
export function latestReplyByOthers (db: Executor, ticketId: number, agentId: number, after: string) {
  return db.selectFrom('messages').leftJoin('agents', 'agents.id', 'messages.agent_id')
    .select(['messages.id', 'messages.body', 'messages.created_at', 'agents.name as agent_name'])
    .where('messages.ticket_id', '=', ticketId).where('messages.kind', '=', 'reply')
    .where('messages.created_at', '>', after)
    .where((eb) => eb.or([eb('messages.agent_id', '<>', agentId), eb('messages.agent_id', 'is', null)]))
    .orderBy('messages.created_at', 'desc').limit(1).executeTakeFirst()
}

/** When a timeline item (a message id, `note-<id>` or `event-<id>`) of the ticket was written. */
export async function timelineItemTime (db: Executor, ticketId: number, itemId: string): Promise<string | undefined> {
  const n = /^(note|event)-(\d+)$/.exec(itemId)
  if (n?.[1] === 'note') return (await db.selectFrom('notes').select('created_at').where('id', '=', Number(n[2])).where('ticket_id', '=', ticketId).executeTakeFirst())?.created_at
  if (n?.[1] === 'event') return (await db.selectFrom('ticket_events').select('created_at').where('id', '=', Number(n[2])).where('ticket_id', '=', ticketId).executeTakeFirst())?.created_at
  return (await db.selectFrom('messages').select('created_at').where('id', '=', itemId).where('ticket_id', '=', ticketId).executeTakeFirst())?.created_at
}
