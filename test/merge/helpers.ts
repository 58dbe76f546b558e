import type { Test } from 'tap'
import type { Db } from '../../src/db/database.js'
import { bucketsOf } from '../../src/tickets/inbox-repository.js'

/** The view counters as stored (buckets with a count), and as a full count of the tickets says they must be. */
export async function countersMatchRecount (t: Test, db: Db, what: string): Promise<void> {
  const stored = await db.selectFrom('ticket_counts').select(['bucket', (eb) => eb.fn.sum<number>('n').as('n')]).groupBy('bucket').execute()
  const actual = Object.fromEntries(stored.map((r) => [r.bucket, Number(r.n)]).filter(([, n]) => n !== 0))
  const expected: Record<string, number> = {}
  // A merged ticket is counted in no view.
  for (const r of await db.selectFrom('tickets').select(['status', 'assignee_id']).where('merged_into', 'is', null).execute()) {
    for (const b of bucketsOf(r.status, r.assignee_id)) expected[b] = (expected[b] ?? 0) + 1
  }
  t.same(actual, expected, `${what}: the view counters equal a recount`)
}

/** Every message id, per ticket, and the total: the evidence that nothing was lost or duplicated. */
export async function messageIds (db: Db): Promise<{ total: number, byTicket: Record<number, string[]> }> {
  const rows = await db.selectFrom('messages').select(['id', 'ticket_id']).orderBy('id').execute()
  const byTicket: Record<number, string[]> = {}
  for (const r of rows) (byTicket[r.ticket_id] ??= []).push(r.id)
  return { total: rows.length, byTicket }
}
