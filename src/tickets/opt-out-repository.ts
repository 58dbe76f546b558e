import type { Executor } from '../db/database.js'

// SQL for what an opt-out does to messages already on their way out.

/**
 * Marks the contact's outbound messages that are still waiting in the outbox as blocked and
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
