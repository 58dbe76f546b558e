import type { Executor } from '../db/database.js'
import { param, prepared } from '../db/prepared.js'
import type { Channel } from '../db/schema.js'

// SQL for a contact's extra addresses (a second phone number, a WhatsApp number), in preferred order.
// The contact's own phone (contacts.phone) is always the first address and is not stored here.

export function listContactAddresses (db: Executor, contactId: number) {
  return db.selectFrom('contact_addresses').select(['id', 'contact_id', 'channel', 'address', 'position', 'created_at'])
    .where('contact_id', '=', contactId).orderBy('position').orderBy('id')
    .execute()
}

// Looked up for every inbound message, so compiled once (see db/prepared.ts).
const qContactAddress = prepared<{ channel: Channel, address: string }, { id: number, contact_id: number, channel: Channel, address: string, position: number }>((db) =>
  db.selectFrom('contact_addresses').select(['id', 'contact_id', 'channel', 'address', 'position'])
    .where('channel', '=', param<Channel>('channel')).where('address', '=', param<string>('address')))

export async function findContactAddress (db: Executor, channel: Channel, address: string) {
  return (await qContactAddress(db, { channel, address })).rows[0]
}

export async function insertContactAddress (db: Executor, a: { contactId: number, channel: Channel, address: string }, now: string): Promise<number> {
  const last = await db.selectFrom('contact_addresses').select((eb) => eb.fn.max('position').as('p'))
    .where('contact_id', '=', a.contactId).executeTakeFirst()
  const position = last?.p === null || last?.p === undefined ? 1 : Number(last.p) + 1
  const row = await db.insertInto('contact_addresses')
    .values({ contact_id: a.contactId, channel: a.channel, address: a.address, position, created_at: now })
    .returning('id').executeTakeFirstOrThrow()
  return row.id
}

export async function deleteContactAddress (db: Executor, contactId: number, id: number): Promise<boolean> {
  const res = await db.deleteFrom('contact_addresses').where('id', '=', id).where('contact_id', '=', contactId).executeTakeFirst()
  return res.numDeletedRows > 0n
}
