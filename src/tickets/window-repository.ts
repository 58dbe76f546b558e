import type { Executor } from '../db/database.js'
import type { Channel } from '../db/schema.js'

/**
 * The newest inbound message on `channel` per address the contact wrote from, over all their
 * tickets (a merged customer's too): tickets by contact (tickets_contact), then each ticket's
 * messages (messages_ticket).
 */
export async function lastInboundByAddress (db: Executor, contactId: number, channel: Channel): Promise<Array<{ address: string, last_at: string }>> {
  const rows = await db.selectFrom('messages')
    .innerJoin('tickets', 'tickets.id', 'messages.ticket_id')
    .where('tickets.contact_id', '=', contactId)
    .where('messages.direction', '=', 'inbound')
    .where('messages.channel', '=', channel)
    .where('messages.from_address', 'is not', null)
    .select(['messages.from_address as address', (eb) => eb.fn.max('messages.created_at').as('last_at')])
    .groupBy('messages.from_address')
    .execute()
  return rows.map((r) => ({ address: r.address as string, last_at: String(r.last_at) }))
}

/** The channel and address of the newest customer message on a ticket, if any. */
export async function lastInboundOnTicket (db: Executor, ticketId: number): Promise<{ channel: Channel, from_address: string | null } | undefined> {
  return await db.selectFrom('messages').select(['channel', 'from_address'])
    .where('ticket_id', '=', ticketId).where('direction', '=', 'inbound')
    .orderBy('created_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst()
}

/**
 * Simulator only: moves the customer's WhatsApp messages from `address` back to `at` at the
 * latest, so the 24-hour window can be tried without waiting a day.
 */
export async function ageInbound (db: Executor, channel: Channel, address: string, at: string): Promise<number> {
  const result = await db.updateTable('messages').set({ created_at: at })
    .where('direction', '=', 'inbound').where('channel', '=', channel).where('from_address', '=', address).where('created_at', '>', at)
    .executeTakeFirst()
  return Number(result.numUpdatedRows)
}
