import type { Executor } from '../db/database.js'
import type { Channel } from '../db/schema.js'

// SQL for the numbers a contact has: the registry (contact_numbers, one row per number, so a number
// belongs to at most one contact) and the extra addresses (a second phone number, a WhatsApp
// number) in preferred order. The contact's own phone (contacts.phone) is always the first
// address and is not stored in contact_addresses, but it is in the registry.

/**
 * Gives `number` to `contactId` unless a contact already has it, and returns the contact that has
 * it now. ON CONFLICT DO NOTHING never raises, so the caller's transaction stays usable on
 * Postgres; under READ COMMITTED it waits for a concurrent claim and the read that follows sees
 * the winner.
 */
export async function claimNumber (db: Executor, number: string, contactId: number, now: string): Promise<number> {
  const inserted = await db.insertInto('contact_numbers').values({ number, contact_id: contactId, created_at: now })
    .onConflict((oc) => oc.column('number').doNothing())
    .returning('contact_id').executeTakeFirst()
  if (inserted !== undefined) return inserted.contact_id
  const owner = await db.selectFrom('contact_numbers').select('contact_id').where('number', '=', number).executeTakeFirstOrThrow()
  return owner.contact_id
}

/** Gives a number back once nothing of the contact's (their phone, an address on any channel) uses it. */
export async function releaseNumber (db: Executor, contactId: number, number: string): Promise<void> {
  await db.deleteFrom('contact_numbers')
    .where('number', '=', number).where('contact_id', '=', contactId)
    .where((eb) => eb.not(eb.exists(eb.selectFrom('contacts').select('id').where('id', '=', contactId).where('phone', '=', number))))
    .where((eb) => eb.not(eb.exists(eb.selectFrom('contact_addresses').select('id').where('contact_id', '=', contactId).where('address', '=', number))))
    .execute()
}

export function listContactAddresses (db: Executor, contactId: number) {
  return db.selectFrom('contact_addresses').select(['id', 'contact_id', 'channel', 'address', 'position', 'created_at'])
    .where('contact_id', '=', contactId).orderBy('position').orderBy('id')
    .execute()
}

/** Adds an extra address; its number must already be the contact's (claimNumber), or the foreign key refuses it. */
export async function insertContactAddress (db: Executor, a: { contactId: number, channel: Channel, address: string }, now: string): Promise<number> {
  const last = await db.selectFrom('contact_addresses').select((eb) => eb.fn.max('position').as('p'))
    .where('contact_id', '=', a.contactId).executeTakeFirst()
  const position = last?.p === null || last?.p === undefined ? 1 : Number(last.p) + 1
  const row = await db.insertInto('contact_addresses')
    .values({ contact_id: a.contactId, channel: a.channel, address: a.address, position, created_at: now })
    .returning('id').executeTakeFirstOrThrow()
  return row.id
}

/** Removes one of the contact's extra addresses and returns it, or undefined when it is not theirs. */
export async function deleteContactAddress (db: Executor, contactId: number, id: number) {
  return await db.deleteFrom('contact_addresses').where('id', '=', id).where('contact_id', '=', contactId)
    .returning(['channel', 'address']).executeTakeFirst()
}

/** Extra addresses set aside by the migration to one number, one contact, with who has the number now. */
export function listSetAsideAddresses (db: Executor, contactId: number) {
  return db.selectFrom('contact_address_conflicts').select(['channel', 'address', 'owner_contact_id', 'set_aside_at'])
    .where('contact_id', '=', contactId).orderBy('id')
    .execute()
}
