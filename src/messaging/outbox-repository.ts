import type { Expression, ExpressionBuilder, SqlBool } from 'kysely'
import { engineOf, type Executor } from '../db/database.js'
import { param, prepared } from '../db/prepared.js'
import type { Database, OutboxKind, OutboxRow } from '../db/schema.js'

export interface NewOutboxItem {
  kind: OutboxKind
  messageId?: string | null
  dispatchId?: string | null
  payload?: unknown
  runAt: string
}

const qInsertOutbox = prepared<{ kind: OutboxKind, messageId: string | null, dispatchId: string | null, payload: string | null, runAt: string, now: string }, never>((db) =>
  db.insertInto('outbox').values({
    kind: param('kind'),
    message_id: param('messageId'),
    dispatch_id: param('dispatchId'),
    payload: param('payload'),
    run_at: param('runAt'),
    created_at: param('now')
  }))

export async function insertOutbox (db: Executor, item: NewOutboxItem, now: string): Promise<void> {
  await qInsertOutbox(db, {
    kind: item.kind,
    messageId: item.messageId ?? null,
    dispatchId: item.dispatchId ?? null,
    payload: item.payload === undefined ? null : JSON.stringify(item.payload),
    runAt: item.runAt,
    now
  })
}

/**
 * Claims up to `limit` due rows by setting a lease, in one statement. A row whose lease has lapsed
 * (its worker died) is due again; what a second attempt may do is decided from the message's own
 * status. Returns them in due order.
 */
export async function claimDue (db: Executor, now: string, leaseUntil: string, limit: number, kind?: OutboxKind): Promise<OutboxRow[]> {
  const due = (eb: ExpressionBuilder<Database, 'outbox'>): Expression<SqlBool> => eb.and([
    eb('run_at', '<=', now),
    eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)])
  ])
  const rows = await db.updateTable('outbox')
    // run_at moves to the lease's end too: the row is due again exactly when the lease lapses, and
    // claimed rows drop out of the due range instead of being scanned past on every claim.
    .set({ locked_until: leaseUntil, run_at: leaseUntil })
    .where('id', 'in', (eb) => {
      let q = eb.selectFrom('outbox').select('id').where(due)
      if (kind !== undefined) q = q.where('kind', '=', kind)
      q = q.orderBy('run_at').orderBy('id').limit(limit)
      // Several instances' workers claim at once on PostgreSQL: each skips the rows another is
      // claiming instead of waiting for them, and a row another claim has just taken no longer
      // matches once its lock is granted (PostgreSQL re-reads it). SQLite has one writer.
      return engineOf(db) === 'postgres' ? q.forUpdate().skipLocked() : q
    })
    .where(due)
    .returningAll()
    .execute()
  return rows.sort((a, b) => a.run_at < b.run_at ? -1 : a.run_at > b.run_at ? 1 : a.id - b.id)
}

// Run for every send, so compiled once.
const qDeleteOutbox = prepared<{ id: number }, never>((db) => db.deleteFrom('outbox').where('id', '=', param<number>('id')))

export async function deleteOutbox (db: Executor, id: number): Promise<void> {
  await qDeleteOutbox(db, { id })
}

export async function rescheduleOutbox (db: Executor, id: number, runAt: string, lastError: string | null): Promise<void> {
  await db.updateTable('outbox')
    .set((eb) => ({ run_at: runAt, locked_until: null, last_error: lastError, attempts: eb('attempts', '+', 1) }))
    .where('id', '=', id).execute()
}

/** A row that is not due yet after all (a send held to a later time): due again at `runAt`, no attempt counted. */
export async function postponeOutbox (db: Executor, id: number, runAt: string): Promise<void> {
  await db.updateTable('outbox').set({ run_at: runAt, locked_until: null }).where('id', '=', id).execute()
}

/**
 * Moves the send of a message that is still waiting to `runAt`. A row leased by a worker right now
 * is left alone: the worker reads the message's send_at before it sends (outbox-worker.ts).
 */
export async function rescheduleSend (db: Executor, messageId: string, runAt: string, now: string): Promise<void> {
  await db.updateTable('outbox').set({ run_at: runAt })
    .where('kind', '=', 'send').where('message_id', '=', messageId)
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
    .execute()
}

export async function deleteOutboxFor (db: Executor, kind: OutboxKind, ref: { messageId?: string, dispatchId?: string }): Promise<void> {
  let q = db.deleteFrom('outbox').where('kind', '=', kind)
  if (ref.messageId !== undefined) q = q.where('message_id', '=', ref.messageId)
  if (ref.dispatchId !== undefined) q = q.where('dispatch_id', '=', ref.dispatchId)
  await q.execute()
}

/**
 * For metrics at scrape time: rows due now (and the oldest of them) and rows waiting for a later
 * time (backoff, failover deadlines, leases of sends in flight). Both are range reads of the
 * `outbox_due` index, so a scrape never reads the table itself.
 */
export async function outboxBacklog (db: Executor, now: string): Promise<{ due: number, scheduled: number, oldestDueRunAt: string | null }> {
  const due = await db.selectFrom('outbox')
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.min('run_at').as('oldest')])
    .where('run_at', '<=', now).executeTakeFirstOrThrow()
  const later = await db.selectFrom('outbox')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('run_at', '>', now).executeTakeFirstOrThrow()
  return { due: Number(due.n), scheduled: Number(later.n), oldestDueRunAt: due.oldest ?? null }
}
